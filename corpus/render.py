"""Render a trajectory into a training log, exactly as a framework prints it, and label it.

A printer (one module per framework under :mod:`corpus.printers`) turns a
:class:`~corpus.runs.Trajectory` into tagged :class:`Line` s: the text, plus what the
line *means* -- the step a reader attributes to it (printed on the line, or the last
step printed before it), whether it shows a non-finite value or a non-finite event,
whether the printer *hid* one (Hugging Face ``logging_nan_inf_filter``, Megatron's
omitted ``lm loss``), and, on a line that prints a *training* loss, the number it prints
(``value``: the interval mean or the step's value, whichever the format prints; base 2
for fairseq; the finite value a Hugging Face filter printed for a nan; nan / inf when the
line shows a non-finite loss, a stop-on-nan message such as ``Model diverged with loss =
NaN`` included). Eval lines and banners carry no value. Variations then work on the
tagged lines (noise, ANSI colours, interleaved ranks, truncation that never removes a key
line), so the label of the final text is known exactly:

* ``signature``: measured by :func:`corpus.label.measure_signature` on the loss values
  the final text prints (:func:`corpus.compose.printed_columns`: one point per attempt
  and step, attempts stitched like :func:`corpus.label.history`), so that it describes
  what a reader of the log can see -- a spike between two printed steps, or diluted by a
  window mean, is no ``R601``; growth the printed points do not show is no ``X101``. The
  full-resolution signature (the ``trajectory_signature`` column) is kept for ``N202``
  (its recurrence must be visible, below), ``F501`` / ``F502`` (overflows are events,
  not loss values) and ``L301`` by a non-finite loss at step <= 100, and when the printed
  values look like ``N202`` or hold fewer than 3 finite points. ``N203`` when the run's
  loss went non-finite but the log prints no non-finite loss (only hidden ones);
* ``first_nonfinite_step``: the step of the first line showing a non-finite value or
  event, in the step convention of the format as :func:`logsleuth.read_log` reads it;
  for ``N203`` the trajectory's first non-finite step in that convention;
* a rendering is *rejected* (another format / interval is tried) when the run went
  non-finite but the log keeps no trace of it, or when an ``N202`` run's recurrence is
  not visible (fewer than two failing attempts / epochs printed).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .label import Measurement
from .runs import Attempt, Trajectory

LOSS_FAILURES = frozenset({"L301", "X101", "N201", "N202"})


@dataclass
class Line:
    """One printed line (``end='\\n'``) or progress-bar update (``end='\\r'`` or ``''``)."""

    text: str
    step: int | None = None  # the step a reader attributes to the line (format convention)
    exact: bool = False  # the step is printed on this very line
    bad: str = ""  # "loss" | "grad" | "event" | "overflow" when it shows a non-finite moment
    hidden: bool = False  # the printer hid a non-finite loss here
    tstep: int | None = None  # trajectory step behind the line
    value: float | None = None  # the training loss the line prints (nan / inf: shows a non-finite one)
    attempt: int = 0
    end: str = "\n"
    rankable: bool = True
    key: bool = False


@dataclass
class Rendered:
    """A finished log with its label fields."""

    text: str
    signature: str
    first_nonfinite_step: int | None
    first_nonfinite_line: int | None
    first_nonfinite_exact: bool
    variation: str
    interval: int
    options: dict = field(default_factory=dict)


# ---- per-attempt columns and logging windows ------------------------------------------


class Cols:
    """An attempt's rows as numpy columns."""

    def __init__(self, att: Attempt) -> None:
        self.att = att
        r = att.rows
        self.n = len(att)
        self.step = np.array(r["step"], dtype=int)
        self.epoch = np.array(r["epoch"], dtype=int)
        self.it = np.array(r["it"], dtype=int)
        self.loss = att.column("loss")
        self.grad = att.column("grad_norm")
        self.lr = att.column("lr")
        self.acc = att.column("acc") if any(v is not None for v in r.get("acc", [])) else None
        self.scale = att.column("scale") if "scale" in r else None
        self.overflow = np.array(r.get("overflow", [0] * self.n), dtype=bool)
        self.terms = {k: np.array(v, dtype=float) for k, v in att.terms.items()}


@dataclass
class Point:
    """Values printed at one logging step, aggregated over the window since the last one."""

    i: int  # row index of the logged step
    step: int
    epoch: int
    it: int
    loss: float  # window mean (or the value at the step, see ``reduce``)
    last: float  # loss at the step itself
    grad: float  # at the step itself
    grad_mean: float  # mean over the window's kept steps
    lr: float
    acc: float | None
    scale: float | None
    terms: dict[str, float]
    n: int
    skipped: int
    nan_skipped: int
    first_bad: int | None  # first trajectory step of the window with a non-finite loss


def mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def window_point(c: Cols, lo: int, i: int, reduce: str = "mean", skip_overflow: bool = False) -> Point:
    """Aggregate rows ``lo..i`` (inclusive) into the point printed at row ``i``."""
    rows = range(lo, i + 1)
    kept = [j for j in rows if not (skip_overflow and c.overflow[j])]
    pick = kept if reduce == "mean" else [i]
    bad = [j for j in rows if not math.isfinite(c.loss[j])]
    terms = {k: (mean([v[j] for j in pick]) if pick else math.nan) for k, v in c.terms.items()}
    return Point(i=i, step=int(c.step[i]), epoch=int(c.epoch[i]), it=int(c.it[i]),
                 loss=mean([c.loss[j] for j in pick]), last=float(c.loss[i]), grad=float(c.grad[i]),
                 grad_mean=mean([c.grad[j] for j in kept]),
                 lr=float(c.lr[i]), acc=mean([c.acc[j] for j in pick]) if c.acc is not None and pick else None,
                 scale=float(c.scale[i]) if c.scale is not None else None, terms=terms, n=len(rows),
                 skipped=int(sum(c.overflow[j] for j in rows)),
                 nan_skipped=int(sum(c.overflow[j] and not math.isfinite(c.loss[j]) for j in rows)),
                 first_bad=int(c.step[bad[0]]) if bad else None)


def logged_points(c: Cols, at: Callable[[int], bool], reduce: str = "mean", skip_overflow: bool = False,
                  until: int | None = None) -> Iterator[Point]:
    """Points at every row whose step satisfies ``at`` (rows up to ``until`` exclusive)."""
    lo = 0
    end = c.n if until is None else until
    for i in range(end):
        if at(int(c.step[i])):
            yield window_point(c, lo, i, reduce, skip_overflow)
            lo = i + 1


def shown(value: float, *others: float) -> float:
    """The loss a line shows: ``value``, unless another loss printed beside it is non-finite.

    A line printing the step's loss and a running mean shows a failure when either is
    non-finite (an earlier, unprinted nan keeps the mean at nan): the reader sees it there.
    """
    return next((v for v in (value, *others) if not math.isfinite(v)), value)


def first_stop(c: Cols, kind: str = "nonfinite") -> int | None:
    """Row where a stop-on-nan framework raises: first non-finite (``isnan``: nan only) loss."""
    test = (lambda v: math.isnan(v)) if kind == "isnan" else (lambda v: not math.isfinite(v))
    for i in range(c.n):
        if test(c.loss[i]):
            return i
    return None


# ---- clocks and number formats ----------------------------------------------------------


class Clock:
    """Synthetic wall clock: a start date and a per-step duration with jitter."""

    def __init__(self, rng: np.random.Generator, sec_per_step: float | None = None) -> None:
        self.rng = rng
        self.now = dt.datetime(2018, 1, 1) + dt.timedelta(seconds=int(rng.integers(0, 6 * 365 * 86400)),
                                                          microseconds=int(rng.integers(0, 1_000_000)))
        self.sps = sec_per_step or float(np.exp(rng.uniform(np.log(0.05), np.log(2.0))))
        self.start = self.now

    def advance(self, steps: int = 1) -> dt.datetime:
        self.now += dt.timedelta(seconds=steps * self.sps * float(self.rng.uniform(0.85, 1.15)))
        return self.now

    def nudge(self) -> dt.datetime:
        """A few microseconds to milliseconds later (consecutive lines of one step)."""
        self.now += dt.timedelta(microseconds=int(self.rng.integers(5, 3000)))
        return self.now

    def gap(self, lo: float = 60, hi: float = 7200) -> dt.datetime:
        self.now += dt.timedelta(seconds=float(self.rng.uniform(lo, hi)))
        return self.now

    def elapsed(self) -> float:
        return (self.now - self.start).total_seconds()


def hms(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


def mmss(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def cfmt(x: float, neg_nan: bool = False, digits: int = 6) -> str:
    """C++ ``std::ostream`` default (``%g``, 6 significant digits); glibc may print ``-nan``."""
    if math.isnan(x):
        return "-nan" if neg_nan else "nan"
    return f"{x:.{digits}g}"


def f32(x: float) -> str:
    """numpy float32 ``str`` (shortest round-trip), as TF hooks print a loss."""
    return str(np.float32(x))


# ---- printers ---------------------------------------------------------------------------


class Printer:
    """A framework's log format. Subclasses set the class attributes and ``render``."""

    name = ""
    heldout = False  # only in the held-out split
    fp16 = False  # can show fp16 overflow / loss scale
    stops_on_nan = False  # every variant stops at the first non-finite loss
    intervals: tuple[int, ...] = (1, 5, 10, 20, 50, 100)
    max_points = 300

    def accepts(self, traj: Trajectory, meas: Measurement) -> bool:
        if traj.spec.fp16 and not self.fp16:
            return False
        if self.stops_on_nan and continues_after_nan(traj):
            return False
        return True

    def pick_interval(self, rng: np.random.Generator, traj: Trajectory) -> int | None:
        steps = max(len(a) for a in traj.attempts)
        ok = [k for k in self.intervals if 8 <= steps / k <= self.max_points]
        if not ok:
            ok = [k for k in self.intervals if steps / k >= 3][-1:] or [self.intervals[0]]
        return int(ok[int(rng.integers(len(ok)))])

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        return {}

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        raise NotImplementedError

    def printed_step(self, tstep: int, traj: Trajectory, opts: dict) -> int:
        """Trajectory step -> the step as the format prints it (read back by logsleuth)."""
        return tstep


def continues_after_nan(traj: Trajectory) -> bool:
    """Training went on, finite, after a non-finite loss (a guard or a loss scaler skipped it)."""
    for att in traj.attempts:
        loss = att.column("loss")
        bad = np.flatnonzero(~np.isfinite(loss))
        if len(bad) and np.isfinite(loss[bad[0]:]).any():
            return True
    return False


def new_attempt_lines(printer_lines: list[Line], att: Attempt, banner: list[str], step: int | None) -> None:
    """Banner lines printed when a re-queued / resumed attempt starts."""
    for text in banner:
        printer_lines.append(Line(text, step=step, attempt=att.index))


Fields = dict[str, Any]
