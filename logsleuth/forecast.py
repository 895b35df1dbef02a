"""Early warning for a run being watched: records in, in file order; alerts out.

A failing run usually says it is coming before the first nan: the loss (or the gradient
norm) grows by a steady factor per record, the fp16 loss scale halves again and again,
or the gradient norm jumps while the loss has not moved yet. :class:`Forecaster` keeps a
bounded window of the recent values of each watched series and raises one
:class:`Alert` per new condition, with the step, the line and the numbers that decided it.
It never sleeps and never reads a file, so a benchmark or a test drives it record by
record (``bench/watch_lead.py`` measures it on the real-framework corpus).

Conditions (thresholds in :class:`Thresholds`, tuned so that no healthy run of the corpus
raises one; the lead they buy is printed by ``bench/watch_lead.py``):

* ``loss-growth`` / ``grad-norm-growth``: over the last W records (several W, smallest
  first) the log of the value rises on a straight line (R² of the fit), nearly every
  record is above the one before, the fitted growth over the window is at least a
  factor, and the newest value is the window's largest (the growth is still under way);
* ``grad-norm-spike``: a gradient norm many times the median of the ones before it while
  the loss is still near its own recent median (the loss spike has not come yet);
* ``loss-scale-collapse``: the fp16 loss scale halved several times in a row and is now
  small (early in training a scaler halves from 2^16 or 2^32 on purpose: that is no alarm),
  or, when the messages print no scale, many overflow skips in a row;
* ``nonfinite`` (a failure, not a warning): the first non-finite loss-like or gradient-norm
  value, or a non-finite event (words like "loss is nan", a missing Megatron loss, the
  minimum loss scale). An fp16 overflow skip alone is not one: dynamic loss scaling skips
  steps by design (F501), the collapse warning above watches them instead.

A condition that fired re-arms only after it has been false for :attr:`Thresholds.rearm`
evaluations, so a long explosion is one warning, not one per poll. A step counter going
back (a restart) starts the windows afresh and re-arms everything.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .types import GRAD_METRICS, NONFINITE_EVENTS, is_loss_metric

#: non-finite events that are a failure the moment they appear (an overflow skip is not)
FAILURE_EVENTS = NONFINITE_EVENTS - {"overflow"}
#: the signature each condition points to (``LOGSLEUTH_CODE`` of a warning)
CONDITION_CODES = {"loss-growth": "X101", "grad-norm-growth": "X101", "grad-norm-spike": "X101",
                   "loss-scale-collapse": "F502"}
#: loss names preferred as "the" training loss, before any other loss-like metric
_MAIN_LOSSES = ("loss", "total_loss", "lm_loss", "train_loss")


@dataclass(frozen=True)
class Thresholds:
    """When a condition fires. Growth factors are over the whole window (not per record)."""

    #: (records, growth factor over them): a short window must show a steep climb, a long
    #: one a steady climb (its straight line and rising share are the evidence)
    windows: tuple[tuple[int, float], ...] = ((6, 16.0), (10, 8.0), (20, 4.0), (40, 3.0), (80, 3.0))
    grad_factor: float = 2.5  # the grad norm must climb this much more than the loss (it is noisier)
    r2: float = 0.85
    rising: float = 0.8  # share of records above the one before
    spike_ratio: float = 10.0  # x the median of the grad norms before it
    spike_z: float = 6.0  # robust z-score in log space (a noisy series needs a larger jump)
    spike_floor: float = 0.1  # a grad norm below this is no spike, however small the ones before
    spike_history: int = 8  # grad norms needed before a spike can be judged
    spike_loss_ratio: float = 2.0  # the loss "has not moved" while under this x its median
    scale_halvings: int = 4
    scale_floor: float = 64.0
    overflow_run: int = 10  # overflow skips in a row, when no scale is printed
    rearm: int = 20


@dataclass(frozen=True)
class Alert:
    """One line of ``logsleuth watch``: a warning (a failure is coming) or the failure."""

    event: str  # "warning" or "failure"
    kind: str  # a condition above, or "nonfinite"
    step: int | None
    line: int | None
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def code(self) -> str:
        """The signature the warning points to; a failure's is set by the diagnosis."""
        return CONDITION_CODES.get(self.kind, "")


@dataclass
class _Series:
    """The recent (step, value, line) of one metric: a bounded window."""

    size: int
    steps: deque = field(default_factory=deque)
    values: deque = field(default_factory=deque)
    lines: deque = field(default_factory=deque)

    def add(self, step: int | None, value: float, line: int) -> None:
        if self.steps and self.steps[-1] == step and self.values[-1] == value:
            self.lines[-1] = line  # a bar redrawn with the same value: one record
            return
        for column, item in ((self.steps, step), (self.values, value), (self.lines, line)):
            column.append(item)
            if len(column) > self.size:
                column.popleft()


def growth(values: np.ndarray, scale: float, t: Thresholds) -> dict[str, float] | None:
    """The evidence of geometric growth at the end of ``values`` (smallest window that
    shows it; each window's factor times ``scale``), or None. Values must be positive and
    finite to count."""
    for w, factor_needed in t.windows:
        threshold = factor_needed * scale
        if len(values) < w:
            return None
        v = values[-w:]
        if not np.all(np.isfinite(v)) or np.any(v <= 0) or v[-1] < v.max():
            continue
        y = np.log(v)
        x = np.arange(w, dtype=float)
        slope, icpt = np.polyfit(x, y, 1)
        resid = y - (slope * x + icpt)
        total = float(np.sum((y - y.mean()) ** 2))
        r2 = 1.0 - float(np.sum(resid ** 2)) / total if total > 0 else 0.0
        factor = math.exp(slope * (w - 1))
        rising = float(np.mean(np.diff(v) > 0))
        if slope > 0 and r2 >= t.r2 and rising >= t.rising and factor >= threshold:
            return {"records": w, "from": float(v[0]), "to": float(v[-1]), "factor": round(factor, 2),
                    "per_record": round(math.exp(slope), 3), "r2": round(r2, 3)}
    return None


class Forecaster:
    """Feed records with :meth:`observe` and events with :meth:`observe_event`, in file
    order; each returns the alerts it raises (usually none)."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.t = thresholds or Thresholds()
        self._reset()

    def _reset(self) -> None:
        size = max(w for w, _ in self.t.windows) + 1
        self.series: dict[str, _Series] = {m: _Series(size) for m in ("loss", "grad_norm")}
        self.main_loss: str | None = None
        self.last_step: int | None = None
        self.quiet: dict[str, int] = {}  # fired condition -> evaluations it has been false since
        self.failed = False
        self.scale: float | None = None
        self.halvings = 0
        self.overflows = 0

    def observe(self, metric: str, step: int | None, value: float, line: int, phase: str = "train") -> list[Alert]:
        """One parsed record (``metric`` canonical, ``value`` as printed, nan/inf kept)."""
        alerts: list[Alert] = []
        watched = is_loss_metric(metric) or metric in GRAD_METRICS
        if watched and not math.isfinite(value):
            return self._failure(step, line, f"non-finite {metric} ({value})", {"metric": metric})
        if phase != "train":
            return alerts
        if step is not None and self.last_step is not None and step < self.last_step:
            self._reset()  # a restart: the old windows say nothing about the new attempt
        self.last_step = step if step is not None else self.last_step
        if metric == "loss_scale":
            return self._scale(value, step, line)
        if metric in GRAD_METRICS:
            alerts += self._spike(step, value, line)
            self.series["grad_norm"].add(step, value, line)
            alerts += self._growth("grad-norm-growth", "grad norm", self.series["grad_norm"], self.t.grad_factor)
        elif self._is_main_loss(metric):
            self.series["loss"].add(step, value, line)
            alerts += self._growth("loss-growth", metric.replace("_", " "), self.series["loss"], 1.0)
        return alerts

    def observe_event(self, kind: str, step: int | None, line: int, text: str,
                      fields: Mapping[str, Any] | None = None) -> list[Alert]:
        """One event of the log (see :class:`logsleuth.types.Event`)."""
        if kind in FAILURE_EVENTS:
            return self._failure(step, line, f"non-finite event ({kind.replace('_', ' ')})", {"event": kind}, text)
        if kind == "overflow" and "loss_scale" not in (fields or {}):
            self.overflows += 1  # a scale printed with it arrives as a loss_scale record too
            if self.overflows >= self.t.overflow_run:
                return self._fire("loss-scale-collapse", True, step, line,
                                  f"{self.overflows} fp16 overflow skips in a row", {"overflows": self.overflows})
        return []

    def _is_main_loss(self, metric: str) -> bool:
        """The first loss the run prints is "the" loss unless a canonical name comes later."""
        if not is_loss_metric(metric) or metric.startswith("eval"):
            return False
        if self.main_loss is None or (metric in _MAIN_LOSSES and self.main_loss not in _MAIN_LOSSES):
            self.main_loss = metric
            self.series["loss"] = _Series(self.series["loss"].size)
        return metric == self.main_loss

    def _failure(self, step: int | None, line: int, what: str, evidence: dict, text: str = "") -> list[Alert]:
        if self.failed:
            return []
        self.failed = True
        return [Alert("failure", "nonfinite", step, line, what, evidence, text)]

    def _growth(self, kind: str, label: str, s: _Series, scale: float) -> list[Alert]:
        found = growth(np.fromiter(s.values, float, len(s.values)), scale, self.t)
        if found is None:
            return self._fire(kind, False)
        first = list(s.steps)[-int(found["records"])]
        found["from_step"] = first
        message = (f"{label} growing geometrically: x{found['factor']:g} over {found['records']} records "
                   f"(x{found['per_record']:g} per record, R² {found['r2']:g}): {found['from']:.4g} at step "
                   f"{first} -> {found['to']:.4g} at step {s.steps[-1]}")
        return self._fire(kind, True, s.steps[-1], s.lines[-1], message, found)

    def _spike(self, step: int | None, value: float, line: int) -> list[Alert]:
        history = np.fromiter(self.series["grad_norm"].values, float)[-2 * self.t.spike_history:]
        history = history[np.isfinite(history) & (history > 0)]
        if len(history) < self.t.spike_history or not math.isfinite(value) or value < self.t.spike_floor:
            return self._fire("grad-norm-spike", False)
        logs = np.log(history)
        centre = float(np.median(logs))
        spread = max(1.4826 * float(np.median(np.abs(logs - centre))), 0.05)
        median, z = math.exp(centre), (math.log(value) - centre) / spread
        losses = np.fromiter(self.series["loss"].values, float)[-2 * self.t.spike_history:]
        loss_calm = len(losses) > 0 and losses[-1] <= self.t.spike_loss_ratio * float(np.median(losses))
        spiked = value >= self.t.spike_ratio * median and z >= self.t.spike_z and loss_calm
        if not spiked:
            return self._fire("grad-norm-spike", False)
        evidence = {"grad_norm": value, "median": median, "ratio": round(value / median, 1), "z": round(z, 1),
                    "loss": float(losses[-1])}
        message = (f"grad norm spike: {value:.4g} is x{value / median:.1f} the median of the last {len(history)} "
                   f"({median:.4g}; {z:.0f} robust sd) while the loss is still {losses[-1]:.4g}")
        return self._fire("grad-norm-spike", True, step, line, message, evidence)

    def _scale(self, value: float, step: int | None, line: int) -> list[Alert]:
        if self.scale is not None and value < self.scale:
            self.halvings += 1
        elif self.scale is not None and value > self.scale:
            self.halvings = 0
        self.overflows = 0
        previous, self.scale = self.scale, value
        collapsing = self.halvings >= self.t.scale_halvings and value <= self.t.scale_floor
        message = (f"fp16 loss scale collapsing: {self.halvings} halvings in a row, now {value:g} "
                   f"(was {previous:g})" if collapsing and previous is not None else "")
        return self._fire("loss-scale-collapse", collapsing, step, line, message,
                          {"halvings": self.halvings, "loss_scale": value})

    def _fire(self, kind: str, active: bool, step: int | None = None, line: int | None = None,
              message: str = "", evidence: Mapping[str, Any] | None = None) -> list[Alert]:
        """An alert when ``kind`` turns true and is armed; track how long it has been false."""
        if not active:
            if kind in self.quiet:
                self.quiet[kind] += 1
            return []
        armed = self.quiet.get(kind, self.t.rearm) >= self.t.rearm
        self.quiet[kind] = 0
        if not armed:
            return []
        return [Alert("warning", kind, step, line, message, dict(evidence or {}))]
