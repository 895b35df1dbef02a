"""TensorBoard event files, read without TensorFlow or protobuf: every scalar point kept.

An event file is TFRecord framing (``uint64 length``, ``uint32 masked crc32c(length)``,
``data``, ``uint32 masked crc32c(data)``, little-endian) around serialized ``Event``
protos. Only the wire format of the few fields a scalar needs is decoded::

    Event    { wall_time = 1 (double), step = 2 (int64), summary = 5, session_log = 7 }
    Summary  { value = 1 (repeated Value) }
    Value    { tag = 1, simple_value = 2 (float), tensor = 8 (TensorProto), metadata = 9 }
    TensorProto { dtype = 1, tensor_shape = 2, tensor_content = 4, float_val = 5,
                  double_val = 6, int_val = 7, int64_val = 10, bool_val = 11, half_val = 13 }

Scalars come both as ``simple_value`` (TF1, tensorboardX, PyTorch's default writer) and as
one-element numeric tensors (TF2, Keras, PyTorch ``new_style``); a tensor counts when its
tag's plugin (from the first ``metadata`` seen for the tag) is ``scalars`` or unknown, so
histograms, images and text never leak in. Unlike TensorBoard's own loading there is no
reservoir sampling: every point is kept, nan and inf included.

Why it is fast: a writer repeats the same bytes record after record, with only the
step, the wall time and the value changing. The first summary of each shape is decoded
generically and remembered as a *template* (constant byte runs and the offsets of the
fixed-width value holes); later summaries of that length are checked against it with
``bytes.startswith`` (no copies) and their values gathered at the end in one numpy
operation. Anything that does not match takes the generic decoder.

A crashed writer leaves a truncated last record: the complete records are read and the
truncation is reported in ``RunSeries.notes``. CRC verification is optional
(``verify=True``): a record failing it is skipped and counted; a length whose own CRC
fails ends the reading, since no later framing can be trusted.

``line`` is the 1-based index of the record in the file; for several files of one run
(``train/`` and ``validation/``, or a new file after a restart) records are put in
wall-time order (each file keeping its own order) and numbered in that order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..types import Event, RunSeries
from ._eventscan import EventFile, scan_event_file
from ._frame import EVAL_WORDS, POSITION_NAMES, build_series, metric_name
from ._sniff import is_event_file

__all__ = ["read_tfevents", "scan_event_file", "is_event_file", "EventFile", "FORMAT"]

FORMAT = "tfevents"


# ---- files -> RunSeries ------------------------------------------------------------------

def _phase_hint(path: str, root: str | None) -> str | None:
    """"eval" for a file under a ``validation``-like directory below ``root`` (none without a root)."""
    if not root:
        return None
    rel = os.path.relpath(os.path.dirname(os.path.abspath(path)), os.path.abspath(root))
    parts = [p.lower() for p in rel.replace("\\", "/").split("/") if p and p != "."]
    return "eval" if any(p in EVAL_WORDS for p in parts) else None


def _tag_names(tags: Sequence[str], hint: str | None) -> list[tuple[str, str, bool]]:
    """(metric, phase, keras-epoch-tag) per tag; Keras ``batch_``/``epoch_`` prefixes read as such."""
    present = set(tags)
    out = []
    for tag in tags:
        if tag == "train/train_loss":  # the Hugging Face Trainer's end-of-run average
            out.append(("train_loss_avg", "train", False))
            continue
        base, is_epoch = tag, False
        for prefix in ("batch_", "epoch_"):
            if tag.startswith(prefix) and len(tag) > len(prefix):
                base, is_epoch = tag[len(prefix):], prefix == "epoch_"
        if is_epoch and ("batch_" + base) in present:
            name, phase = metric_name(base, hint)
            out.append((name + "_epoch_avg", phase, True))
            continue
        out.append((*metric_name(base, hint), is_epoch))
    return out


def read_tfevents(paths: str | Sequence[str], root: str | None = None, verify: bool = False,
                  source: str | None = None) -> RunSeries:
    """Read one or several event files of one run into a :class:`RunSeries`.

    Parameters
    ----------
    paths : path or list of paths
        Event files; under a ``validation``/``val``/``eval``/``test`` directory (relative to
        ``root``) their metrics are eval metrics (Keras writes ``train/`` and ``validation/``).
    verify : bool
        Check both CRCs of every record (off by default: slower, and a crashed writer's
        damage is a truncated tail, which is detected anyway).
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise InputError("read_tfevents: no event files given")
    files = []
    for path in sorted(map(str, paths)):
        try:
            scanned, buf = scan_event_file(path, verify=verify)
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        if scanned.n_records == 0 and scanned.size:
            raise InputError(f"{path}: not an event file (no complete TFRecord)")
        files.append((scanned, buf))
    return _to_series(files, root, source or (paths[0] if len(paths) == 1 else (root or os.path.commonpath(paths))))


def _order(files: list[tuple[EventFile, bytes]]) -> list[np.ndarray]:
    """Global 1-based line per record of each file: wall-time order, each file's own order kept."""
    if len(files) == 1:
        return [np.arange(1, files[0][0].n_records + 1)]
    walls, fidx, ridx = [], [], []
    for fi, (ef, buf) in enumerate(files):
        walls.append(np.maximum.accumulate(ef.walls(buf)) if ef.n_records else np.zeros(0))
        fidx.append(np.full(ef.n_records, fi))
        ridx.append(np.arange(ef.n_records))
    order = np.lexsort((np.concatenate(ridx), np.concatenate(fidx), np.concatenate(walls)))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    out, at = [], 0
    for ef, _ in files:
        out.append(rank[at:at + ef.n_records])
        at += ef.n_records
    return out


def _to_series(files: list[tuple[EventFile, bytes]], root: str | None, source: str) -> RunSeries:
    lines_per_file = _order(files)
    names: dict[str, int] = {}
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("step", "code", "value", "line", "epoch_tag")}
    notes: list[str] = []
    texts: dict[int, str] = {}
    restarts: list[int] = []
    bad: list = []
    for (ef, buf), lines in zip(files, lines_per_file):
        name = os.path.relpath(ef.path, root) if root else os.path.basename(ef.path)
        rec, tag, val = ef.values(buf)
        named = _tag_names(ef.tags, _phase_hint(ef.path, root))
        code_of_tag = np.asarray([names.setdefault(n[0], len(names)) for n in named] or [0], dtype=np.int64)
        steps = np.asarray(ef.steps, dtype=np.int64)
        cols["step"].append(steps[rec])
        cols["code"].append(code_of_tag[tag])
        cols["value"].append(val)
        cols["line"].append(lines[rec])
        cols["epoch_tag"].append(np.asarray([n[2] for n in named] or [False], dtype=bool)[tag])
        restarts += lines[ef.restarts].tolist() if ef.restarts else []
        bad += [(int(lines[ri]), text) for ri, text in ef.bad_records]
        notes += _file_notes(ef, name)
        texts.update(_nonfinite_texts(ef, name, lines, steps, rec, tag, val))
    keys = ("step", "code", "value", "line", "epoch_tag")
    step, code, value, line, epoch_tag = (np.concatenate(cols[k]) for k in keys)
    if len(files) > 1:
        order = np.argsort(line, kind="stable")
        step, code, value, line, epoch_tag = (a[order] for a in (step, code, value, line, epoch_tag))
    categories = list(names)
    epoch_code = names.get("epoch", -1)
    epoch = _epochs(code == epoch_code, value, line, step, epoch_tag)
    position = [c for n, c in names.items() if n in POSITION_NAMES or n.removeprefix("eval_") in POSITION_NAMES]
    keep = ~np.isin(code, position)
    metric = pd.Categorical.from_codes(code[keep], categories=categories or ["loss"])
    events = [Event("restart", None, int(ln), "SessionLog START (the writer restarted)") for ln in restarts]
    return build_series(step=step[keep], metric=metric, value=value[keep], line=line[keep], epoch=epoch[keep],
                        source=source, format=FORMAT, size=sum(ef.size for ef, _ in files), texts=texts, notes=notes,
                        events=events, unparsed=len(bad), unparsed_examples=bad[:5], restart_lines=restarts)


def _nonfinite_texts(ef: EventFile, name: str, lines: np.ndarray, steps: np.ndarray, rec: np.ndarray,
                     tag: np.ndarray, val: np.ndarray) -> dict[int, str]:
    """The evidence text of each record holding a non-finite value: file, record, step, tag=value."""
    records = np.unique(rec[~np.isfinite(val)])
    if not len(records):
        return {}
    bounds = np.searchsorted(rec, np.stack([records, records + 1]))  # rec is sorted
    tags, values = tag.tolist(), val.tolist()
    texts = {}
    for ri, lo, hi in zip(records.tolist(), bounds[0].tolist(), bounds[1].tolist()):
        items = ", ".join(f"{ef.tags[tags[k]]}={values[k]!r}" for k in range(lo, hi))
        texts[int(lines[ri])] = f"{name} record {ri + 1}: step {int(steps[ri])}: {items}"
    return texts


def _epochs(is_epoch: np.ndarray, value: np.ndarray, line: np.ndarray, step: np.ndarray,
            epoch_tag: np.ndarray) -> np.ndarray:
    """Epoch per row: the last ``epoch`` scalar written at or before its line; for Keras
    ``epoch_*`` tags the step itself is the epoch."""
    out = np.full(len(is_epoch), np.nan)
    marks = np.flatnonzero(is_epoch)
    if len(marks):
        at = np.searchsorted(line[marks], line, side="right") - 1
        out = np.where(at >= 0, value[marks][np.maximum(at, 0)], np.nan)
    return np.where(epoch_tag, step.astype(float), out)


def _file_notes(ef: EventFile, name: str) -> list[str]:
    notes = []
    if ef.truncated:
        off, left = ef.truncated
        notes.append(f"{name}: truncated last record at byte {off} ({left} bytes after {ef.n_records} complete "
                     f"records; the writer stopped mid-record): every complete record was read")
    for off, size in ef.skipped:
        notes.append(f"{name}: a damaged record length at byte {off}: {size} bytes skipped to the next valid "
                     f"record, and every record after it read")
    if ef.crc_stop is not None:
        notes.append(f"{name}: record length failed its CRC check at byte {ef.crc_stop}: the rest of the file "
                     f"cannot be framed and was not read")
    if ef.crc_failures:
        notes.append(f"{name}: {ef.crc_failures} record(s) failed the CRC check and were skipped")
    return notes
