"""Batches -> normalised rows: line numbers, inherited steps, segments, de-duplication.

Two halves, so that a large file can be split across processes:

* :func:`prepare` (stateless, runs wherever the chunk was scanned) turns a
  :class:`~logsleuth.engine.Batch` into sorted numpy columns with chunk-relative
  line numbers, converted values and the text of every non-finite line;
* :class:`Assembler` (sequential, in file order, small carry state) resolves what needs
  the past: absolute line numbers, inherited steps and epochs, segments, duplicates.
  Each :meth:`Assembler.feed` returns that chunk's finished rows, so memory stays bounded.

Rules (documented because they decide what the user sees):

* a record whose line prints no step inherits the last step printed before it (Keras's
  ``Batch N: Invalid loss`` is step N of the current epoch, N as printed);
* records printing ``iter/total`` within an epoch get ``step = (epoch - base) * total + iter``;
* a training step lower than the previous one starts a new *segment* (a restart or a
  resume sent the counter back); so does a restart message once training has begun (a
  training record or a failure event -- non-finite, traceback, error -- came before it);
* a progress bar whose total is smaller than the main bar's (an eval loop) sets no step;
* formats that print each message twice (absl + glog) drop the copy;
* a captured "number" that is not one is counted as unparsed, never turned into NaN.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np

from .bounds import MAX_EVENTS, add_capped
from .engine import BAR, EVAL, PHASE_CODES, TRAIN, Batch, Format, factorize, line_at, to_floats
from .engine.native import compiled
from .engine.schema import COLUMNS
from .scan import ranks_of
from .types import NONFINITE_EVENTS, Event, Hparam

if TYPE_CHECKING:
    import pyarrow as pa

MAX_TEXTS = 20_000
PHASES = ("train", "eval")  # the names of the row phase codes TRAIN, EVAL
_DEDUP_LINES = 6  # a copy follows within a few lines (a pretty-printed dict: one per key)
_NAN = math.nan
#: events that end an attempt: a restart message after one starts a new segment
_ENDINGS = NONFINITE_EVENTS | {"traceback", "error", "oom"}


def _ffill(values: np.ndarray, carry: float) -> np.ndarray:
    """Forward-fill NaNs in ``values``; leading NaNs take ``carry``. (May return ``values``.)"""
    lib = compiled()
    if lib is not None:
        filled = np.array(values, dtype=np.float64)  # a copy
        lib.ffill(filled, carry)
        return filled
    known = ~np.isnan(values)
    if known.all():
        return values
    if not known.any():
        return np.full(len(values), carry)
    idx = np.where(known, np.arange(len(values)), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], carry)


def line_text(chunk: bytes, pos: int, limit: int = 400) -> str:
    """The progress-bar update or line containing ``pos``, decoded leniently."""
    return line_at(chunk, pos)[1][:limit].decode("utf-8", "replace").strip()


def _floats(values: list) -> np.ndarray:
    """A column of numbers or None as float64 with NaN for None."""
    return np.array(values, dtype=np.float64)


# ---- numpy columns as Arrow arrays, without copies (``pa.array`` would also import
# pandas, 0.2 s, to check what it was given) ----------------------------------------


def arrow_array(values: np.ndarray, kind: pa.DataType, missing: np.ndarray | None = None) -> pa.Array:
    """A numeric column as an Arrow array of type ``kind``; ``missing`` marks nulls."""
    import pyarrow as pa

    values = np.ascontiguousarray(values, dtype=kind.to_pandas_dtype())
    validity, nulls = None, 0
    if missing is not None and missing.any():
        validity, nulls = pa.py_buffer(np.packbits(~missing, bitorder="little")), int(missing.sum())
    return pa.Array.from_buffers(kind, len(values), [validity, pa.py_buffer(values)], null_count=nulls)


def _arrow_ints(values: np.ndarray) -> pa.Array:
    """A float column of whole numbers as int64; NaN, and a number past int64 (a 26-digit
    "step" is no step), as null."""
    import pyarrow as pa

    missing = ~(np.abs(values) < 2.0**63)  # NaN compares False: missing too
    return arrow_array(np.where(missing, 0, values).astype(np.int64), pa.int64(), missing)


def _arrow_nulls(n: int, kind: pa.DataType) -> pa.Array:
    return arrow_array(np.zeros(n, dtype=kind.to_pandas_dtype()), kind, np.ones(n, dtype=bool))


def _arrow_strings(words: list[str] | tuple[str, ...]) -> pa.Array:
    import pyarrow as pa

    encoded = [w.encode() for w in words]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    return pa.Array.from_buffers(pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


@dataclass
class Prepared:
    """One chunk's records as columns, sorted by position; lines are chunk-relative."""

    newlines: int
    pos: np.ndarray
    line: np.ndarray
    step: np.ndarray
    epoch: np.ndarray
    it: np.ndarray
    total: np.ndarray
    metric: np.ndarray  # int32 codes into ``names``; -1 marks a marker (not a row)
    names: list
    value: np.ndarray
    phase: np.ndarray  # int8 codes: TRAIN, EVAL, BAR
    rank: np.ndarray | None
    events: list = field(default_factory=list)  # (line, pos, step, kind, fields, text)
    hparams: list = field(default_factory=list)  # (line, key, value)
    unparsed: list = field(default_factory=list)  # (line, position): the texts are cut as needed
    #: (line, position) of the evidence rows, in the order their texts are kept; the
    #: texts are cut from ``chunk`` by the Assembler, only while its budget lasts
    text_at: list = field(default_factory=list)
    chunk: bytes = b""
    capped: dict = field(default_factory=dict)  # what the input bounds cut in this chunk

    @property
    def texts(self) -> dict:
        """line -> text of the evidence rows (every one; the Assembler takes fewer)."""
        return {line: line_text(self.chunk, p) for line, p in self.text_at}


def _merged_columns(batch: Batch) -> tuple[dict[str, np.ndarray], list[str], list[int]]:
    """The per-record lists and the column rules' arrays as one set of numpy columns, with
    metrics as int32 codes into one list of names (-1: a marker) and phases as int8 codes.
    Returns the columns, the names and the positions of values that are not numbers
    (dropped rows)."""
    metric, names = factorize(batch.metric)
    is_row = metric >= 0
    values, bad = to_floats([v for v, keep in zip(batch.value, is_row.tolist()) if keep])
    value = np.full(len(metric), _NAN)
    value[is_row] = values
    bad_pos = []
    if bad:
        rows = np.flatnonzero(is_row)[bad]
        metric[rows] = -1  # not a number: drop the row, count the line
        bad_pos = [batch.pos[i] for i in rows]
    phase = np.fromiter(map(PHASE_CODES.__getitem__, batch.phase), np.int8, len(batch.phase))
    cols = {"pos": [np.array(batch.pos, dtype=np.int64)], "step": [_floats(batch.step)], "metric": [metric],
            "value": [value], "phase": [phase], "epoch": [_floats(batch.epoch)],
            "it": [_floats(batch.it)], "total": [_floats(batch.total)]}
    index = {name: i for i, name in enumerate(names)}
    for part in batch.arrays:
        n = len(part.pos)
        blank = np.full(n, _NAN)
        # the part's codes into the merged names; the two -1 appended keep markers and
        # unreadable records (codes -1, -2) out of the rows
        remap = np.array([index.setdefault(name, len(index)) for name in part.names] + [-1, -1], dtype=np.int32)
        phase = np.full(n, PHASE_CODES[part.phase], np.int8) if isinstance(part.phase, str) else part.phase
        for key, column in (("pos", part.pos), ("step", part.step), ("metric", remap[part.codes]),
                            ("value", part.value), ("phase", phase),
                            ("epoch", blank if part.epoch is None else part.epoch),
                            ("it", blank if part.it is None else part.it),
                            ("total", blank if part.total is None else part.total)):
            cols[key].append(column)
    merged = {key: np.concatenate(parts) if len(parts) > 1 else parts[0] for key, parts in cols.items()}
    return merged, list(index), bad_pos


def _evidence_rows(value: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Rows whose line text is kept as evidence: every non-finite row (capped), the last
    finite row before each of the first ones, and the first and last rows of the chunk."""
    rows = np.flatnonzero(codes >= 0)
    if not len(rows):
        return rows
    finite = np.isfinite(value[rows])
    bad = rows[~finite][:MAX_TEXTS]
    good = rows[finite]
    before = good[np.searchsorted(good, bad[:50]) - 1] if len(good) else good
    before = before[before < bad[: len(before)]] if len(before) else before
    return np.unique(np.concatenate((bad, before, rows[:1], rows[-1:])))


def prepare(chunk: bytes, batch: Batch) -> Prepared:
    """Sort, convert and locate one chunk's findings; no knowledge of other chunks needed."""
    nl = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10)
    cols, names, bad_pos = _merged_columns(batch)
    order = np.argsort(cols["pos"], kind="stable")
    cols = {name: column[order] for name, column in cols.items()}
    pos_a, value_a, phase_a, codes = cols["pos"], cols["value"], cols["phase"], cols["metric"]
    prep = Prepared(
        newlines=len(nl), pos=pos_a, line=np.searchsorted(nl, pos_a), step=cols["step"], epoch=cols["epoch"],
        it=cols["it"], total=cols["total"], metric=codes, names=names,
        value=value_a, phase=phase_a, rank=ranks_of(chunk, pos_a, nl),
    )
    unparsed = sorted(bad_pos + batch.unparsed)
    prep.unparsed = list(zip(np.searchsorted(nl, unparsed).tolist(), unparsed))
    rows = _evidence_rows(value_a, codes)
    prep.chunk = chunk
    prep.capped = batch.capped
    # one text per line: the last row's on it (a line of several bar updates), in line order
    text_at = dict(zip(prep.line[rows].tolist(), pos_a[rows].tolist()))
    events = sorted(batch.events, key=itemgetter(0))
    event_lines = np.searchsorted(nl, [e[0] for e in events]).tolist()
    for (p, s, kind, fields), line, keep in zip(events, event_lines, _may_be_kept(events)):
        prep.events.append((line, p, s, kind, fields, line_text(chunk, p) if keep else None))
    prep.hparams = [(int(np.searchsorted(nl, p)), k, v) for p, k, v in batch.hparams]
    header = [p for p, _, _ in batch.hparams[:200]]  # header lines are evidence too
    for line, p in zip(np.searchsorted(nl, header).tolist(), header):
        text_at.setdefault(line, p)
    prep.text_at = list(text_at.items())
    return prep


def _may_be_kept(events: list[tuple]) -> list[bool]:
    """Which of a chunk's events may be among the first or last MAX_EVENTS of their kind
    (the only ones the Assembler keeps): the others of a kind flooding the chunk (an
    overflow on every line) are only counted, so their texts are not cut (text None)."""
    counts = Counter(e[2] for e in events)
    if all(n <= 2 * MAX_EVENTS for n in counts.values()):
        return [True] * len(events)
    seen: Counter = Counter()
    keep = []
    for e in events:
        rank = seen[e[2]]
        seen[e[2]] += 1
        keep.append(rank < MAX_EVENTS or rank >= counts[e[2]] - MAX_EVENTS)
    return keep


class Assembler:
    """Turns the prepared chunks of one log, in order, into rows, events and hyperparameters."""

    def __init__(self, fmt: Format) -> None:
        self.fmt = fmt
        self.line0 = 1
        self.step = _NAN
        self.epoch = _NAN
        self.last_train_step = _NAN
        self.segment = 0
        self.bar_total = 0
        self.bars_seen = False  # a progress bar set steps (records after it may be stacked under one)
        self.ordinal = 0
        self.inferred = False
        self.trained = False
        self.failed = False  # a failure event was seen: a restart message after it is a new attempt
        #: the first MAX_EVENTS events of each kind; later ones go to ``_late`` (the last
        #: MAX_EVENTS of a kind); ``event_counts`` counts them all, ``fresh_events`` holds
        #: those of the last chunk fed, kept or not
        self.events: list[Event] = []
        self._late: dict[str, deque] = {}
        self.event_counts: dict[str, int] = {}
        self.fresh_events: list[Event] = []
        self._prev_event: Event | None = None
        self.capped: dict[str, int] = {}
        self.hparams: dict[str, Hparam] = {}
        self.unparsed = 0
        self.unparsed_examples: list[tuple[int, str]] = []
        self.texts: dict[int, str] = {}
        self.rows = 0

    def kept_events(self) -> list[Event]:
        """The events kept, in line order: the first and the last MAX_EVENTS of each kind."""
        late = [e for tail in self._late.values() for e in tail]
        return sorted(self.events + late, key=lambda e: e.line) if late else list(self.events)

    def _keep_event(self, ev: Event) -> None:
        """Count ``ev``; keep it while its kind has fewer than MAX_EVENTS, else in the
        kind's tail (the oldest of which is dropped): a log printing an overflow on every
        line must not hold an Event per line."""
        n = self.event_counts.get(ev.kind, 0)
        self.event_counts[ev.kind] = n + 1
        self.fresh_events.append(ev)
        self._prev_event = ev
        if n < MAX_EVENTS:
            self.events.append(ev)
            self.texts.setdefault(ev.line, ev.text)
            return
        tail = self._late.setdefault(ev.kind, deque(maxlen=MAX_EVENTS))
        if len(tail) == MAX_EVENTS:
            add_capped(self.capped, "events")
        tail.append(ev)
        if len(self.texts) < MAX_TEXTS:
            self.texts.setdefault(ev.line, ev.text)

    def feed(self, prep: Prepared) -> pa.Table:
        self.fresh_events = []
        for name, n in prep.capped.items():
            add_capped(self.capped, name, n)
        step = self._steps(prep)
        segment, event_segments = self._segments(prep, step)
        frame = self._frame(prep, step, segment)
        self._side_tables(prep, step, event_segments)
        self.line0 += prep.newlines
        self.rows += frame.num_rows
        return frame

    # ---- steps ------------------------------------------------------------------

    def _steps(self, prep: Prepared) -> np.ndarray:
        if self.fmt.epoch_summaries:
            self._mark_epoch_summaries(prep)
        step = prep.step.copy()
        epoch = _ffill(prep.epoch, self.epoch)
        if len(epoch):
            self.epoch = epoch[-1]
        prep.epoch = epoch
        self._continue_epoch_counters(step, epoch, prep.metric >= 0)
        has_it = ~np.isnan(prep.it) & np.isnan(step)
        if has_it.any():
            base = self.fmt.epoch_base
            ep = np.maximum(np.where(np.isnan(epoch), base, epoch) - base, 0)
            within = self._counts_within_epoch(prep.it[has_it], ep[has_it])
            step[has_it] = np.where(within, ep[has_it] * np.nan_to_num(prep.total[has_it]), 0) + prep.it[has_it]
        if (prep.phase == BAR).any():
            self.bars_seen = True
            step[~self._main_bars(prep)] = _NAN
        filled = _ffill(step, self.step)
        if len(filled):
            self.step = filled[-1]  # printed (or bar) steps carry over; counted ones do not
        missing = np.isnan(filled)
        if missing.any() and self.fmt.infer_steps:
            self.inferred = True
            new_record = missing & (prep.phase == TRAIN) & (prep.metric >= 0) & np.r_[True, prep.pos[1:] != prep.pos[:-1]]
            counts = self.ordinal + np.cumsum(new_record)
            filled[missing] = counts[missing]
            self.ordinal = int(counts[-1])
        if len(filled):
            self._last_step = filled[-1]
        return filled

    _printed_steps = False  # a record with a printed step (or n/T counter) was seen

    def _mark_epoch_summaries(self, prep: Prepared) -> None:
        """Once records print a step, a record with an epoch and no step (``Step 40, loss:
        0.69`` ... ``Epoch 2, Loss: 0.52, Test Loss: 0.55``: TensorFlow's quickstart loop)
        is the epoch's summary: its metric is ``<name>_epoch``. Before any step, and in a
        log of epochs only, names stay."""
        rows = prep.metric >= 0
        placed = rows & (~np.isnan(prep.step) | ~np.isnan(prep.it))
        seen = self._printed_steps | np.r_[False, np.logical_or.accumulate(placed)[:-1]]
        summary = np.flatnonzero(rows & ~placed & ~np.isnan(prep.epoch) & seen)
        self._printed_steps = self._printed_steps or bool(placed.any())
        if not len(summary):
            return
        renamed: dict[int, int] = {}
        for code in np.unique(prep.metric[summary]).tolist():
            name = f"{prep.names[code]}_epoch"
            if name not in prep.names:
                prep.names.append(name)
            renamed[code] = prep.names.index(name)
        prep.metric[summary] = [renamed[c] for c in prep.metric[summary].tolist()]

    _it_global = False  # an ``n/T`` counter that went on growing into a new epoch
    _it_last = _NAN
    _it_epoch = _NAN

    def _counts_within_epoch(self, it: np.ndarray, ep: np.ndarray) -> np.ndarray:
        """Whether each ``n/T`` counter counts batches within its epoch (then step = epoch x
        T + n), or all steps (``epoch 3: step 70/160``: n went on growing when the epoch went
        up, so n is the step) -- from the first epoch where it kept growing on."""
        prev_it, prev_ep = np.r_[self._it_last, it[:-1]], np.r_[self._it_epoch, ep[:-1]]
        grows_on = (ep > prev_ep) & (it > prev_it)
        is_global = self._it_global | np.logical_or.accumulate(grows_on)
        self._it_global, self._it_last, self._it_epoch = bool(is_global[-1]), float(it[-1]), float(ep[-1])
        return ~is_global

    _epoch_offset = 0.0  # steps added to a counter that starts again with each epoch
    _counter_last = _NAN  # that counter's last printed value, and the epoch it was in
    _counter_epoch = _NAN
    _counter_gap = 1.0  # its last positive increment (the logging interval)

    def _continue_epoch_counters(self, step: np.ndarray, epoch: np.ndarray, rows: np.ndarray) -> None:
        """A printed step that goes back when the epoch goes up (``Start of epoch 1``, then
        ``step 0`` again) counts batches within the epoch, not an attempt: it continues
        from the last epoch's steps, one logging interval on. Where the epoch does not go up,
        a step going back stays a restart."""
        idx = np.flatnonzero(rows & ~np.isnan(step) & ~np.isnan(epoch))
        if not len(idx):
            return
        raw, ep = step[idx], epoch[idx]
        prev_raw, prev_ep = np.r_[self._counter_last, raw[:-1]], np.r_[self._counter_epoch, ep[:-1]]
        resets = (ep > prev_ep) & (raw < prev_raw)
        if resets.any() or self._epoch_offset:
            rise = np.diff(np.r_[self._counter_last, raw])
            gaps = _ffill(np.where(rise > 0, rise, np.nan), self._counter_gap)
            before = np.r_[self._counter_gap, gaps[:-1]]
            offset = self._epoch_offset + np.cumsum(np.where(resets, prev_raw - raw + before, 0.0))
            step[idx] = raw + offset
            self._epoch_offset = float(offset[-1])
            self._counter_gap = float(gaps[-1])
        else:
            rises = np.diff(raw)[np.diff(raw) > 0]
            self._counter_gap = float(rises[-1]) if len(rises) else self._counter_gap
        self._counter_last, self._counter_epoch = float(raw[-1]), float(ep[-1])

    def _main_bars(self, prep: Prepared) -> np.ndarray:
        """Bars with a smaller total than the main bar (eval loops) must not set steps."""
        bar = prep.phase == BAR
        totals = np.where(bar, np.nan_to_num(prep.total), 0)
        running = np.maximum.accumulate(np.maximum(totals, self.bar_total))
        self.bar_total = int(running[-1])
        return ~bar | (totals >= running)

    # ---- segments -----------------------------------------------------------------

    def _segments(self, prep: Prepared, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Segment of each record and event: +1 where the training step goes back, or at a
        restart message once training has begun (one restart counts once)."""
        track = (prep.phase != EVAL) & ~np.isnan(step)
        if prep.rank is not None and not np.all(np.isnan(prep.rank)):
            track &= np.isnan(prep.rank) | (prep.rank == np.nanmin(prep.rank))
        idx = np.flatnonzero(track)
        s = step[idx]
        back = s < np.r_[self.last_train_step, s[:-1]]
        bounds = [(int(prep.pos[i]), int(k)) for i, k in zip(idx[back], np.flatnonzero(back))]
        restarts = [(p, int(np.searchsorted(prep.pos[idx], p))) for _, p, _, kind, _, _ in prep.events
                    if kind == "restart"]
        failures = sorted(p for _, p, _, kind, _, _ in prep.events if kind in _ENDINGS)
        kept: list[int] = []
        seen_k = -1
        for p, k in sorted(restarts + bounds):
            began = self.trained or self.failed or bool(failures and failures[0] < p)
            if k == seen_k or (k == 0 and not began and not kept):
                continue  # same restart seen twice (message + step going back), or the very start
            kept.append(p)
            seen_k = k
        base = self.segment
        seg = base + np.searchsorted(kept, prep.pos, side="right")
        ev_seg = base + np.searchsorted(kept, [e[1] for e in prep.events], side="right")
        self.segment = base + len(kept)
        if len(idx):
            self.last_train_step = s[-1]
            self.trained = True
        self.failed = self.failed or bool(failures)
        return seg, ev_seg

    # ---- rows ---------------------------------------------------------------------

    def _frame(self, prep: Prepared, step: np.ndarray, segment: np.ndarray) -> pa.Table:
        """This chunk's rows as an Arrow table (see :mod:`logsleuth.engine.schema`)."""
        import pyarrow as pa  # here, not at import: the scanning workers never need it

        rows = np.flatnonzero(prep.metric >= 0)
        if self.fmt.dedupe and len(rows) > 1:
            rows = rows[~self._copies(prep, step, segment, rows)]
        epoch = prep.epoch[rows]
        columns = [
            _arrow_ints(np.round(step[rows])),
            pa.DictionaryArray.from_arrays(arrow_array(prep.metric[rows], pa.int32()), _arrow_strings(prep.names)),
            arrow_array(prep.value[rows], pa.float64()),
            pa.DictionaryArray.from_arrays(arrow_array(prep.phase[rows], pa.int8()), _arrow_strings(PHASES)),
            arrow_array(segment[rows], pa.int64()),
            _arrow_ints(prep.rank[rows]) if prep.rank is not None else _arrow_nulls(len(rows), pa.int64()),
            arrow_array(epoch, pa.float64(), np.isnan(epoch)),
            arrow_array(self.line0 + prep.line[rows], pa.int64()),
        ]
        return pa.Table.from_arrays(columns, names=list(COLUMNS))

    @staticmethod
    def _copies(prep: Prepared, step: np.ndarray, segment: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Mask of rows repeating an earlier row (same segment, phase, metric, step and
        value) within a few lines: the second copy of a message printed by two loggers."""
        keys = (prep.line[rows], prep.value[rows], step[rows], prep.metric[rows], prep.phase[rows],
                segment[rows])
        order = np.lexsort(keys)
        same = np.ones(len(order) - 1, dtype=bool)
        for key in keys[1:]:
            k = key[order]
            same &= (k[1:] == k[:-1]) | (np.isnan(k[1:]) & np.isnan(k[:-1]) if k.dtype.kind == "f" else False)
        gap = np.diff(prep.line[rows][order])
        copy = np.zeros(len(rows), dtype=bool)
        copy[order[1:][same & (gap > 0) & (gap <= _DEDUP_LINES)]] = True
        return copy

    # ---- events, hyperparameters, unparsed, texts ----------------------------------

    def _side_tables(self, prep: Prepared, step: np.ndarray, event_segments: np.ndarray) -> None:
        totals = _ffill(prep.total, self._total_before_chunk)
        # the last record at or before each event
        rows_before = np.searchsorted(prep.pos, [e[1] for e in prep.events], side="right").tolist()
        in_chunk = Counter(e[3] for e in prep.events)
        seen: Counter = Counter()
        for (line, _pos, ev_step, kind, fields, text), seg, after in zip(prep.events, event_segments, rows_before):
            seen[kind] += 1
            if text is None or (self.event_counts.get(kind, 0) >= MAX_EVENTS
                                and seen[kind] <= in_chunk[kind] - MAX_EVENTS):
                # the middle of a flood of one kind, which no later event of the chunk
                # leaves in the kind's tail (see _may_be_kept): counted only
                self.event_counts[kind] = self.event_counts.get(kind, 0) + 1
                add_capped(self.capped, "events")
                continue
            if ev_step is None:
                i = after - 1
                if "batch" in fields:  # Keras TerminateOnNaN: `Batch N` counts within the epoch
                    ev_step = self._batch_step(prep.epoch[i] if i >= 0 else self._epoch_before_chunk,
                                               totals[i] if i >= 0 else self._total_before_chunk,
                                               int(fields["batch"]))
                else:
                    known = step[i] if i >= 0 else self._step_before_chunk
                    ev_step = None if math.isnan(known) else int(known)
            line += self.line0
            if not self._is_copy(kind, ev_step, line, fields, text):
                self._keep_event(Event(kind, ev_step, line, text, dict(fields), int(seg)))
        self._step_before_chunk = self._last_step
        self._epoch_before_chunk = self.epoch
        if len(totals):
            self._total_before_chunk = totals[-1]
        for line, key, value in prep.hparams:
            if key not in self.hparams:
                self.hparams[key] = Hparam(value, self.line0 + line)
        self.unparsed += len(prep.unparsed)
        for line, p in prep.unparsed[: max(0, 20 - len(self.unparsed_examples))]:
            self.unparsed_examples.append((self.line0 + line, line_text(prep.chunk, p)))
        for line, p in prep.text_at:  # texts cut only while the budget lasts: a long
            if len(self.texts) >= MAX_TEXTS:  # non-finite tail costs what a finite one does
                break
            if self.line0 + line not in self.texts:
                self.texts[self.line0 + line] = line_text(prep.chunk, p)
        prep.chunk = b""  # the chunk is not needed any more

    _step_before_chunk = _NAN
    _last_step = _NAN  # the last step of the rows so far, counted ones included
    _epoch_before_chunk = _NAN
    _total_before_chunk = _NAN

    def _batch_step(self, epoch: float, total: float, batch: int) -> int:
        """The step of ``Batch N`` in ``epoch`` (the first epoch without one): N is the
        0-based batch index (``on_train_batch_end(batch)``), so the step is the bar's
        1-based count N + 1, after ``total`` batches per finished epoch (the last printed
        ``n/total``, else the main bar's)."""
        ep = 0.0 if math.isnan(epoch) else max(epoch - self.fmt.epoch_base, 0.0)
        per_epoch = self.bar_total if math.isnan(total) else total
        return int(ep * per_epoch) + batch + 1

    def _is_copy(self, kind: str, step: int | None, line: int, fields: dict, text: str) -> bool:
        """The same event printed by two loggers (absl + glog) on adjacent lines counts once."""
        prev = self._prev_event
        if prev is None:
            return False
        return (prev.kind == kind and prev.step == step and prev.fields == fields
                and 0 < line - prev.line <= _DEDUP_LINES and prev.text != text)
