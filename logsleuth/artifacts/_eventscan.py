"""One event file -> columns: TFRecord framing, the template fast path, the generic decoder.

See :mod:`logsleuth.artifacts.tfevents` for the format and why templates make it fast.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from ._crc32c import crc32c_many, mask
from ._protobuf import fields, metadata, signed64, tensor_scalar, varint

_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")
_SCALAR_PLUGINS = frozenset({"", "scalars"})
_MAX_TEMPLATES_PER_LENGTH = 8


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
    skipped: list[tuple[int, int]] = field(default_factory=list)  # (offset, bytes) passed over by a resync
    bad_records: list[tuple[int, str]] = field(default_factory=list)

    def _holes(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(record, tag, offset) per value kind, template-matched records expanded in bulk."""
        out = {}
        m_rec, m_q, m_tpl = (np.asarray(a, dtype=np.int64) for a in self.matched)
        for kind in ("f4", "f8"):
            own = getattr(self, kind)
            recs, tags, offs = ([np.asarray(column, np.int64)] for column in own)
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
            try:  # free in Python 3.11 unless raised; a damaged record takes the slow path
                if e - s > 12 and buf[s] == 0x09 and buf[s + 9] == 0x10:
                    p = s + 10
                    b = buf[p]
                    if b < 0x80:
                        step, p = b, p + 1
                    elif buf[p + 1] < 0x80:  # steps below 16384: two bytes, inline
                        step, p = (b & 0x7F) | (buf[p + 1] << 7), p + 2
                    elif buf[p + 2] < 0x80:  # below 2**21: three bytes
                        step, p = (b & 0x7F) | ((buf[p + 1] & 0x7F) << 7) | (buf[p + 2] << 14), p + 3
                    else:
                        step, p = varint(buf, p)
                        step = signed64(step)
                    if p + 1 < e and buf[p] == 0x2A:
                        b = buf[p + 1]
                        slen, q = (b, p + 2) if b < 0x80 else varint(buf, p + 1)
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
            except (ValueError, IndexError):
                pass
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
            try:
                holes, direct = self._summary(q, e)
            except (ValueError, IndexError) as exc:  # its step stays; its values are unreadable
                out.bad_records.append((ri, f"record {ri + 1}: summary not decodable ({exc})"))
                continue
            self._emit(ri, q, holes, direct)
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

    def _emit(self, ri: int, q: int, holes: list, direct: list) -> None:
        """Record ``ri``'s scalar values: fixed-width holes read later in bulk (f4/f8 at
        offset ``q + off``), and values already decoded (``direct``)."""
        out = self.out
        for kind, off, tid in holes:
            rec, tag, where = out.f4 if kind == "f4" else out.f8
            rec.append(ri)
            tag.append(tid)
            where.append(q + off)
        for tid, value in direct:
            out.py[0].append(ri)
            out.py[1].append(tid)
            out.py[2].append(value)

    def tag_id(self, raw: bytes) -> int:
        tid = self.tag_ids.get(raw)
        if tid is None:
            tid = self.tag_ids[raw] = len(self.out.tags)
            self.out.tags.append(raw.decode("utf-8", "replace"))
        return tid

    def _generic(self, ri: int, s: int, e: int) -> None:
        buf, out = self.buf, self.out
        wall, step, wall_at, summary, restart = 0.0, 0, -1, None, False
        for f, wire, a, b in fields(buf, s, e):
            if f == 1 and wire == 1:
                wall, wall_at = _F64.unpack_from(buf, a)[0], a
            elif f == 2 and wire == 0:
                step = signed64(varint(buf, a)[0])
            elif f == 5 and wire == 2:
                summary = (a, b)
            elif f == 7 and wire == 2:
                restart = any(g == 1 and w2 == 0 and varint(buf, c)[0] == 1  # SessionLog.START
                              for g, w2, c, _ in fields(buf, a, b))
        found = self._summary(*summary) if summary is not None else ([], [])
        # only a fully decoded record contributes (an exception above adds nothing)
        holes, direct = found
        out.steps.append(step)
        out.wall_off.append(wall_at)
        if wall_at < 0:
            out.wall_direct[ri] = wall
        if restart:
            out.restarts.append(ri)
        self._emit(ri, summary[0] if summary is not None else 0, holes, direct)
        if summary is not None and not direct:  # a template needs every value at a fixed-width hole
            self._remember(*summary, holes)

    def _summary(self, q: int, end: int) -> tuple[list[tuple[str, int, int]], list[tuple[int, float]]]:
        holes: list[tuple[str, int, int]] = []
        direct: list[tuple[int, float]] = []
        for f, wire, a, b in fields(self.buf, q, end):
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
        (head_at, head), rest = segments[0], tuple(segments[1:])
        tpl = _Template(len(self.out.templates), slen, head_at, head, rest, tuple(holes))
        self.out.templates.append(tpl)
        known.append(tpl)

    def _value(self, p: int, end: int) -> tuple[int, str, float] | None:
        buf = self.buf
        tag = b""
        simple = tensor = None
        plugin: str | None = None
        data_class = 0
        for f, wire, a, b in fields(buf, p, end):
            if f == 1 and wire == 2:
                tag = buf[a:b]
            elif f == 2 and wire == 5:
                simple = a
            elif f == 8 and wire == 2:
                tensor = (a, b)
            elif f == 9 and wire == 2:
                plugin, data_class = metadata(buf, a, b)
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
        found = tensor_scalar(buf, *tensor)
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
        if end > n:  # a truncated tail, or a damaged length with records after it
            after = _next_record(buf, off + 1)
            if after is None:
                break
            out.skipped.append((off, after - off))
            off = after
            continue
        spans.append((off + 12, end - 4))
        off = end
    if off < n:
        out.truncated = (off, n - off)
    if verify and spans:
        spans = _verify(buf, spans, out)
    return spans


#: bytes of candidate record starts examined at once by :func:`_next_record`
_RESYNC_WINDOW = 1 << 16  # 64 K candidates: a few MB of temporaries


def _next_record(buf: bytes, start: int) -> int | None:
    """The first offset at or after ``start`` where a record header is valid: a length that
    fits in the file, and its masked CRC-32C stored after it. How a reader gets past a
    damaged length field (the records after it are intact) instead of stopping there."""
    words = np.frombuffer(buf, dtype=np.uint8)
    n = len(buf)
    weights = np.array([1 << (8 * k) for k in range(8)], dtype=np.uint64)
    for lo in range(start, n - 15, _RESYNC_WINDOW):
        cand = np.arange(lo, min(lo + _RESYNC_WINDOW, n - 15), dtype=np.int64)
        gathered = words[cand[:, None] + np.arange(8)].astype(np.uint64)
        lengths = (gathered * weights).sum(axis=1, dtype=np.uint64)
        fits = lengths <= (n - 16 - cand).astype(np.uint64)
        cand = cand[fits]
        if not len(cand):
            continue
        stored = np.ascontiguousarray(words[(cand + 8)[:, None] + np.arange(4)]).view("<u4").ravel()
        valid = np.asarray(mask(crc32c_many(buf, cand, np.full(len(cand), 8, dtype=np.int64)))) == stored
        if valid.any():
            return int(cand[int(np.argmax(valid))])
    return None


def _verify(buf: bytes, spans: list[tuple[int, int]], out: EventFile) -> list[tuple[int, int]]:
    starts = np.asarray([s for s, _ in spans], dtype=np.int64)
    ends = np.asarray([e for _, e in spans], dtype=np.int64)
    words = np.frombuffer(buf, dtype=np.uint8)
    stored_len_crc = np.ascontiguousarray(words[(starts - 4)[:, None] + np.arange(4)]).view("<u4").ravel()
    stored_data_crc = np.ascontiguousarray(words[ends[:, None] + np.arange(4)]).view("<u4").ravel()
    len_ok = np.asarray(mask(crc32c_many(buf, starts - 12, np.full(len(starts), 8))) == stored_len_crc)
    data_ok = np.asarray(mask(crc32c_many(buf, starts, ends - starts)) == stored_data_crc)
    if not len_ok.all():
        stop = int(np.argmin(len_ok))
        out.crc_stop = int(starts[stop] - 12)
        spans, data_ok = spans[:stop], data_ok[:stop]
        out.truncated = None
    out.crc_failures = int((~data_ok).sum())
    return [span if ok else (-1, -1) for span, ok in zip(spans, data_ok.tolist())]
