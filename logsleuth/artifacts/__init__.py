"""Run artefacts beyond text logs, read into the same :class:`~logsleuth.types.RunSeries`.

* TensorBoard event files (:mod:`.tfevents`, no TensorFlow needed, every point kept);
* Hugging Face ``trainer_state.json`` (:mod:`.trainer_state`);
* Lightning ``metrics.csv`` and Keras ``CSVLogger`` files (:mod:`.csv_metrics`);
* MLflow file-store runs (:mod:`.mlflow`).

The kind is told by content, not by name alone: TFRecord framing (or an
``events.out.tfevents.*`` name), a JSON object with ``log_history``, a CSV header followed
by a numeric row, an MLflow run layout. Metric names are the text parsers' canonical
names; ``line`` is a record index (each reader documents which), non-finite values are
kept, and damage (a truncated event file) is reported in ``RunSeries.notes``.

>>> from logsleuth.artifacts import read_artifact
>>> series = read_artifact("runs/exp1/events.out.tfevents.1700000000.host")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from ..types import RunSeries

__all__ = ["read_artifact", "artifact_kind", "csv_kind", "read_tfevents", "read_trainer_state", "read_csv_metrics",
           "read_mlflow", "ARTIFACT_KINDS"]

#: the readers, imported on first use (they need numpy and pandas; this package must not
#: slow down a CLI that only asks :func:`artifact_kind`)
_READERS = {"read_tfevents": "tfevents", "read_trainer_state": "trainer_state", "read_csv_metrics": "csv_metrics",
            "read_mlflow": "mlflow"}


def __getattr__(name: str) -> Any:
    if name in _READERS:
        import importlib

        return getattr(importlib.import_module(f".{_READERS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: what :func:`artifact_kind` returns (and the ``format`` of the series each one gives)
ARTIFACT_KINDS = ("tfevents", "hf_trainer_state", "lightning_csv", "keras_csv", "csv_metrics", "mlflow")
_HEAD = 64 << 10


#: the most a ``trainer_state.json`` or metrics CSV may hold, decompressed: both are read
#: whole (a JSON document takes several times its size in memory), and a real one of a
#: long run with a record every step is a few tens of MB; past this, a one-line error
MAX_TABLE_BYTES = 128 << 20


def _read(path: str) -> tuple[bytes, str]:
    """The whole file, decompressed when gzip/bz2/xz/zstd (told by magic bytes), at most
    :data:`MAX_TABLE_BYTES` of it: a larger one (a gzip bomb named ``trainer_state.json.gz``)
    is an :class:`InputError`, found while decompressing, never after."""
    limit = MAX_TABLE_BYTES
    data, kind = _first_bytes(path, limit + 1)
    if len(data) > limit:
        what = " decompressed" if kind != "none" else ""
        raise InputError(f"{path}: over {limit >> 20} MiB{what}, more than a run artefact read whole may be; "
                         f"not read (a real trainer_state.json or metrics CSV is far smaller: a gzip bomb?)")
    return data, kind


#: how far a ``.csv`` whose first two lines pass the head is read to tell its kind
_WIDE_HEAD = 16 << 20


def _head(path: str, size: int = _HEAD) -> bytes:
    """The first ``size`` bytes of a file, decompressed (only those are decompressed)."""
    return _first_bytes(path, size)[0]


def _first_bytes(path: str, size: int) -> tuple[bytes, str]:
    """(the first ``size`` bytes of the file, decompressed; the compression's name)."""
    from ..io import _decompressor, sniff_compression

    with open(path, "rb") as f:
        kind = sniff_compression(f.read(8))
        f.seek(0)
        try:
            return (f if kind == "none" else _decompressor(f, kind)).read(size), kind
        except Exception as exc:  # corrupt archives raise many types
            raise InputError(f"{path}: corrupt {kind} data ({exc})") from exc


def csv_kind(head: bytes) -> str | None:
    """The metrics-table kind of a file's first bytes (``lightning_csv``, ``keras_csv``,
    ``csv_metrics``), or None when they are not a metrics table."""
    from ._sniff import sniff_csv

    return sniff_csv(head)


def artifact_kind(path: str, head: bytes | None = None) -> str | None:
    """The artefact kind of a file or directory, or None (e.g. a text log)."""
    from ._sniff import is_event_file, looks_like_trainer_state, run_dir_of, sniff_csv

    if os.path.isdir(path):
        return "mlflow" if run_dir_of(path) == os.path.abspath(path) else None
    name = os.path.basename(path)
    if "tfevents" in name:
        return "tfevents"
    if os.sep + "metrics" + os.sep in os.path.abspath(path) and run_dir_of(path):
        return "mlflow"
    if head is None:
        try:
            with open(path, "rb") as f:
                head = f.read(_HEAD)
        except OSError:
            return None
    if is_event_file(path, head[:64]):
        return "tfevents"
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or head[:4] == b"\x28\xb5\x2f\xfd":
        if not any(x in name.lower() for x in (".json", ".csv")):
            return None  # a compressed text log: the text pipeline reads those
        try:
            head = _head(path)
        except InputError:
            return None
    if looks_like_trainer_state(head):
        return "hf_trainer_state"
    if head.count(b"\n") < 2 and ".csv" in name.lower() and len(head) >= _HEAD:
        head = _head(path, _WIDE_HEAD)  # a table of many columns: its header alone passes the head
    return sniff_csv(head)


def read_artifact(path: str | os.PathLike[str], verify: bool = False) -> RunSeries:
    """Read a run artefact into a :class:`RunSeries`.

    Parameters
    ----------
    path : str
        An event file, a directory of event files (a TensorBoard log dir: files under
        ``validation/``-like directories give eval metrics), ``trainer_state.json``, a
        Lightning/Keras CSV, or an MLflow run directory (or a metric file inside one).
    verify : bool
        Check TFRecord CRCs of event files (off by default).

    Raises
    ------
    InputError
        The path is missing, unreadable, or no artefact logsleuth knows.
    """
    from ._sniff import run_dir_of
    from .csv_metrics import read_csv_metrics
    from .mlflow import read_mlflow
    from .tfevents import read_tfevents
    from .trainer_state import read_trainer_state

    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        if run_dir_of(path):
            return read_mlflow(path)
        events = sorted(os.path.join(here, f) for here, _, files in os.walk(path) for f in files if "tfevents" in f)
        if events:
            return read_tfevents(events, root=path, verify=verify, source=path)
        raise InputError(f"{path}: a directory without event files or an MLflow run; pass the files")
    kind = artifact_kind(path)
    if kind == "tfevents":
        return read_tfevents(path, verify=verify)
    if kind == "mlflow":
        return read_mlflow(path)
    if kind is None:
        raise InputError(f"{path}: not a run artefact logsleuth knows (for a text log use read_log)")
    data, compression = _read(path)
    reader = read_trainer_state(path, data) if kind == "hf_trainer_state" else read_csv_metrics(path, data, kind)
    if compression != "none":
        from dataclasses import replace

        reader = replace(reader, compression=compression, size=os.path.getsize(path))
    return reader
