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
import struct
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..types import Event, RunSeries
from ._crc32c import crc32c_many, mask
from ._frame import EVAL_WORDS, POSITION_NAMES, build_series, metric_name

FORMAT = "tfevents"
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")
#: TensorFlow DataType enum -> numpy dtype of one element (numeric types only)
_DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2", 19: "<f2",
           22: "<u4", 23: "<u8", 14: "bfloat16"}
_SCALAR_PLUGINS = frozenset({"", "scalars"})
_MAX_TEMPLATES_PER_LENGTH = 8


def is_event_file(path: str, head: bytes | None = None) -> bool:
    """``events.out.tfevents.*`` by name, or TFRecord framing whose first record is an Event."""
    if "tfevents" in os.path.basename(path):
        return True
    if head is None:
        try:
            with open(path, "rb") as f:
                head = f.read(64)
        except OSError:
            return False
    if len(head) < 16:
        return False
    length = _U64.unpack_from(head)[0]
    if not 0 < length < 1 << 20:
        return False
    stored = struct.unpack_from("<I", head, 8)[0]
    return int(mask(_crc_small(head[:8]))) == stored


def _crc_small(data: bytes) -> int:
    from ._crc32c import crc32c

    return crc32c(data)


# ---- protobuf wire format -------------------------------------------------------------

def _varint(buf: bytes, p: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[p]
        result |= (b & 0x7F) << shift
        p += 1
        if b < 0x80:
            return result, p
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _skip(buf: bytes, p: int, wire: int) -> int:
    if wire == 0:
        return _varint(buf, p)[1]
    if wire == 1:
        return p + 8
    if wire == 2:
        n, p = _varint(buf, p)
        return p + n
    if wire == 5:
        return p + 4
    raise ValueError(f"unsupported wire type {wire}")


def _fields(buf: bytes, p: int, end: int):  # type: ignore[no-untyped-def]
    """Yield ``(field, wire, start, stop)``; for length-delimited fields start/stop bound the payload."""
    while p < end:
        key, p = _varint(buf, p)
        wire = key & 7
        if wire == 2:
            n, p = _varint(buf, p)
            yield key >> 3, wire, p, p + n
            p += n
        else:
            start = p
            p = _skip(buf, p, wire)
            yield key >> 3, wire, start, p
    if p != end:
        raise ValueError("field runs past its message")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _metadata(buf: bytes, p: int, end: int) -> tuple[str, int]:
    """(plugin name, data class) of a SummaryMetadata."""
    plugin, data_class = "", 0
    for f, wire, a, b in _fields(buf, p, end):
        if f == 1 and wire == 2:
            for g, w2, c, d in _fields(buf, a, b):
                if g == 1 and w2 == 2:
                    plugin = buf[c:d].decode("utf-8", "replace")
        elif f == 4 and wire == 0:
            data_class = _varint(buf, a)[0]
    return plugin, data_class


def _tensor_scalar(buf: bytes, p: int, end: int) -> tuple[str, float] | None:
    """A one-element numeric tensor as ``("f4"|"f8", offset)`` or ``("py", value)``; else None."""
    dtype, count, content = 0, 1, None
    vals: list[tuple[int, int, int, int]] = []  # (field, wire, start, stop)
    for f, wire, a, b in _fields(buf, p, end):
        if f == 1 and wire == 0:
            dtype = _varint(buf, a)[0]
        elif f == 2 and wire == 2:
            for g, w2, c, d in _fields(buf, a, b):
                if g == 2 and w2 == 2:  # dim { size = 1 }
                    size = 1
                    for h, w3, e, _ in _fields(buf, c, d):
                        if h == 1 and w3 == 0:
                            size = _signed64(_varint(buf, e)[0])
                    count *= size
                elif g == 3 and w2 == 0 and _varint(buf, c)[0]:
                    return None  # unknown rank
        elif f == 4 and wire == 2:
            content = (a, b)
        elif f in (5, 6, 7, 10, 11, 13, 16, 17):
            vals.append((f, wire, a, b))
    kind = _DTYPES.get(dtype)
    if count != 1 or kind is None:
        return None
    if content is not None:
        a, b = content
        if kind == "<f4" and b - a == 4:
            return "f4", a
        if kind == "<f8" and b - a == 8:
            return "f8", a
        if kind == "bfloat16" and b - a == 2:
            return "py", float(np.frombuffer(b"\x00\x00" + buf[a:b], "<f4")[0])
        if kind != "bfloat16" and b - a == np.dtype(kind).itemsize:
            return "py", float(np.frombuffer(buf[a:b], kind)[0])
        return None
    if len(vals) != 1:
        return None
    f, wire, a, b = vals[0]
    if f == 5:  # float_val: packed (wire 2) or not (wire 5)
        return ("f4", a) if (wire == 5 or b - a == 4) else None
    if f == 6:
        return ("f8", a) if (wire == 1 or b - a == 8) else None
    raw, stop = _varint(buf, a)
    if wire == 2 and stop != b:
        return None  # several packed values: not a scalar
    if f == 13:  # half_val holds the 16 bits of a half or a bfloat16
        bits = np.array([raw & 0xFFFF], dtype=np.uint16)
        return "py", float(bits.view(np.float16)[0] if kind == "<f2" else (bits.astype(np.uint32) << 16).view(np.float32)[0])
    return "py", float(_signed64(raw) if f in (7, 10) else raw)


# ---- one file ---------------------------------------------------------------------------

@dataclass
class _Template:
    """A summary shape seen before: constant byte runs and where its scalar values sit.

    ``head`` is the first constant run (at ``head_at``), checked first; ``rest`` the others.
    Offsets are relative to the start of the summary.
    """

    id: int
    length: int
    head_at: int
    head: bytes
    rest: tuple[tuple[int, bytes], ...]
    holes: tuple[tuple[str, int, int], ...]  # (kind, offset, tag id)


@dataclass
class EventFile:
    """What one event file holds, as columns (values not yet gathered into floats)."""

    path: str
    size: int
    n_records: int = 0
    steps: list[int] = field(default_factory=list)  # per record
    wall_off: list[int] = field(default_factory=list)  # per record: offset of wall_time, or -1
    wall_direct: dict[int, float] = field(default_factory=dict)  # record -> wall_time (generic path)
    tags: list[str] = field(default_factory=list)
    plugins: dict[str, str] = field(default_factory=dict)
    templates: list[_Template] = field(default_factory=list)
    # records matched to a template: record index, summary offset, template id
    matched: tuple[list[int], list[int], list[int]] = field(default_factory=lambda: ([], [], []))
    # values of generically decoded records: record index, tag id, offset of the float (or the float)
    f4: tuple[list[int], list[int], list[int]] = field(default_factory=lambda: ([], [], []))
    f8: tuple[list[int], list[int], list[int]] = field(default_factory=lambda: ([], [], []))
    py: tuple[list[int], list[int], list[float]] = field(default_factory=lambda: ([], [], []))
    restarts: list[int] = field(default_factory=list)  # record indices of SessionLog START
    truncated: tuple[int, int] | None = None  # (offset, bytes left) of an incomplete last record
    crc_failures: int = 0
    crc_stop: int | None = None  # offset where a length CRC failed
    bad_records: list[tuple[int, str]] = field(default_factory=list)

    def _holes(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(record, tag, offset) per value kind, template-matched records expanded in bulk."""
        out = {}
        m_rec, m_q, m_tpl = (np.asarray(a, dtype=np.int64) for a in self.matched)
        for kind, width in (("f4", 4), ("f8", 8)):
            own = getattr(self, kind)
            recs, tags, offs = [np.asarray(own[0], np.int64)], [np.asarray(own[1], np.int64)], [np.asarray(own[2], np.int64)]
            for tpl in self.templates:
                holes = [(off, tid) for k, off, tid in tpl.holes if k == kind]
                if not holes or not len(m_rec):
                    continue
                sel = m_tpl == tpl.id
                if not sel.any():
                    continue
                rel = np.asarray([h[0] for h in holes], dtype=np.int64)
                recs.append(np.repeat(m_rec[sel], len(holes)))
                tags.append(np.tile(np.asarray([h[1] for h in holes], dtype=np.int64), int(sel.sum())))
                offs.append((m_q[sel][:, None] + rel).ravel())
            out[kind] = (np.concatenate(recs), np.concatenate(tags), np.concatenate(offs))
        return out

    def values(self, buf: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(record index, tag id, value) for every scalar, in record order."""
        data = np.frombuffer(buf, dtype=np.uint8)
        parts = []
        for kind, (rec, tag, off) in self._holes().items():
            if len(rec):
                width = 4 if kind == "f4" else 8
                vals = np.ascontiguousarray(data[off[:, None] + np.arange(width)]).view("<" + kind).ravel()
                parts.append((rec, tag, vals.astype("float64")))
        if self.py[0]:
            parts.append((np.asarray(self.py[0]), np.asarray(self.py[1]), np.asarray(self.py[2], dtype="float64")))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        rec = np.concatenate([p[0] for p in parts]).astype(np.int64)
        tag = np.concatenate([p[1] for p in parts]).astype(np.int64)
        val = np.concatenate([p[2] for p in parts])
        order = np.argsort(rec, kind="stable")
        return rec[order], tag[order], val[order]

    def walls(self, buf: bytes) -> np.ndarray:
        offs = np.asarray(self.wall_off, dtype=np.int64)
        out = np.zeros(len(offs))
        fast = offs >= 0
        if fast.any():
            data = np.frombuffer(buf, dtype=np.uint8)
            out[fast] = np.ascontiguousarray(data[offs[fast][:, None] + np.arange(8)]).view("<f8").ravel()
        for rec, wall in self.wall_direct.items():
            out[rec] = wall
        return out


class _Decoder:
    """Decodes the records of one file into an :class:`EventFile`."""

    def __init__(self, buf: bytes, out: EventFile) -> None:
        self.buf, self.out = buf, out
        self.by_length: dict[int, list[_Template]] = {}
        self.tag_ids: dict[bytes, int] = {}

    def run(self, spans: list[tuple[int, int]]) -> None:
        """Every record: the template fast path when it applies, the generic decoder otherwise."""
        buf, out, by_length = self.buf, self.out, self.by_length
        steps, walls = out.steps, out.wall_off
        m_rec, m_q, m_tpl = out.matched
        for ri, (s, e) in enumerate(spans):
            # Event{wall_time = 1, step = 2, summary = 5 (the rest of the record)}
            if e - s > 12 and buf[s] == 0x09 and buf[s + 9] == 0x10:
                p = s + 10
                b = buf[p]
                if b < 0x80:
                    step, p = b, p + 1
                else:
                    step, p = _varint(buf, p)
                    step = _signed64(step)
                if p + 1 < e and buf[p] == 0x2A:
                    b = buf[p + 1]
                    slen, q = (b, p + 2) if b < 0x80 else _varint(buf, p + 1)
                    if q + slen == e:
                        hit = None
                        for tpl in by_length.get(slen, ()):
                            if buf.startswith(tpl.head, q + tpl.head_at):
                                hit = tpl  # the other constant runs are checked in bulk (confirm)
                                break
                        if hit is not None:
                            m_rec.append(ri)
                            m_q.append(q)
                            m_tpl.append(hit.id)
                            steps.append(step)
                            walls.append(s + 1)
                            continue
            self._slow(ri, s, e)
        self.confirm()

    def confirm(self) -> None:
        """Check every constant byte of template-matched summaries at once (numpy); the rare
        record whose head matched but whose rest differs is decoded generically instead."""
        out = self.out
        m_rec, m_q, m_tpl = (np.asarray(a, dtype=np.int64) for a in out.matched)
        if not len(m_rec):
            return
        data = np.frombuffer(self.buf, dtype=np.uint8)
        good = np.ones(len(m_rec), dtype=bool)
        for tpl in out.templates:
            if not tpl.rest:
                continue
            rows = np.flatnonzero(m_tpl == tpl.id)
            rel = np.concatenate([np.arange(off, off + len(seg)) for off, seg in tpl.rest])
            want = np.frombuffer(b"".join(seg for _, seg in tpl.rest), dtype=np.uint8)
            for chunk in np.array_split(rows, max(1, len(rows) * len(rel) // (8 << 20) + 1)):
                got = data[m_q[chunk][:, None] + rel]
                good[chunk] = (got == want).all(axis=1)
        if good.all():
            return
        for i in np.flatnonzero(~good).tolist():
            ri, q = int(m_rec[i]), int(m_q[i])
            e = q + out.templates[int(m_tpl[i])].length
            holes, direct = self._summary(q, e)
            for kind, off, tid in holes:
                rec, tag, where = out.f4 if kind == "f4" else out.f8
                rec.append(ri)
                tag.append(tid)
                where.append(q + off)
            for tid, value in direct:
                out.py[0].append(ri)
                out.py[1].append(tid)
                out.py[2].append(value)
        out.matched = tuple(a[good].tolist() for a in (m_rec, m_q, m_tpl))  # type: ignore[assignment]

    def _slow(self, ri: int, s: int, e: int) -> None:
        out = self.out
        n = len(out.steps)
        try:
            if s < 0:
                raise _Skipped()
            self._generic(ri, s, e)
            return
        except _Skipped:
            pass
        except (ValueError, IndexError, struct.error) as exc:
            out.bad_records.append((ri, f"record {ri + 1} at byte {s - 12}: not an Event ({exc})"))
        del out.steps[n:]
        del out.wall_off[n:]
        out.steps.append(0)
        out.wall_off.append(-1)
        out.wall_direct[ri] = 0.0

    def tag_id(self, raw: bytes) -> int:
        tid = self.tag_ids.get(raw)
        if tid is None:
            tid = self.tag_ids[raw] = len(self.out.tags)
            self.out.tags.append(raw.decode("utf-8", "replace"))
        return tid

    def _generic(self, ri: int, s: int, e: int) -> None:
        buf, out = self.buf, self.out
        wall, step, wall_at, summary, restart = 0.0, 0, -1, None, False
        for f, wire, a, b in _fields(buf, s, e):
            if f == 1 and wire == 1:
                wall, wall_at = _F64.unpack_from(buf, a)[0], a
            elif f == 2 and wire == 0:
                step = _signed64(_varint(buf, a)[0])
            elif f == 5 and wire == 2:
                summary = (a, b)
            elif f == 7 and wire == 2:
                restart = any(g == 1 and w2 == 0 and _varint(buf, c)[0] == 1  # SessionLog.START
                              for g, w2, c, _ in _fields(buf, a, b))
        found = self._summary(*summary) if summary is not None else ([], [])
        # only a fully decoded record contributes (an exception above adds nothing)
        holes, direct = found
        out.steps.append(step)
        out.wall_off.append(wall_at)
        if wall_at < 0:
            out.wall_direct[ri] = wall
        if restart:
            out.restarts.append(ri)
        q = summary[0] if summary is not None else 0
        for kind, off, tid in holes:
            rec, tag, where = out.f4 if kind == "f4" else out.f8
            rec.append(ri)
            tag.append(tid)
            where.append(q + off)
        for tid, value in direct:
            out.py[0].append(ri)
            out.py[1].append(tid)
            out.py[2].append(value)
        if summary is not None and not direct:  # a template needs every value at a fixed-width hole
            self._remember(*summary, holes)

    def _summary(self, q: int, end: int) -> tuple[list[tuple[str, int, int]], list[tuple[int, float]]]:
        holes: list[tuple[str, int, int]] = []
        direct: list[tuple[int, float]] = []
        for f, wire, a, b in _fields(self.buf, q, end):
            if f != 1 or wire != 2:
                continue
            found = self._value(a, b)
            if found is None:
                continue
            tid, kind, where = found
            if kind == "py":
                direct.append((tid, where))
            else:
                holes.append((kind, int(where) - q, tid))
        return holes, direct

    def _remember(self, q: int, end: int, holes: list[tuple[str, int, int]]) -> None:
        slen = end - q
        known = self.by_length.setdefault(slen, [])
        if len(known) >= _MAX_TEMPLATES_PER_LENGTH:
            return
        segments, at = [], 0
        for kind, off, _ in sorted(holes, key=lambda h: h[1]):
            if off > at:
                segments.append((at, self.buf[q + at:q + off]))
            at = off + (4 if kind == "f4" else 8)
        if slen > at:
            segments.append((at, self.buf[q + at:end]))
        if not segments:
            return
        segments.sort(key=lambda seg: -len(seg[1]))  # the longest run first: it rejects fastest
        tpl = _Template(len(self.out.templates), slen, segments[0][0], segments[0][1], tuple(segments[1:]), tuple(holes))
        self.out.templates.append(tpl)
        known.append(tpl)

    def _value(self, p: int, end: int) -> tuple[int, str, float] | None:
        buf = self.buf
        tag = b""
        simple = tensor = None
        plugin: str | None = None
        data_class = 0
        for f, wire, a, b in _fields(buf, p, end):
            if f == 1 and wire == 2:
                tag = buf[a:b]
            elif f == 2 and wire == 5:
                simple = a
            elif f == 8 and wire == 2:
                tensor = (a, b)
            elif f == 9 and wire == 2:
                plugin, data_class = _metadata(buf, a, b)
        tid = self.tag_id(tag)
        name = self.out.tags[tid]
        if plugin is not None:
            self.out.plugins.setdefault(name, plugin)
        if simple is not None:
            return tid, "f4", simple
        if tensor is None:
            return None
        if self.out.plugins.get(name, "") not in _SCALAR_PLUGINS and data_class != 1:
            return None
        found = _tensor_scalar(buf, *tensor)
        return None if found is None else (tid, found[0], found[1])


class _Skipped(Exception):
    """A record whose CRC failed: its index is kept, its content not read."""


def scan_event_file(path: str, buf: bytes | None = None, verify: bool = False) -> tuple[EventFile, bytes]:
    """Frame and decode one event file (``buf``: its bytes, when already read)."""
    if buf is None:
        with open(path, "rb") as f:
            buf = f.read()
    out = EventFile(path, len(buf))
    spans = _frame(buf, out, verify)
    _Decoder(buf, out).run(spans)
    out.n_records = len(spans)
    return out, buf


def _frame(buf: bytes, out: EventFile, verify: bool) -> list[tuple[int, int]]:
    """(start, end) of every complete record's data; (-1, -1) for a record failing its CRC."""
    unpack = _U64.unpack_from
    n = len(buf)
    spans: list[tuple[int, int]] = []
    off = 0
    while off + 12 <= n:
        length = unpack(buf, off)[0]
        end = off + 16 + length
        if end > n:
            break
        spans.append((off + 12, end - 4))
        off = end
    if off < n:
        out.truncated = (off, n - off)
    if verify and spans:
        spans = _verify(buf, spans, out)
    return spans


def _verify(buf: bytes, spans: list[tuple[int, int]], out: EventFile) -> list[tuple[int, int]]:
    starts = np.asarray([s for s, _ in spans], dtype=np.int64)
    ends = np.asarray([e for _, e in spans], dtype=np.int64)
    words = np.frombuffer(buf, dtype=np.uint8)
    stored_len_crc = np.ascontiguousarray(words[(starts - 4)[:, None] + np.arange(4)]).view("<u4").ravel()
    stored_data_crc = np.ascontiguousarray(words[ends[:, None] + np.arange(4)]).view("<u4").ravel()
    len_ok = mask(crc32c_many(buf, starts - 12, np.full(len(starts), 8))) == stored_len_crc
    data_ok = mask(crc32c_many(buf, starts, ends - starts)) == stored_data_crc
    if not len_ok.all():
        stop = int(np.argmin(len_ok))
        out.crc_stop = int(starts[stop] - 12)
        spans, data_ok = spans[:stop], data_ok[:stop]
        out.truncated = None
    out.crc_failures = int((~data_ok).sum())
    return [span if ok else (-1, -1) for span, ok in zip(spans, data_ok.tolist())]


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
    notes, texts, restarts, bad = [], {}, [], []
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
    step, code, value, line, epoch_tag = (np.concatenate(cols[k]) for k in ("step", "code", "value", "line", "epoch_tag"))
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
    texts = {}
    for ri in np.unique(rec[~np.isfinite(val)]).tolist():
        lo, hi = np.searchsorted(rec, [ri, ri + 1])
        items = ", ".join(f"{ef.tags[t]}={v!r}" for t, v in zip(tag[lo:hi].tolist(), val[lo:hi].tolist()))
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
    if ef.crc_stop is not None:
        notes.append(f"{name}: record length failed its CRC check at byte {ef.crc_stop}: the rest of the file "
                     f"cannot be framed and was not read")
    if ef.crc_failures:
        notes.append(f"{name}: {ef.crc_failures} record(s) failed the CRC check and were skipped")
    return notes
