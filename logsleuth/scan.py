"""Apply a format's rules to one chunk: bytes in, a :class:`logsleuth.engine.Batch` out.

Pure and stateless per chunk (see :mod:`logsleuth.engine.format`): no line loop in Python, every
rule is a literal-anchored ``finditer`` over the whole chunk. Also resolves, for records
whose line prints no step, the step shown by the nearest tqdm bar before them (Hugging
Face Trainer dicts, DeepSpeed overflow messages glued to a bar).
"""

from __future__ import annotations

import re

import ahocorasick_rs
import numpy as np

from .engine import BAR, Batch, ColumnRule, Columns, Format, extract
from .engine.native import compiled
from .parsers import COMMON_RULES

_BAR_RX = re.compile(rb"(\d+)/(\d+) \[[\d:]+<")
_RANK_RX = re.compile(rb"(?m)^\[(?:rank|default|RANK )(\d+)\]:?")
_LABEL_RX = re.compile(rb"(?m)^(\d{1,4}): ")
_RANK_ANYWHERE = re.compile(rb"\[(?:rank|default|RANK )\d+\]")
#: their literal starts, found in one pass first (the regex alone stops at every '[', and a
#: tqdm bar has one)
_RANK_GATE = ahocorasick_rs.BytesAhoCorasick([b"[rank", b"[default", b"[RANK "],
                                             matchkind=ahocorasick_rs.MatchKind.LeftmostFirst)
_BAR_LOOKBACK = 4096


class Gate:
    """Which of a format's per-match rules (and the cross-format rules) have their anchor
    in a chunk.

    Testing 30 anchors one by one would scan each chunk 30 times; one Aho-Corasick pass
    (in Rust, without the GIL) says which occur. It runs with leftmost-first,
    non-overlapping semantics, the only ones its SIMD prefilter serves (about 0.2 ms/MB
    against 1.6 with overlapping matches). Such a pass can miss an anchor only where it
    starts inside the span of another anchor's match, so the anchors that can
    (``overlaps``) are looked up on their own, and only in chunks where the anchor they
    could hide in was found. The format's own anchors are mostly on every line of its
    logs, and a pass returns every match: those found in the chunk's first
    :data:`HEAD_BYTES` (with ``in``) are left out of the pass, which then reports the
    rare ones. Column rules are not in it: their anchors are on nearly every line.
    """

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt
        own = tuple(r for r in fmt.rules if not isinstance(r, ColumnRule))
        self.rules = own + COMMON_RULES
        self.anchors = [r.anchor for r in self.rules]
        self.own = list(enumerate(r.anchor for r in own))
        self._passes: dict[tuple[int, ...], _Pass] = {}

    def present(self, chunk: bytes) -> list[int]:
        """Indexes of the rules whose anchor occurs in ``chunk``, in registry order."""
        head = chunk[:HEAD_BYTES]
        early = [i for i, anchor in self.own if anchor in head]
        rest = tuple(i for i, _ in self.own if i not in early)
        return sorted(early + self._pass(rest).present(chunk))

    def _pass(self, rest: tuple[int, ...]) -> _Pass:
        found = self._passes.get(rest)
        if found is None:
            keep = list(rest) + list(range(len(self.own), len(self.rules)))
            found = self._passes[rest] = _Pass([self.anchors[i] for i in keep], keep)
        return found


#: where the format's own anchors are looked for before the pass (most are on every line)
HEAD_BYTES = 64 << 10


class _Pass:
    """One Aho-Corasick pass over ``anchors``; reports the rule indexes ``index`` of those found."""

    def __init__(self, anchors: list[bytes], index: list[int]) -> None:
        self.anchors, self.index = anchors, index
        self.automaton = ahocorasick_rs.BytesAhoCorasick(anchors, matchkind=ahocorasick_rs.MatchKind.LeftmostFirst)
        self.overlaps = [[j for j, other in enumerate(anchors) if j != i and _can_start_inside(other, anchor)]
                         for i, anchor in enumerate(anchors)]

    def present(self, chunk: bytes) -> list[int]:
        found = {i for i, _, _ in self.automaton.find_matches_as_indexes(chunk)}
        hidden = {j for i in found for j in self.overlaps[i]} - found
        return [self.index[j] for j in found | {j for j in hidden if self.anchors[j] in chunk}]


def _can_start_inside(inner: bytes, outer: bytes) -> bool:
    """Whether an occurrence of ``inner`` can start within an occurrence of ``outer``
    (at its first byte included): some suffix of ``outer`` and ``inner`` agree."""
    if inner[:1] not in outer:
        return False
    return any(outer[i:].startswith(inner) or inner.startswith(outer[i:]) for i in range(len(outer)))


_GATES: dict[int, Gate] = {}


def _gate(fmt: Format) -> Gate:
    cached = _GATES.get(id(fmt))
    if cached is None or cached.fmt is not fmt:
        cached = _GATES[id(fmt)] = Gate(fmt)
    return cached


def scan_chunk(fmt: Format, chunk: bytes, head: bytes = b"") -> Batch:
    """Run ``fmt``'s rules and the cross-format event rules over ``chunk``; ``head`` is the
    start of the log, for rules whose lines take their meaning from a header printed once
    (it may be in another chunk)."""
    out = Batch(head)
    gate = _gate(fmt)
    rules = gate.rules
    for i in gate.present(chunk):  # registry order: format rules first, then the common ones
        rules[i].run(chunk, out)
    for rule in fmt.rules:
        if isinstance(rule, ColumnRule) and rule.anchor in chunk:
            found = extract(rule, chunk)
            if found is not None:
                pos, step, codes, names, values, bad, hparams = found
                out.arrays.append(Columns(pos, step, codes, names, values, rule.phase))
                out.unparsed += bad
                out.hparams += hparams
    if fmt.bar_steps or out.events:
        _steps_from_bars(chunk, out, records_too=fmt.bar_steps)
    return out


def _last_bar(chunk: bytes, lo: int, hi: int) -> tuple[int, int, int] | None:
    """(position, count, total) of the last tqdm bar update in ``chunk[lo:hi]``."""
    q = chunk.rfind(b"<", max(lo, hi - _BAR_LOOKBACK), hi)
    while q >= lo and q != -1:
        m = _BAR_RX.search(chunk, max(lo, q - 40), q + 1)
        if m and m.end() == q + 1:
            return m.start(), int(m.group(1)), int(m.group(2))
        q = chunk.rfind(b"<", max(lo, hi - _BAR_LOOKBACK), q)
    return None


def _last_bars(chunk: bytes, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_last_bar` for many ranges: (positions, -1 where none; counts; totals)."""
    lib = compiled()
    if lib is not None:
        pos_b, count_b, total_b = lib.last_bars(chunk, lo.astype(np.int64), hi.astype(np.int64), _BAR_LOOKBACK)
        return np.frombuffer(pos_b, np.int64), np.frombuffer(count_b, np.float64), np.frombuffer(total_b, np.float64)
    found = [_last_bar(chunk, a, b) or (-1, 0, 0) for a, b in zip(lo.tolist(), hi.tolist())]
    pos, count, total = zip(*found) if found else ((), (), ())
    return np.array(pos, np.int64), np.array(count, np.float64), np.array(total, np.float64)


#: bar units that count data, never training steps (``datasets``' map/filter bars, downloads)
_DATA_UNITS = re.compile(rb"\d(?: ?examples/s| ?ba/s| ?[kMG]?B/s)\]")


def _side_bar(chunk: bytes, pos: int, described_too: bool) -> bool:
    """A bar that is not the training loop's: one counting examples or bytes, or, with
    ``described_too`` (the Trainer's main bar has no description), one with a description
    before its percentage (``Dropping fully masked examples from train dataset: 100%|``,
    ``Map:``, ``Writing model shards:``)."""
    if pos < 0:
        return False
    end = chunk.find(b"]", pos, pos + 200)
    if end != -1 and _DATA_UNITS.search(chunk, max(pos, end - 24), end + 1):
        return True
    if not described_too:
        return False
    lo = max(0, pos - _BAR_LOOKBACK)
    start = max(chunk.rfind(b"\n", lo, pos), chunk.rfind(b"\r", lo, pos)) + 1
    head = chunk[max(start, lo):pos]
    cut = head.rfind(b"%|")
    return cut != -1 and any(c.isalpha() for c in head[:cut].decode("utf-8", "replace"))


def _training_bars(chunk: bytes, lo: np.ndarray, pos: np.ndarray, count: np.ndarray, total: np.ndarray,
                   described_too: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The last bars of :func:`_last_bars` with each side bar (:func:`_side_bar`) replaced
    by the last training bar before it in the same range (position -1 where none)."""
    side = [i for i, p in enumerate(pos.tolist()) if _side_bar(chunk, p, described_too)]
    if not side:
        return pos, count, total
    pos, count, total = pos.copy(), count.copy(), total.copy()
    for i in side:
        found = None
        hi = int(pos[i])
        while found is None:
            bar = _last_bar(chunk, int(lo[i]), hi)
            if bar is None or not _side_bar(chunk, bar[0], described_too):
                found = bar or (-1, 0, 0)
            else:
                hi = bar[0]
        pos[i], count[i], total[i] = found
    return pos, count, total


def _steps_from_bars(chunk: bytes, out: Batch, records_too: bool) -> None:
    """Give step-less records/events the count of the progress bar printed just before them.

    A bar is emitted as a *marker* (so the step carries forward like any printed step).
    Only bars between the previous record and this one are considered, so a bar never
    overrides a step printed on a later line. With ``records_too``, the last bar after the
    chunk's last record is a marker too: a chunk may start right after it.
    """
    stepless = [np.array([e[0] for e in out.events if e[1] is None], np.int64)]
    known = [np.array(out.pos, np.int64)] + [part.pos for part in out.arrays]
    if records_too:  # (codes -1: markers; UNREADABLE records are records, as the handlers add them)
        stepless.append(np.array([p for p, s, m in zip(out.pos, out.step, out.metric) if s is None and m is not None],
                                 np.int64))
        stepless += [part.pos[np.isnan(part.step) & (part.codes != -1)] for part in out.arrays]
        stepless.append(np.array([len(chunk)], np.int64))  # the bar after the last record, for the next chunk
    want = np.unique(np.concatenate(stepless))
    if not len(want):
        return
    records = np.concatenate(([-1], np.unique(np.concatenate(known))))  # -1: "before the chunk"
    lo = records[np.searchsorted(records, want) - 1] + 1
    pos, count, total = _last_bars(chunk, lo, want)
    pos, count, total = _training_bars(chunk, lo, pos, count, total, records_too)
    found = np.flatnonzero(pos >= 0)
    found = found[np.unique(pos[found], return_index=True)[1]]  # a bar counts once
    if not records_too and len(found):
        found = found[count[found] >= _step_before(out, pos[found])]
    if len(found):
        n = len(found)
        out.arrays.append(Columns(pos[found], count[found], np.full(n, -1, np.int32), [], np.full(n, np.nan),
                                  np.full(n, BAR, np.int8), None, total[found]))


def _step_before(out: Batch, at: np.ndarray) -> np.ndarray:
    """The printed step of the last record before each position (-inf where none). Where
    records print their own steps, a bar counting below it counts within an epoch (a
    Lightning bar at ``10/40`` in epoch 6): no step for an event."""
    pos = np.concatenate([np.array(out.pos, np.int64)] + [part.pos for part in out.arrays])
    step = np.concatenate([np.array([np.nan if s is None else s for s in out.step], np.float64)]
                          + [part.step for part in out.arrays])
    keep = ~np.isnan(step)
    pos, step = pos[keep], step[keep]
    order = np.argsort(pos, kind="stable")
    pos, step = pos[order], np.maximum.accumulate(step[order]) if len(step) else step
    k = np.searchsorted(pos, at) - 1
    return np.where(k >= 0, step[np.maximum(k, 0)] if len(step) else -np.inf, -np.inf)


def _rank_prefix_rx(chunk: bytes) -> re.Pattern[bytes] | None:
    """Which rank-prefix style the chunk uses: ``[rank3]:`` / ``[default3]:`` (torchrun),
    or ``3: `` (srun --label) when it starts most lines of the chunk's head."""
    if _RANK_GATE.find_matches_as_indexes(chunk) and _RANK_ANYWHERE.search(chunk) is not None:
        return _RANK_RX
    head = chunk[:65536]
    if head[:1].isdigit() and len(_LABEL_RX.findall(head)) > 0.5 * max(1, head.count(b"\n")):
        return _LABEL_RX
    return None


def ranks_of(chunk: bytes, positions: np.ndarray, newlines: np.ndarray) -> np.ndarray | None:
    """Rank of each position from its line's rank prefix, or None if lines have none."""
    rx = _rank_prefix_rx(chunk)
    if rx is None:
        return None
    found = [(m.start(), int(m.group(1))) for m in rx.finditer(chunk)]
    if not found:
        return None
    starts = np.array([p for p, _ in found], dtype=np.int64)
    ranks = np.array([r for _, r in found], dtype=np.float64)
    line_of_prefix = np.searchsorted(newlines, starts)
    line_of_pos = np.searchsorted(newlines, positions)
    idx = np.searchsorted(line_of_prefix, line_of_pos)
    hit = (idx < len(starts)) & (line_of_prefix[np.minimum(idx, len(starts) - 1)] == line_of_pos)
    return np.where(hit, ranks[np.minimum(idx, len(starts) - 1)], np.nan)
