"""A bounded sample of a long log's rows, for diagnosis: a multi-GB log is judged in the
time it takes to parse it, without holding every row.

Kept in full, whatever the log's length:

* the first :data:`WINDOW` rows (the start of training: initial loss, warm-up, early blowups);
* the :data:`WINDOW` rows before the first failure (the first non-finite value or
  non-finite event) and the :data:`WINDOW` rows from it on -- the growth, the jump and the
  learning rate at failure are measured there;
* the last :data:`WINDOW` rows (how the run ended);
* every non-finite row, up to :data:`NONFINITE_CAP` (the failure is never sampled away).

Each part is cut to its window whatever the size of the chunks' tables (a 2 MB chunk of a
dense log holds 70,000 rows), so what is held is bounded by the window, not the chunk. A
non-finite *event* without a non-finite value keeps its whole chunk after its lead-up:
where the event lies among the chunk's rows is not known.

Everything else is sampled evenly *by step*: a row stays when its step is a multiple of a
stride that doubles whenever the sample outgrows its budget, so a kept step keeps all its
metrics (loss, lr, grad norm) together. Rows without a step are sampled by line number the
same way. A log under the budget is kept whole, so small logs are diagnosed on every row.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .series import arrow_array

#: rows kept in full at the start, around the first failure and at the end
WINDOW = 20_000
#: non-finite rows kept (a dead run can print nan for millions of lines)
NONFINITE_CAP = 20_000


class RowSample:
    """Feed the parser's Arrow tables in order with :meth:`add`; read :meth:`tables`."""

    def __init__(self, window: int | None = None) -> None:
        self.window = window or WINDOW
        self.kept: list[pa.Table] = []  # full resolution: the start, and around the failure
        self.kept_rows = 0
        self.recent: deque[pa.Table] = deque()  # the latest rows, full resolution
        self.recent_rows = 0
        self.middle: list[pa.Table] = []  # the even sample of everything else
        self.middle_rows = 0
        self.nonfinite: list[pa.Table] = []
        self.nonfinite_rows = 0
        self.stride = 1  # a power of two
        self.failed = False
        self.full_after = 0  # rows still kept in full after the failure
        self.total = 0

    def add(self, table: pa.Table, failure_event: bool = False) -> None:
        """One chunk's rows; ``failure_event``: the chunk also reported a non-finite event
        (where among its rows is unknown: the whole chunk is kept)."""
        self.total += table.num_rows
        at = None if self.failed else _first_nonfinite(table)
        if self.kept_rows < self.window and not self.failed:  # the start
            n = min(self.window - self.kept_rows, table.num_rows)
            self._keep(table.slice(0, n))
            if at is not None and at < n:  # the failure is in the start: the window after it too
                self.failed, self.full_after = True, self.window - (n - at)
            table, at = table.slice(n), None if at is None else max(at - n, 0)
        if not self.failed and (at is not None or failure_event):
            self.failed = True
            cut = 0 if at is None else at  # an event alone: the whole chunk is kept, after its lead-up
            self._keep_lead_up(table.slice(0, cut))
            self.full_after = self.window + (table.num_rows if at is None else 0)
            table = table.slice(cut)
        if self.full_after > 0:
            head = table.slice(0, self.full_after)
            self._keep(head)
            self.full_after -= head.num_rows
            table = table.slice(head.num_rows)
        if table.num_rows:
            self._push_recent(table)

    def _keep_lead_up(self, before: pa.Table) -> None:
        """Keep the ``window`` rows before the failure (the end of ``recent``, then
        ``before``); what is older goes to the sample."""
        self._push_recent(before)
        while self.recent:
            self._keep(self.recent.popleft())
        self.recent_rows = 0

    def _push_recent(self, table: pa.Table) -> None:
        """Append to the latest rows, passing what is more than ``window`` rows old to the sample."""
        self.recent.append(table)
        self.recent_rows += table.num_rows
        while self.recent_rows > self.window:
            old = self.recent.popleft()
            excess = min(old.num_rows, self.recent_rows - self.window)
            self._sample(old.slice(0, excess))
            if excess < old.num_rows:
                self.recent.appendleft(old.slice(excess))
            self.recent_rows -= excess

    @property
    def dropped(self) -> int:
        """Rows left out of the sample."""
        return self.total - sum(t.num_rows for t in self._parts())

    def tables(self) -> list[pa.Table]:
        """The sample, in line order."""
        parts = [t for t in self._parts() if t.num_rows]
        if not self.middle and not self.nonfinite:
            return parts  # nothing was sampled: the chunks are already in line order
        whole = pa.concat_tables(parts, promote_options="permissive").unify_dictionaries()
        return [whole.sort_by("line")]

    def note(self) -> str:
        kept = self.total - self.dropped
        return (f"diagnosed on {kept:,} of {self.total:,} rows: the start, the lead-up to the first failure, "
                f"the end and every non-finite value in full, the rest every {self.stride}th step")

    def _parts(self) -> list[pa.Table]:
        return [*self.kept, *self.middle, *self.nonfinite, *self.recent]

    def _keep(self, table: pa.Table) -> None:
        self.kept.append(table)
        self.kept_rows += table.num_rows

    def _sample(self, table: pa.Table) -> None:
        finite = pc.is_finite(table.column("value"))
        bad = table.filter(pc.invert(finite))
        if bad.num_rows and self.nonfinite_rows < NONFINITE_CAP:
            self.nonfinite.append(bad.slice(0, NONFINITE_CAP - self.nonfinite_rows))
            self.nonfinite_rows += min(bad.num_rows, NONFINITE_CAP - self.nonfinite_rows)
        part = _every(table.filter(finite), self.stride)
        self.middle.append(part)
        self.middle_rows += part.num_rows
        while self.middle_rows > 2 * self.window:
            self.stride *= 2
            self.middle = [_every(t, self.stride) for t in self.middle]
            self.middle_rows = sum(t.num_rows for t in self.middle)


def _first_nonfinite(table: pa.Table) -> int | None:
    """Index of the first row whose value is not finite (a null is none), None when every
    one is; read in numpy from the column's buffers (a boolean ``to_numpy`` or a Python
    scalar in a compute call imports pandas)."""
    column = table.column("value").combine_chunks()
    if not len(column):
        return None
    validity, data = column.buffers()
    values = np.frombuffer(data, np.float64, len(column), column.offset * 8)
    bad = ~np.isfinite(values)
    if column.null_count:
        valid = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")
        bad &= valid[column.offset:column.offset + len(column)].astype(bool)
    where = np.flatnonzero(bad)
    return int(where[0]) if len(where) else None


def _every(table: pa.Table, stride: int) -> pa.Table:
    """Rows whose step (their line when they have none) is a multiple of ``stride`` (a
    power of two: a bit mask tests it, in Arrow, with no numpy or pandas round trip)."""
    if stride == 1 or not table.num_rows:
        return table
    step, line = table.column("step"), table.column("line")
    key = pc.if_else(pc.is_null(step), line, step)
    mask, zero = _int64s(stride - 1, 0)
    return table.filter(pc.equal(pc.bit_wise_and(key, mask), zero))


def _int64s(*values: int) -> list[pa.Scalar]:
    """Arrow int64 scalars made without ``pa.scalar`` (or a Python int handed to a compute
    function), which imports pandas, about 50 MB, to inspect its argument."""
    array = arrow_array(np.array(values, np.int64), pa.int64())
    return [array[i] for i in range(len(values))]
