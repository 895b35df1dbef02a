"""Metric pairs of many lines at once, as columns: the payload readers' fast path.

Most formats print a line head that places the record (``Epoch: [3][120/500]``,
``iter: 200``, a bar's ``12/25``) and then a payload of ``key value`` pairs. Reading the
pairs line by line (:func:`logsleuth.engine.format.read_pairs`, one ``finditer`` and one
``Batch.add`` per pair) costs microseconds per pair in Python. Here the payloads of a
whole chunk are joined and the pair pattern runs once over them with ``re.split``, which
returns every group of every match flat, with no match objects; each pair is given back
to its payload by position (``searchsorted``), keys are named once per distinct key, and
the rows go to the batch as one :class:`logsleuth.engine.format.Columns`.

The result is what :func:`read_pairs` gives payload by payload, input bounds included
(the first ``MAX_PAIRS`` pairs of the first ``MAX_LINE_BYTES`` bytes of each payload).
The pattern runs in C where ``logsleuth._native`` implements it (``pair_split``: the
colon, equals and free-form ``KV_ANY`` patterns, PyTorch's value (average) and ``LR:``
patterns, Keras's batch counter), several times faster than ``re``, which tries a pattern without a literal
prefix at every byte; its output is the ``re.split`` path's (``tests/test_native_pairs.py``).

Payloads are joined with a newline and a NUL byte: no pair pattern matches a NUL, so a
match cannot run from one payload into the next, and the newline before it makes the end
of a payload look like the end of a line to the patterns' lookaheads (``_END`` refuses a
number followed by ``:`` and a non-space: ``loss:0.5:`` at a payload's end is a pair, as
it is read alone). Checked in ``tests/test_pairs.py``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..bounds import MAX_LINE_BYTES, MAX_PAIRS, add_capped
from .format import KV_ANY, KV_STYLES, PHASE_CODES, UNREADABLE, Batch, Columns, Handler, canonical, is_noise, phase_of
from .grammar import to_floats
from .native import compiled

_SEP = b"\n\x00"
#: the pair patterns logsleuth/_native.c's ``pair_split`` implements, by its mode number
_NATIVE_MODES: dict[re.Pattern[bytes], int] = {KV_STYLES["colon"]: 0, KV_STYLES["equals"]: 1, KV_ANY: 2}


def native_pattern(rx: re.Pattern[bytes], mode: int) -> None:
    """Have ``split_columns`` read ``rx`` with ``pair_split``'s ``mode`` (a format's own
    pattern, registered by its module: PyTorch's ``_VALUE_AVG`` and ``_LR``, Keras's ``_COUNT``)."""
    _NATIVE_MODES[rx] = mode


_WRAPPED: dict[re.Pattern[bytes], re.Pattern[bytes]] = {}


def _wrapped(rx: re.Pattern[bytes]) -> re.Pattern[bytes]:
    """``rx`` with a group around the whole match (its length gives each match's position)."""
    found = _WRAPPED.get(rx)
    if found is None:
        found = _WRAPPED[rx] = re.compile(b"(" + rx.pattern + b")", rx.flags)
    return found


def pair_columns(rx: re.Pattern[bytes], payloads: Sequence[bytes],
                 capped: dict | None = None) -> tuple[np.ndarray, list[list]]:
    """The matches of ``rx`` in each payload: (index of the payload of each match, one
    list per group of ``rx`` with that group of every match), in payload order."""
    if not payloads:
        return np.zeros(0, np.int64), [[] for _ in range(rx.groups)]
    payloads = _cut_long(payloads, capped)
    ends = np.cumsum(np.fromiter(map(len, payloads), np.int64, len(payloads)) + len(_SEP))
    starts, groups = split_columns(rx, _SEP.join(payloads))
    owner = np.searchsorted(ends, starts, side="right")
    return _cap_pairs(owner, groups, capped)


def split_columns(rx: re.Pattern[bytes], text: bytes) -> tuple[np.ndarray, list[list]]:
    """Every match of ``rx`` in ``text``: (start positions, one list per group of ``rx``),
    from the compiled scanner of ``rx`` where the extension has one, else from one
    ``re.split`` (no match objects)."""
    lib = compiled()
    mode = _NATIVE_MODES.get(rx) if lib is not None else None
    if mode is not None:
        starts, groups = lib.pair_split(text, mode)
        return np.frombuffer(starts, np.int64), groups
    return split_regex(rx, text)


def split_regex(rx: re.Pattern[bytes], text: bytes) -> tuple[np.ndarray, list[list]]:
    """:func:`split_columns` with ``re.split``: the reference, and the path without the extension."""
    wrapped = _wrapped(rx)
    pieces = wrapped.split(text)
    width = wrapped.groups + 1
    between = np.fromiter(map(len, pieces[0::width]), np.int64)
    whole = np.fromiter(map(len, pieces[1::width]), np.int64)
    starts = np.cumsum(between[:-1]) + np.concatenate(([0], np.cumsum(whole[:-1]))).astype(np.int64)
    return starts, [pieces[2 + g::width] for g in range(rx.groups)]


def _cut_long(payloads: Sequence[bytes], capped: dict | None) -> Sequence[bytes]:
    """Each payload within ``MAX_LINE_BYTES`` (each cut counted)."""
    long = [i for i, p in enumerate(payloads) if len(p) > MAX_LINE_BYTES]
    if not long:
        return payloads
    cut = list(payloads)
    for i in long:
        cut[i] = cut[i][:MAX_LINE_BYTES]
    if capped is not None:
        add_capped(capped, "bytes", len(long))
    return cut


def _cap_pairs(owner: np.ndarray, groups: list[list], capped: dict | None) -> tuple[np.ndarray, list[list]]:
    """At most ``MAX_PAIRS`` matches per payload (each payload cut counted)."""
    if len(owner) <= MAX_PAIRS:
        return owner, groups
    rank = np.arange(len(owner)) - np.searchsorted(owner, owner, side="left")
    keep = rank < MAX_PAIRS
    if keep.all():
        return owner, groups
    if capped is not None:
        add_capped(capped, "pairs", int(np.count_nonzero(rank == MAX_PAIRS)))
    mask = keep.tolist()
    return owner[keep], [list(itertools.compress(g, mask)) for g in groups]


def pair_rows(out: Batch, pos: np.ndarray, owner: np.ndarray, keys: list, values: list,
              name_of: Callable[[bytes], str | None], *, step: np.ndarray | None = None,
              epoch: np.ndarray | None = None, it: np.ndarray | None = None,
              total: np.ndarray | None = None, phase: str | None = None) -> np.ndarray:
    """Add one row per pair to ``out``: at its payload's position ``pos[owner]``, named
    ``name_of(key)`` (called once per distinct key; None drops the pair), with the
    payload's ``step``/``epoch``/``it``/``total`` (float arrays per payload, NaN where
    none) and ``phase`` (None: from the name). A value that is no number is no row and
    counts its line as unparsed. Returns the mask of the pairs kept."""
    table = {k: name_of(k) for k in set(keys)}
    names = [n for n in dict.fromkeys(table.values()) if n is not None]
    index = {n: i for i, n in enumerate(names)}
    code_of = {k: index[n] if n is not None else -1 for k, n in table.items()}
    codes = np.fromiter(map(code_of.__getitem__, keys), np.int32, len(keys))
    kept = codes >= 0
    if not kept.any():
        return kept
    rows = np.flatnonzero(kept)
    codes = codes[rows]
    converted, bad = to_floats(list(itertools.compress(values, kept.tolist())) if not kept.all() else values)
    value = np.array(converted, np.float64)
    where = owner[rows]
    at = pos[where]
    if bad:
        out.unparsed += at[bad].tolist()
        codes[bad] = UNREADABLE
    if phase is not None:
        phases: str | np.ndarray = phase
    else:
        by_code = np.array([PHASE_CODES[phase_of(n)] for n in names] + [0, 0], np.int8)
        phases = by_code[codes]
    out.arrays.append(Columns(at, np.full(len(where), np.nan) if step is None else step[where], codes, names, value,
                              phases, _take(epoch, where), _take(total, where), _take(it, where)))
    return kept


def _take(column: np.ndarray | None, where: np.ndarray) -> np.ndarray | None:
    return None if column is None else column[where]


def line_starts(chunk: bytes, positions: np.ndarray) -> np.ndarray:
    """Start of the line -- or progress-bar update -- of each position (after the last
    ``\\n`` or ``\\r`` before it): :func:`logsleuth.engine.format.line_start` for many positions."""
    raw = np.frombuffer(chunk, np.uint8)
    seps = np.concatenate(([-1], np.flatnonzero((raw == 10) | (raw == 13))))  # -1: the chunk's start
    return seps[np.searchsorted(seps, positions, side="left") - 1] + 1


def line_ends(chunk: bytes, positions: np.ndarray) -> np.ndarray:
    """End (exclusive, at its separator) of the line or bar update of each position:
    :func:`logsleuth.engine.format.line_end` for many positions."""
    raw = np.frombuffer(chunk, np.uint8)
    seps = np.concatenate((np.flatnonzero((raw == 10) | (raw == 13)), [len(chunk)]))
    return seps[np.searchsorted(seps, positions, side="left")]


def kv_payload(style: str = "colon", *, skip: Iterable[str] = (), aliases: Mapping[str, str] | None = None,
               phase: str | None = None, step_keys: Iterable[str] = ()) -> Handler:
    """A handler for lines whose group ``payload`` holds ``key: value`` pairs; optional
    groups ``step``, ``epoch``, ``iter``, ``total`` give the position. Keys in
    ``step_keys`` (e.g. fairseq's ``num_updates``) set the step instead of becoming
    metrics (the last one of a line wins); a line without pairs is counted as unparsed."""
    kv_rx = KV_STYLES[style]
    skipped = frozenset(skip)
    steps = frozenset(step_keys)

    def name_of(key: bytes) -> str | None:
        name = canonical(key, aliases)
        return None if name in skipped or name in steps or is_noise(name) else name

    def handle(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        found = list(matches)
        if not found:
            return
        pos = match_starts(found)
        position = {g: group_floats(found, g) for g in ("step", "epoch", "iter", "total")}
        owner, (keys, values) = pair_columns(kv_rx, [m.group("payload") for m in found], out.capped)
        out.unparsed += pos[np.setdiff1d(np.arange(len(found)), owner)].tolist()
        if steps and len(owner):
            is_step = np.fromiter((canonical(k, aliases) in steps for k in keys), bool, len(keys))
            rows = np.flatnonzero(is_step)[::-1]  # the last step key of a line wins
            lines, last = np.unique(owner[rows], return_index=True)
            position["step"][lines] = np.trunc(np.array(to_floats([values[r] for r in rows[last].tolist()])[0]))
        pair_rows(out, pos, owner, keys, values, name_of, step=position["step"], epoch=position["epoch"],
                  it=position["iter"], total=position["total"], phase=phase)

    return handle


def match_starts(found: list[re.Match[bytes]]) -> np.ndarray:
    """The start of each match, as an int64 array."""
    return np.fromiter((m.start() for m in found), np.int64, len(found))


def group_floats(found: list[re.Match[bytes]], group: int | str) -> np.ndarray:
    """Group ``group`` of each match as a number (NaN where absent or not in the pattern)."""
    if isinstance(group, str) and group not in found[0].re.groupindex:
        return np.full(len(found), np.nan)
    return to_floats([m.group(group) or None for m in found], none_nan=True)[0]


def add_markers(out: Batch, pos: np.ndarray, step: np.ndarray, epoch: np.ndarray) -> None:
    """Markers (no row: they only carry the step and epoch forward) at ``pos``."""
    n = len(pos)
    out.arrays.append(Columns(pos, step, np.full(n, -1, np.int32), [], np.full(n, np.nan), "train", epoch))
