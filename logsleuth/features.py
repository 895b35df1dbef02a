"""RunSeries -> one row of named, documented features (the classifier's input and the
evidence shown to users).

Every feature is a float (``nan`` = not applicable / not derivable; never ``inf``: every
value is clipped to ``[-CLIP, CLIP]`` and growth rates are log-scale and bounded by
``RATE_CLIP``). :data:`FEATURES` lists them in vector order with unit and documentation;
bump :data:`FEATURE_SCHEMA_VERSION` whenever a name, a meaning or the order changes, so a
trained classifier can refuse a vector it was not trained on.

Vocabulary used by the feature docs (decisions written down here, once):

* **primary loss** -- the train-phase metric ``loss`` when printed; otherwise the only
  train loss-like metric (:func:`logsleuth.types.is_loss_metric`); otherwise, when only
  components are printed (YOLO, a detectron2 ``loss_dict``), their sum per line (nan if
  one is nan). Other train loss-like metrics are **components**, except running averages
  (``*avg*``) and Caffe's ``output_loss`` (the net output named ``loss``: the total again).
* **rank** -- when several ranks print, the curves use the rank with most loss records
  (rows without a rank always count); non-finite values and events of every rank count.
* **first non-finite** -- the first non-finite loss / grad-norm value (any phase) or
  non-finite event by line, an event winning a tie: what ``RunSeries.first_nonfinite``
  shows the user. ``first_nonfinite_*`` features describe it.
* **failure** -- the first non-finite moment training did *not* survive: like the first
  non-finite, except that an fp16 ``overflow`` skip followed by a finite primary loss in the
  same segment is routine dynamic loss scaling, not a failure. "Before failure" windows
  end there; a run without a failure uses its whole focus segment ("healthy" path).
* **focus segment** -- the segment holding the failure; without one, the segment with most
  primary-loss records (the latest on a tie).
* **several attempts** -- ``compute_features([a, b])`` treats the files as consecutive
  segments of one job (the first file's failure is *the* failure), so a failure at the same
  step in two files is the same evidence as in two restarts of one file.

Feature functions never raise on odd input (no rows, only events, steps all missing, one
record, eval only); should one still fail, :func:`compute_features` warns
(``RuntimeWarning``, naming the feature) and stores ``nan`` -- the tests turn that warning
into an error. The module is longer than the house's ~400 lines because the feature
catalogue (docs included) is one list that must stay in one place, in order.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .engine.schema import COLUMNS, conform
from .types import GRAD_METRICS, NONFINITE_EVENTS, RunSeries, is_loss_metric

FEATURE_SCHEMA_VERSION = 5

#: every feature value is clipped to [-CLIP, CLIP] (ratios of exploding losses reach 1e30)
CLIP = 1e12
#: bound of log-scale growth rates (ln units per record / per step)
RATE_CLIP = 50.0
#: records in the growth-rate window before a failure
GROWTH_WINDOW = 10
#: a spike is a finite loss above SPIKE_FACTOR x the rolling median of the previous records
SPIKE_FACTOR = 3.0
#: a loss scale at or below this is the dynamic scaler's floor (fairseq prints 0.0001)
MIN_SCALE = 1e-4
#: name of the primary loss when a log prints components but no total (YOLO, detectron2 dicts)
SUM_OF_COMPONENTS = "sum_of_loss_components"


@dataclass(frozen=True)
class Feature:
    """One column of the feature row: ``name``, ``unit`` and what it measures (``doc``)."""

    name: str
    unit: str
    doc: str


_FEATURES: list[Feature] = []
_COMPUTE: dict[str, Callable[[_Run], float]] = {}


def _feature(name: str, unit: str, doc: str) -> Callable[[Callable[[_Run], float]], Callable[[_Run], float]]:
    def register(fn: Callable[[_Run], float]) -> Callable[[_Run], float]:
        _FEATURES.append(Feature(name, unit, " ".join(doc.split())))
        _COMPUTE[name] = fn
        return fn
    return register


# ---- the run, normalised once ---------------------------------------------------------

_NAN = math.nan
_COLS = [*COLUMNS, "row"]  # the long frame (logsleuth.engine.schema) plus its file order
_FATAL_POINT = ("value", "nonfinite", "loss_missing", "terminate_on_nan", "min_loss_scale")


def _plain_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The long frame with plain dtypes (float steps, NaN for missing), sorted by line."""
    if frame is None or not len(frame):
        return pd.DataFrame({c: pd.Series(dtype=float if c not in ("metric", "phase") else object)
                             for c in _COLS})
    out = pd.DataFrame({
        "step": pd.to_numeric(frame["step"], errors="coerce").astype(float),
        "metric": _categories(frame["metric"]),
        "value": pd.to_numeric(frame["value"], errors="coerce").astype(float),
        "phase": frame["phase"].astype(str),
        "segment": pd.to_numeric(frame["segment"], errors="coerce").fillna(0).astype(int),
        "rank": pd.to_numeric(frame["rank"], errors="coerce").astype(float),
        "epoch": pd.to_numeric(frame.get("epoch", pd.Series(_NAN, index=frame.index)), errors="coerce"),
        "line": pd.to_numeric(frame["line"], errors="coerce").fillna(0).astype(int),
    })
    out = out.sort_values("line", kind="stable").reset_index(drop=True)
    return out.assign(row=np.arange(len(out)))  # file order within a line (tqdm's \r keeps a run on one line)


def _lossy(metric: pd.Series, exclude_avg: bool = False) -> pd.Series:
    """is_loss_metric per row, evaluated once per distinct name (logs have millions of rows);
    ``exclude_avg`` also drops running averages (``avg_loss``, ``train_loss_avg``)."""
    names = [n for n in metric.unique() if is_loss_metric(n) and not (exclude_avg and "avg" in n)]
    return metric.isin(names)


def _categories(metric: pd.Series) -> pd.Series:
    """Metric names as a categorical of str: comparisons and isin then cost one pass of codes."""
    if isinstance(metric.dtype, pd.CategoricalDtype) and all(isinstance(c, str) for c in metric.cat.categories):
        return metric
    return metric.astype(str).astype("category")


class _Run:
    """What the features share, computed lazily once: primary loss, failure, focus segment."""

    def __init__(self, series: RunSeries) -> None:
        self.series = series
        self.all_rows = _plain_frame(series.frame)
        self.events = tuple(series.events)

    # -- rows -----------------------------------------------------------------------
    @cached_property
    def rows(self) -> pd.DataFrame:
        """All rows of the chosen rank (rows without a rank always kept)."""
        f = self.all_rows
        ranks = f["rank"].dropna()
        if ranks.nunique() <= 1:
            return f
        lossy = f[_lossy(f["metric"]) & f["rank"].notna()]
        chosen = lossy["rank"].value_counts().sort_index(kind="stable").idxmax() if len(lossy) else ranks.min()
        return f[f["rank"].isna() | (f["rank"] == chosen)].reset_index(drop=True)

    @cached_property
    def train(self) -> pd.DataFrame:
        return self.rows[self.rows["phase"] == "train"]

    @cached_property
    def loss_name(self) -> str | None:
        """``loss``; else the only loss-like train metric; else the sum of the components."""
        names = set(self.train["metric"][_lossy(self.train["metric"])])
        if "loss" in names or not names:
            return "loss" if names else None
        parts = {n for n in names if n != "output_loss" and "avg" not in n}
        return SUM_OF_COMPONENTS if len(parts) > 1 else sorted(names)[0]

    @cached_property
    def loss(self) -> pd.DataFrame:
        if self.loss_name != SUM_OF_COMPONENTS:
            return self.train[self.train["metric"] == self.loss_name]
        comps = self.components
        grouped = comps.groupby(["segment", "line"], sort=False)  # components of a line, summed
        total = grouped.agg(step=("step", "first"), epoch=("epoch", "first"), rank=("rank", "first"),
                            row=("row", "first"), value=("value", lambda v: float(np.sum(v.to_numpy()))))
        total = total.reset_index().assign(metric=SUM_OF_COMPONENTS, phase="train")
        return total[_COLS].sort_values("line", kind="stable").reset_index(drop=True)

    def metric(self, name: str) -> pd.DataFrame:
        return self.train[self.train["metric"] == name]

    @cached_property
    def components(self) -> pd.DataFrame:
        m = self.train["metric"]
        keep = _lossy(m, exclude_avg=True) & (m != "loss") & (m != "output_loss")
        if self.loss_name not in ("loss", SUM_OF_COMPONENTS):
            keep &= m != self.loss_name
        return self.train[keep]

    # -- non-finite points ------------------------------------------------------------
    @cached_property
    def points(self) -> pd.DataFrame:
        """Every non-finite watched value and non-finite event: line, step, segment, metric,
        kind ('value' or the event kind), phase; sorted by line, events first on a line."""
        f = self.all_rows  # a nan printed by any rank is evidence
        watched = _lossy(f["metric"]) | f["metric"].isin(GRAD_METRICS)
        bad = f[watched & ~np.isfinite(f["value"].to_numpy())]
        values = pd.DataFrame({"line": bad["line"], "step": bad["step"], "segment": bad["segment"],
                               "metric": bad["metric"], "kind": "value", "phase": bad["phase"], "order": 1,
                               "row": bad["row"]})
        evs = [(e.line, _NAN if e.step is None else float(e.step), int(e.segment), e.kind, e.kind, "train", 0, -1)
               for e in self.events if e.kind in NONFINITE_EVENTS]
        events = pd.DataFrame(evs, columns=list(values.columns))
        both = pd.concat([x for x in (events, values) if len(x)], ignore_index=True) if (len(evs) or len(bad)) \
            else values
        return both.sort_values(["line", "order"], kind="stable").reset_index(drop=True)

    @cached_property
    def first(self) -> pd.Series | None:
        return None if not len(self.points) else self.points.iloc[0]

    @cached_property
    def fatal_points(self) -> pd.DataFrame:
        """Non-finite points that count as a failure (overflow skips survived are dropped)."""
        p = self.points
        if not len(p):
            return p
        finite = self.loss[np.isfinite(self.loss["value"].to_numpy())]
        last_finite = finite.groupby("segment")["line"].max()
        survived = (p["kind"] == "overflow") & (p["line"] < p["segment"].map(last_finite).fillna(-1))
        return p[~survived]

    @cached_property
    def failure(self) -> pd.Series | None:
        return None if not len(self.fatal_points) else self.fatal_points.iloc[0]

    @cached_property
    def focus_segment(self) -> int | None:
        if self.failure is not None:
            return int(self.failure["segment"])
        if not len(self.loss):
            return None
        counts = self.loss["segment"].value_counts()
        return int(max(counts.index[counts == counts.max()]))

    def in_focus(self, rows: pd.DataFrame) -> pd.DataFrame:
        return rows[rows["segment"] == self.focus_segment]

    def before(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Finite rows of the focus segment before the failure (all of them without one)."""
        rows = self.in_focus(rows)
        rows = rows[np.isfinite(rows["value"].to_numpy())]
        if self.failure is not None:
            # on the failure's own line (tqdm's \r keeps a whole run on one), the rows printed
            # before it at an earlier step (an event comes before the rows of its line)
            line, row, step = self.failure["line"], self.failure["row"], self.failure["step"]
            same_line = (rows["line"] == line) & (rows["row"] < row) & (rows["step"] < step)
            rows = rows[(rows["line"] < line) | same_line]
        return rows

    @cached_property
    def pre(self) -> pd.DataFrame:
        """Finite primary-loss records of the focus segment before the failure."""
        return self.before(self.loss)

    @cached_property
    def failure_step(self) -> float:
        return _NAN if self.failure is None else float(self.failure["step"])


# ---- small numeric helpers ------------------------------------------------------------

def _clip(value: float, bound: float = CLIP) -> float:
    if value is None or math.isnan(value):
        return _NAN
    return float(min(max(value, -bound), bound))


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x; nan with fewer than 3 points or no spread in x."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0:
        return _NAN
    xc = x - x.mean()
    return float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))


def _log_growth(rows: pd.DataFrame, per_step: bool, window: int | None) -> float:
    """Slope of ln(value) per record (or per step): geometric growth rate, clipped."""
    rows = rows[rows["value"].to_numpy() > 0]
    if window:
        rows = rows.tail(window)
    x = rows["step"].to_numpy(float) if per_step else np.arange(len(rows), dtype=float)
    return _clip(_slope(x, np.log(rows["value"].to_numpy(float))), RATE_CLIP)


def _ratio(num: float, den: float) -> float:
    if not (math.isfinite(num) and math.isfinite(den)) or den <= 0:
        return _NAN
    return _clip(num / den)


def _number(value: Any) -> float:
    """A hyperparameter value as a float (bools 1/0, strings parsed, lists -> first item;
    None / 'none' -> nan: unset is not zero)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple)) and value:
        return _number(value[0])
    if isinstance(value, str):
        text = value.strip().strip("'\"[]").lower()
        if text in ("true", "yes", "on"):
            return 1.0
        if text in ("false", "no", "off"):
            return 0.0
        try:
            return float(text)
        except ValueError:
            return _NAN
    return _NAN


def _hparams(run: _Run, names: Sequence[str]) -> list[tuple[str, Any]]:
    """Hyperparameters whose key, or the key's last dotted part, is one of ``names``."""
    wanted = set(names)
    return [(k, h.value) for k, h in run.series.hparams.items()
            if k in wanted or k.rsplit(".", 1)[-1] in wanted]


def _first_number(run: _Run, names: Sequence[str]) -> float:
    """The value of the first of ``names`` (in preference order) that is a number."""
    found = dict(_hparams(run, names))
    for name in names:
        for key, value in found.items():
            if key == name or key.rsplit(".", 1)[-1] == name:
                number = _number(value)
                if math.isfinite(number):
                    return number
    return _NAN


def _flag(condition: bool) -> float:
    return 1.0 if condition else 0.0


# ---- failure: where and what --------------------------------------------------------

@_feature("has_nonfinite", "0/1", """1 if any loss-like or grad-norm value (any phase) is
    nan/inf, or the log reports a non-finite event (overflow skip, loss_missing,
    terminate_on_nan, non-finite error, min loss scale), in any file; else 0.""")
def has_nonfinite(run: _Run) -> float:
    return _flag(len(run.points) > 0)


@_feature("first_nonfinite_step", "step", """Training step of the first non-finite value or
    event (by line). nan when there is none or its line carries no step.""")
def first_nonfinite_step(run: _Run) -> float:
    return _NAN if run.first is None else float(run.first["step"])


@_feature("first_nonfinite_is_event", "0/1", """1 if the first non-finite moment is an event
    (overflow, loss_missing, terminate_on_nan, FloatingPointError ...) rather than a printed
    nan/inf value; nan without any non-finite.""")
def first_nonfinite_is_event(run: _Run) -> float:
    return _NAN if run.first is None else _flag(run.first["kind"] != "value")


@_feature("first_nonfinite_is_grad", "0/1", """1 if grad_norm went non-finite first while the
    primary loss at that step was finite or not printed (the optimiser saw inf/nan grads
    before the loss showed it); 0 otherwise; nan without any non-finite.""")
def first_nonfinite_is_grad(run: _Run) -> float:
    first = run.first
    if first is None:
        return _NAN
    if first["kind"] != "value" or first["metric"] not in GRAD_METRICS:
        return 0.0
    same = run.loss[(run.loss["segment"] == first["segment"]) & (run.loss["line"] <= first["line"])]
    if not math.isnan(first["step"]):
        same = same[same["step"] == first["step"]]
    return _flag(not len(same) or bool(np.isfinite(same["value"].to_numpy()).all()))


def first_bad_component(series: RunSeries) -> str | None:
    """The named loss component (not the total) that went non-finite first, or None.

    A component counts when it is non-finite no later than the primary loss (same step
    allowed: Caffe prints the total before the outputs) and the step singles it out: the
    total or another component was still finite there, or the total went bad only later.
    """
    with np.errstate(all="ignore"):
        return _bad_component(_Run(series))


def _bad_component(run: _Run) -> str | None:
    comps = run.components
    bad = comps[~np.isfinite(comps["value"].to_numpy())]
    if not len(bad):
        return None
    c = bad.iloc[0]
    seg_loss = run.loss[run.loss["segment"] == c["segment"]]
    total_bad = seg_loss[~np.isfinite(seg_loss["value"].to_numpy())]
    order = _step_order(total_bad.iloc[0], c) if len(total_bad) else 1
    if order < 0:
        return None  # the total went non-finite first
    same = _same_step(comps[comps["segment"] == c["segment"]], c)
    total_at = _same_step(seg_loss, c)
    other_finite = bool(np.isfinite(same["value"].to_numpy()).any())
    total_finite = not len(total_at) or bool(np.isfinite(total_at["value"].to_numpy()).any())
    return str(c["metric"]) if (order > 0 or other_finite or total_finite) else None


def _step_order(total: pd.Series, comp: pd.Series) -> int:
    """-1: the total went bad at an earlier step, 0: same step, 1: later (lines when no steps)."""
    if not (math.isnan(total["step"]) or math.isnan(comp["step"])):
        return int(np.sign(total["step"] - comp["step"]))
    return -1 if total["line"] < comp["line"] - 1 else (1 if total["line"] > comp["line"] + 1 else 0)


def _same_step(rows: pd.DataFrame, at: pd.Series) -> pd.DataFrame:
    """Per metric, its record of ``at``'s step nearest to ``at``'s line (a progress bar prints
    a step several times; Caffe prints the total and the outputs on adjacent lines)."""
    rows = rows[rows["line"] == at["line"]] if math.isnan(at["step"]) else rows[rows["step"] == at["step"]]
    if not len(rows):
        return rows
    distance = (rows["line"] - at["line"]).abs()
    return rows.loc[distance.groupby(rows["metric"], observed=True).idxmin()]


@_feature("first_nonfinite_is_component", "0/1", """1 if a named loss component (loss_cls,
    loss_mask, rpn_bbox_loss, ...; not the total) went non-finite first -- see
    first_bad_component() for its name; 0 otherwise; nan without any non-finite.""")
def first_nonfinite_is_component(run: _Run) -> float:
    return _NAN if run.first is None else _flag(_bad_component(run) is not None)


@_feature("first_nonfinite_is_eval", "0/1", """1 if the first non-finite value is an
    eval-phase metric (eval_loss nan while training looked finite); nan without any.""")
def first_nonfinite_is_eval(run: _Run) -> float:
    return _NAN if run.first is None else _flag(run.first["phase"] == "eval")


_HINT_KEYS = ("max_iter", "max_steps", "train_iters", "max_update", "num_train_steps", "total_steps",
              "train_steps", "num_training_steps", "total_num_steps")


@_feature("fraction_before_failure", "fraction", """How far training got: failure step over
    the total-steps hint (max_iter, max_steps, train_iters, max_update ...) when one is
    known and not exceeded, else over the largest step printed; when the failure has no
    step, primary-loss records before it over all records of its segment. 1.0 without a
    failure; nan when nothing is derivable. In [0, 1].""")
def fraction_before_failure(run: _Run) -> float:
    if run.failure is None:
        return 1.0 if len(run.loss) or len(run.points) else _NAN
    step = run.failure_step
    if math.isfinite(step) and step >= 0:
        hint = _first_number(run, _HINT_KEYS)
        steps = [s for s in (run.train["step"].max(), *(e.step for e in run.events if e.step is not None))
                 if s is not None and not math.isnan(s)]
        total = hint if math.isfinite(hint) and hint >= step else max(steps, default=_NAN)
        return _clip(step / total, 1.0) if total and total > 0 else _NAN
    seg = run.in_focus(run.loss)
    return float(len(seg[seg["line"] < run.failure["line"]]) / len(seg)) if len(seg) else _NAN


@_feature("n_logged_before_failure", "records", """Finite primary train-loss records of the
    focus segment before the failure (the whole segment without a failure).""")
def n_logged_before_failure(run: _Run) -> float:
    return float(len(run.pre))


# ---- the loss curve -------------------------------------------------------------------

@_feature("loss_growth_rate", "ln/record", f"""Geometric growth of the primary train loss per
    logged record: least-squares slope of ln(loss) over the last {GROWTH_WINDOW} finite
    positive records before the failure (the whole focus segment without a failure).
    exp(rate) is the factor per record; > 0 grows. nan with < 3 records; clipped to
    +-{RATE_CLIP:g}.""")
def loss_growth_rate(run: _Run) -> float:
    return _log_growth(run.pre, False, GROWTH_WINDOW if run.failure is not None else None)


@_feature("loss_growth_rate_per_step", "ln/step", """As loss_growth_rate, per training step
    (slope of ln(loss) on the step number); nan when steps are missing or all equal.""")
def loss_growth_rate_per_step(run: _Run) -> float:
    return _log_growth(run.pre, True, GROWTH_WINDOW if run.failure is not None else None)


@_feature("grad_norm_growth_rate", "ln/record", """As loss_growth_rate, for the finite
    positive grad_norm records before the failure; nan when grad_norm is not logged.""")
def grad_norm_growth_rate(run: _Run) -> float:
    return _log_growth(run.before(run.metric("grad_norm")), False,
                       GROWTH_WINDOW if run.failure is not None else None)


@_feature("jump_ratio", "ratio", """Last finite loss before the failure over the median of
    the earlier finite losses (a sudden nan has ~1, an explosion >> 1); without a failure,
    max loss over median. nan with < 2 records or a median <= 0.""")
def jump_ratio(run: _Run) -> float:
    values = run.pre["value"].to_numpy(float)
    if len(values) < 2:
        return _NAN
    if run.failure is None:
        return _ratio(float(values.max()), float(np.median(values)))
    return _ratio(float(values[-1]), float(np.median(values[:-1])))


@_feature("max_loss_over_initial", "ratio", """Largest finite loss before the failure over the
    first finite loss of the focus segment. nan with no records or a first loss <= 0.""")
def max_loss_over_initial(run: _Run) -> float:
    values = run.pre["value"].to_numpy(float)
    return _ratio(float(values.max()), float(values[0])) if len(values) else _NAN


@_feature("final_loss_over_initial", "ratio", """Last finite loss before the failure (or at the
    end) over the first finite loss of the focus segment; < 1 trained, > 1 diverged.""")
def final_loss_over_initial(run: _Run) -> float:
    values = run.pre["value"].to_numpy(float)
    return _ratio(float(values[-1]), float(values[0])) if len(values) else _NAN


@_feature("step_over_5x_initial", "step", """Step of the first finite loss before the failure
    above 5x the first finite loss of the focus segment: how early a blowup reached an
    absurd level (within ~100 steps: early; later, after many records: an explosion).
    nan when the loss never got there.""")
def step_over_5x_initial(run: _Run) -> float:
    over = _first_over_5x(run)
    return _NAN if over is None else float(run.pre["step"].to_numpy(float)[over])


@_feature("records_before_5x_initial", "records", """Finite loss records before the first one
    above 5x the first (see step_over_5x_initial); nan when the loss never got there.""")
def records_before_5x_initial(run: _Run) -> float:
    over = _first_over_5x(run)
    return _NAN if over is None else float(over)


def _first_over_5x(run: _Run) -> int | None:
    values = run.pre["value"].to_numpy(float)
    if not len(values) or values[0] <= 0:
        return None
    above = np.flatnonzero(values > 5 * values[0])
    return int(above[0]) if len(above) else None


@_feature("descent_before_failure", "fraction", """Relative decrease of the loss from its first
    value to its minimum before the failure: (first - min) / |first|; 0 when it never went
    down, ~1 when it fell a lot (the N201 'normal descent' evidence). nan with < 2 records
    or a first loss of 0.""")
def descent_before_failure(run: _Run) -> float:
    values = run.pre["value"].to_numpy(float)
    if len(values) < 2 or values[0] == 0:
        return _NAN
    return _clip((values[0] - values.min()) / abs(values[0]))


@_feature("initial_loss_log10", "log10", """log10 of |first finite primary loss| of the focus
    segment (huge first losses point at unnormalised input or a bad initialisation).""")
def initial_loss_log10(run: _Run) -> float:
    values = run.in_focus(run.loss)["value"].to_numpy(float)
    values = values[np.isfinite(values)]
    return _NAN if not len(values) else _clip(math.log10(max(abs(values[0]), 1e-30)))


def _finite_focus_loss(run: _Run) -> pd.DataFrame:
    rows = run.in_focus(run.loss)
    return rows[np.isfinite(rows["value"].to_numpy())]


@_feature("loss_trend", "fraction", """Least-squares slope of the loss on the step over every
    finite record of the focus segment, times the step span, over |mean loss|: the relative
    change the trend line predicts across the run (-0.5: halved; ~0: flat, the 'stalled'
    evidence). Record order stands in for missing steps. nan with < 3 records.""")
def loss_trend(run: _Run) -> float:
    rows = _finite_focus_loss(run)
    x = rows["step"].to_numpy(float)
    if np.isnan(x).any() or (len(x) and np.ptp(x) == 0):
        x = np.arange(len(rows), dtype=float)
    y = rows["value"].to_numpy(float)
    slope = _slope(x, y)
    mean = abs(float(y.mean())) if len(y) else 0.0
    return _NAN if math.isnan(slope) or mean == 0 else _clip(slope * float(np.ptp(x)) / mean)


@_feature("loss_cv", "ratio", """Coefficient of variation (std / |mean|) of the finite losses in
    the second half of the focus segment: small with a flat trend means stalled. nan with
    < 4 records or a zero mean.""")
def loss_cv(run: _Run) -> float:
    y = _finite_focus_loss(run)["value"].to_numpy(float)
    if len(y) < 4:
        return _NAN
    half = y[len(y) // 2:]
    mean = abs(float(half.mean()))
    return _NAN if mean == 0 else _clip(float(half.std()) / mean)


@_feature("spike_recovered", "0/1", f"""1 if a finite loss exceeded {SPIKE_FACTOR:g}x the median
    of the 5 records before it and, within the next 5 records, came back below 1.5x that
    median (a recovered spike); 0 otherwise; nan with < 6 finite records.""")
def spike_recovered(run: _Run) -> float:
    y = pd.Series(_finite_focus_loss(run)["value"].to_numpy(float))
    if len(y) < 6:
        return _NAN
    base = y.rolling(5).median().shift(1)
    spikes = np.flatnonzero(((base > 0) & (y > SPIKE_FACTOR * base)).to_numpy())
    after = y[::-1].rolling(5, min_periods=1).min()[::-1].shift(-1)  # min of the next 5 records
    return _flag(bool((after.to_numpy()[spikes] <= 1.5 * base.to_numpy()[spikes]).any()))


@_feature("spike_ratio", "ratio", """Height of the largest recovered spike, over the median of
    the 20 records before it: a finite loss > 3x that median, > 10 median absolute deviations
    above it and above half the initial loss, that is back under 1.5x the median within 50
    records (a spike against the run's own noise, not a noisy record); 0 without one; nan
    with < 21 finite records.""")
def spike_ratio(run: _Run) -> float:
    y = _finite_focus_loss(run)["value"].to_numpy(float)
    if len(y) < 21:
        return _NAN
    initial = float(y[0]) if sampling_interval(run) >= 5 else float(np.median(y[:5]))
    windows = np.lib.stride_tricks.sliding_window_view(y[:-1], 20)  # windows[t - 20] = y[t-20:t]
    med = np.median(windows, axis=1)
    mad = np.median(np.abs(windows - med[:, None]), axis=1)
    v = y[20:]
    candidates = np.flatnonzero((v > 3 * med) & (v - med > 10 * mad + 1e-12) & (v > 0.5 * abs(initial)))
    best = 0.0
    for k in candidates:
        after = y[20 + k + 1:20 + k + 51]
        if len(after) and bool((after < 1.5 * med[k]).any()):
            best = max(best, float(v[k] / med[k]) if med[k] > 0 else CLIP)
    return _clip(best)


# ---- fp16 / loss scaling --------------------------------------------------------------

def _overflows(run: _Run) -> list:
    return [e for e in run.events if e.kind == "overflow"]


@_feature("n_overflow_events", "count", """fp16 overflow skips reported (DeepSpeed OVERFLOW!,
    apex 'Gradient overflow', fairseq 'overflow detected'), in every file.""")
def n_overflow_events(run: _Run) -> float:
    return float(run.series.count("overflow"))


def _step_span(run: _Run) -> float:
    steps = [*run.train["step"].dropna().tolist(), *(e.step for e in run.events if e.step is not None)]
    return float(max(steps) - min(steps) + 1) if steps else _NAN


@_feature("overflow_rate", "1/step", """Overflow skips per training step over the steps the log
    covers (max - min + 1, from records and events); 0 without overflows when steps are
    known; nan when the log prints no step.""")
def overflow_rate(run: _Run) -> float:
    span = _step_span(run)
    return _NAN if math.isnan(span) else _clip(run.series.count("overflow") / span)


def _scales(run: _Run) -> list[tuple[int, float]]:
    """(line, loss scale) from loss_scale records and overflow / min-scale events."""
    rows = run.train[run.train["metric"] == "loss_scale"]
    out = [(int(line), float(v)) for line, v in zip(rows["line"], rows["value"]) if math.isfinite(v)]
    for e in run.events:
        if e.kind in ("overflow", "min_loss_scale"):
            value = _number(e.fields.get("loss_scale"))
            if math.isfinite(value):
                out.append((e.line, value))
    return sorted(out)


@_feature("loss_scale_min", "scale", """Smallest fp16 loss scale seen (loss_scale records or
    the scale an overflow reduced to); nan without loss scaling evidence.""")
def loss_scale_min(run: _Run) -> float:
    scales = _scales(run)
    return _clip(min(v for _, v in scales)) if scales else _NAN


@_feature("loss_scale_final_over_initial", "log2", """log2(last loss scale / first loss scale);
    the first is the 'attempted' scale of a leading overflow event when printed. -6 = six
    halvings. nan without two positive scales; clipped to +-1024.""")
def loss_scale_final_over_initial(run: _Run) -> float:
    scales = [v for _, v in _scales(run)]
    events = sorted((e for e in run.events if e.kind == "overflow"), key=lambda e: e.line)
    attempted = _number(events[0].fields.get("attempted_scale")) if events else _NAN
    lines = [line for line, _ in _scales(run)]
    if math.isfinite(attempted) and (not lines or events[0].line <= lines[0]):
        scales = [attempted, *scales]
    if len(scales) < 2 or scales[0] <= 0 or scales[-1] <= 0:
        return _NAN
    return _clip(math.log2(scales[-1] / scales[0]), 1024.0)


@_feature("min_loss_scale_reached", "0/1", f"""1 if the scaler hit its floor: a
    'Minimum loss scale reached' / 'already at minimum' event, a loss scale <= {MIN_SCALE:g},
    or two overflows back to back (no loss record between them) that could not lower the
    scale further; else 0.""")
def min_loss_scale_reached(run: _Run) -> float:
    if any(e.kind == "min_loss_scale" for e in run.events):
        return 1.0
    scales = _scales(run)
    if scales and min(v for _, v in scales) <= MIN_SCALE:
        return 1.0
    reported = [(e.line, _rank_label(e.text), _number(e.fields.get("loss_scale"))) for e in _overflows(run)]
    reported = [r for r in reported if math.isfinite(r[2])]
    if not reported:
        return 0.0
    floor = min(v for _, _, v in reported)
    loss_lines = np.sort(run.loss["line"].to_numpy())
    for (line_a, rank_a, a), (line_b, rank_b, b) in zip(reported, reported[1:]):
        between = np.searchsorted(loss_lines, line_b) - np.searchsorted(loss_lines, line_a, side="right")
        if a == b == floor and between == 0 and rank_a == rank_b:  # back to back (not two ranks' copies)
            return 1.0
    return 0.0


_RANK_LABEL = re.compile(r"^\s*(?:\[rank(\d+)\]:|(\d+):)")


def _rank_label(text: str) -> str | None:
    m = _RANK_LABEL.match(text)
    return None if m is None else (m.group(1) or m.group(2))


@_feature("overflow_after_last_finite", "0/1", """1 if an overflow skip comes after the last
    finite primary train loss (or the log has overflows and no finite loss at all):
    overflows go on to the end, the scaler never recovered; 0 otherwise.""")
def overflow_after_last_finite(run: _Run) -> float:
    overflows = _overflows(run)
    if not overflows:
        return 0.0
    finite = run.loss[np.isfinite(run.loss["value"].to_numpy())]
    last = int(finite["line"].max()) if len(finite) else -1
    return _flag(max(e.line for e in overflows) > last)


# ---- learning rate --------------------------------------------------------------------

def _lr_until_failure(run: _Run) -> pd.DataFrame:
    """Finite lr records of the failure segment up to the failure step (or line)."""
    if run.failure is None:
        return run.train.iloc[0:0]
    lr = run.in_focus(run.metric("lr"))
    lr = lr[np.isfinite(lr["value"].to_numpy())]
    step = run.failure_step
    if math.isfinite(step) and lr["step"].notna().all():
        return lr[lr["step"] <= step]
    return lr[lr["line"] <= run.failure["line"]]


@_feature("lr_at_failure", "lr", """Learning rate at the failure: the last logged lr at or
    before the failure step (Caffe prints it just after the loss). nan without a failure
    or lr records.""")
def lr_at_failure(run: _Run) -> float:
    lr = _lr_until_failure(run)
    return float(lr["value"].iloc[-1]) if len(lr) else _NAN


@_feature("lr_max", "lr", """Largest finite learning rate logged (train lr records, all
    segments); nan when lr is not logged.""")
def lr_max(run: _Run) -> float:
    values = run.metric("lr")["value"].to_numpy(float)
    values = values[np.isfinite(values)]
    return _clip(float(values.max())) if len(values) else _NAN


@_feature("lr_is_zero_at_failure", "0/1", """1 if lr_at_failure is 0 and so was the lr
    logged before it (the weights were frozen: a nan with lr = 0 is in the data or the forward
    pass, not the optimiser step); 0 otherwise (a schedule that only reached 0 at the failure
    froze nothing); nan when unknown, or a lone lr record of 0.""")
def lr_is_zero_at_failure(run: _Run) -> float:
    values = _lr_until_failure(run)["value"].to_numpy(float)
    if not len(values) or (values[-1] == 0 and len(values) < 2):
        return _NAN
    return _flag(values[-1] == 0 and values[-2] == 0)


_WARMUP_KEYS = ("warmup_steps", "warmup_iters", "lr_warmup_iters", "warmup_num_steps", "warmup_updates",
                "burn_in", "warmup")


@_feature("in_warmup_at_failure", "0/1", """1 if the learning rate was still rising at the
    failure (the last lr logged up to it above the one logged before), else 0; with fewer than
    two lr records, 1 if the failure step is below a warmup hparam (warmup_steps,
    warmup_iters, warmup_updates, burn_in ...) and 0 if not; nan when undecidable.""")
def in_warmup_at_failure(run: _Run) -> float:
    if run.failure is None:
        return _NAN
    values = _lr_until_failure(run)["value"].to_numpy(float)
    if len(values) >= 2:
        return _flag(values[-1] > values[-2])
    warmup = _first_number(run, _WARMUP_KEYS)
    step = run.failure_step
    if math.isfinite(warmup) and warmup > 1 and math.isfinite(step):
        return _flag(step < warmup)
    return _NAN


# ---- position, recurrence, periodic nan -----------------------------------------------

def _epoch_length(rows: pd.DataFrame) -> float:
    """Steps per epoch from integer epochs: median over consecutive epochs of the step
    difference of their first records (same place in each epoch under a fixed logging
    interval; an unfinished last epoch does not matter) over the epoch difference."""
    rows = rows.dropna(subset=["step", "epoch"])
    if not len(rows):
        return _NAN
    first = rows.groupby("epoch")["step"].min().sort_index()
    if len(first) < 2:
        return _NAN
    per = np.diff(first.to_numpy(float)) / np.diff(first.index.to_numpy(float))
    per = per[per > 0]
    return float(np.median(per)) if len(per) else _NAN


def _epoch_position(run: _Run, step: float, epoch: float, segment: int) -> float:
    if math.isfinite(epoch) and epoch != round(epoch):
        return float(epoch - math.floor(epoch))
    length = _epoch_length(run.train[run.train["segment"] == segment])
    if not (math.isfinite(length) and length >= 1 and math.isfinite(step)):
        return _NAN
    return float((step % length) / length)


@_feature("failure_epoch_position", "fraction", """Position of the failure within its epoch,
    in [0, 1) (0 = epoch boundary): the fractional part of a fractional epoch (HF), or the
    step modulo the steps per epoch derived from records of two or more integer epochs.
    nan when no epoch information is printed or there is no failure.""")
def failure_epoch_position(run: _Run) -> float:
    if run.failure is None:
        return _NAN
    seg = int(run.failure["segment"])
    rows = run.train[(run.train["segment"] == seg) & (run.train["line"] <= run.failure["line"])]
    epoch = rows["epoch"].dropna()
    return _epoch_position(run, run.failure_step, float(epoch.iloc[-1]) if len(epoch) else _NAN, seg)


@_feature("recurs_same_step", "0/1", """1 if two or more segments (restarts / resumes of one
    file, or separate files of the same job) fail first at the same step, or the log says
    the loss went non-finite at one step twice with training output between (a re-queued
    job whose restart shows no banner: ``FloatingPointError: loss is nan at iter 16`` in
    each attempt) -- the strongest evidence of a bad sample under a deterministic data
    order (N202); else 0.""")
def recurs_same_step(run: _Run) -> float:
    firsts = run.fatal_points.drop_duplicates("segment")["step"].dropna()
    return _flag(bool(firsts.duplicated().any()) or _said_again_at_one_step(run))


def _said_again_at_one_step(run: _Run) -> bool:
    """Two failure events with one printed step and a training record between them (copies
    from several ranks print together, with no record between: they count once)."""
    said: dict[int, list[int]] = {}
    for e in run.events:
        if e.kind == "nonfinite" and e.step is not None:
            said.setdefault(e.step, []).append(e.line)
    if not any(len(lines) > 1 for lines in said.values()):
        return False
    records = np.sort(run.train["line"].to_numpy(np.int64))
    for printed in said.values():
        lines = np.sort(np.array(printed, np.int64))
        between = np.searchsorted(records, lines[1:], "left") - np.searchsorted(records, lines[:-1], "right")
        if (between > 0).any():  # a record on a line strictly between two of them
            return True
    return False


@_feature("n_segments", "count", """Attempts seen: segments (restart / resume / counter going
    back) summed over the files passed; 0 for a log without records or events.""")
def n_segments(run: _Run) -> float:
    segs = set(run.all_rows["segment"].tolist()) | {e.segment for e in run.events}
    return float(len(segs))


def _isolated_nan_steps(run: _Run) -> list[float]:
    """Steps of non-finite primary losses followed by a finite one in the same segment."""
    out: list[float] = []
    for _, seg in run.loss.groupby("segment"):
        finite = np.isfinite(seg["value"].to_numpy())
        isolated = np.flatnonzero(~finite[:-1] & finite[1:])
        out += seg["step"].to_numpy(float)[isolated].tolist()
    return [s for s in out if math.isfinite(s)]


@_feature("nan_steps_periodic", "0/1", """1 if three or more isolated non-finite loss steps
    (finite again right after; those within two logging intervals count once) recur at a
    fixed period (consecutive gaps within two logging intervals, 2% or one step of their
    median: windowed prints and epoch summaries move the nan by up to an interval each)
    -- a bad sample met once per epoch; else 0.""")
def nan_steps_periodic(run: _Run) -> float:
    interval = sampling_interval(run)
    interval = interval if math.isfinite(interval) else 0.0
    steps: list[float] = []
    for step in sorted(set(_isolated_nan_steps(run))):
        if not steps or step - steps[-1] > 2 * interval:  # an epoch summary repeats the window's nan
            steps.append(step)
    if len(steps) < 3:
        return 0.0
    gaps = np.diff(steps)
    median = float(np.median(gaps))
    slack = max(1.0, 0.02 * median, 2 * interval if 2 * interval <= median / 2 else 0.0)
    return _flag(median > 0 and bool((np.abs(gaps - median) <= slack).all()))


@_feature("nonfinite_then_finite", "0/1", """1 if a non-finite primary loss or grad_norm value
    is followed, in the same segment, by a finite value of the same metric (training went
    on: isolated bad batches, hidden or benign nans); else 0.""")
def nonfinite_then_finite(run: _Run) -> float:
    rows = run.train[(run.train["metric"] == run.loss_name) | run.train["metric"].isin(GRAD_METRICS)]
    for _, group in rows.groupby(["segment", "metric"], observed=True):
        finite = np.isfinite(group["value"].to_numpy())
        bad = np.flatnonzero(~finite)
        if len(bad) and finite[bad[0]:].any():
            return 1.0
    return 0.0


@_feature("loss_zero_with_nan_grad", "0/1", """1 if at some step grad_norm is non-finite while
    the loss printed for that step is finite (the Hugging Face logging_nan_inf_filter
    signature, often 'loss': 0.0); else 0.""")
def loss_zero_with_nan_grad(run: _Run) -> float:
    grad = run.metric("grad_norm")
    grad = grad[~np.isfinite(grad["value"].to_numpy())].dropna(subset=["step"])
    if not len(grad) or not len(run.loss):
        return 0.0
    loss = run.loss.dropna(subset=["step"])
    loss = loss[np.isfinite(loss["value"].to_numpy())]
    keys = set(zip(loss["segment"], loss["step"]))
    return _flag(any(k in keys for k in zip(grad["segment"], grad["step"])))


@_feature("loss_drops_to_zero", "0/1", """1 if, in a Hugging Face Trainer log or
    trainer_state.json, the primary train loss goes from a record of at least 0.05 straight
    to exactly 0 and then either back to at least 0.05 (an isolated zero) or stays 0 to the
    end of its segment: what the Hugging Face logging_nan_inf_filter prints for nan steps at
    logging_steps=1 (a real loss does not drop a thousandfold in one record); else 0.""")
def loss_drops_to_zero(run: _Run) -> float:
    if run.series.format not in ("hf_trainer", "hf_trainer_state"):
        return 0.0  # other loggers round a tiny loss to 0 (TF's 2 decimals) or really reach 0
    for _, seg in run.loss.groupby("segment"):
        v = seg["value"].to_numpy()
        for i in np.flatnonzero((v[1:] == 0) & (v[:-1] >= 0.05)) + 1:
            after = v[i + 1:]
            if len(after) and (after[0] >= 0.05 or bool((after == 0).all())):
                return 1.0
    return 0.0


@_feature("loss_missing_events", "count", """Lines where the loss field was left out on a
    nan step (Megatron / DeepSpeed omit 'lm loss'); the only nan evidence there.""")
def loss_missing_events(run: _Run) -> float:
    return float(run.series.count("loss_missing"))


@_feature("n_nonfinite_records", "count", """Non-finite loss-like and grad-norm values printed
    (every rank and phase); a persistent nan gives many, an isolated bad batch few.""")
def n_nonfinite_records(run: _Run) -> float:
    return float((run.points["kind"] == "value").sum()) if len(run.points) else 0.0


@_feature("loss_nonfinite_records", "count", """Non-finite values of the primary train loss
    (of the rank the features follow); 0 when the logger never printed the loss itself as
    nan/inf.""")
def loss_nonfinite_records(run: _Run) -> float:
    return float((~np.isfinite(run.loss["value"].to_numpy())).sum()) if len(run.loss) else 0.0


@_feature("has_error_event", "0/1", """1 if the log shows a traceback, an exception line or
    an out-of-memory error; else 0.""")
def has_error_event(run: _Run) -> float:
    return _flag(any(e.kind in ("traceback", "error", "oom") for e in run.events))


@_feature("run_completed", "0/1", """1 if the framework said that training ran to its end
    (Lightning's `Trainer.fit` stopped: `max_steps=N` reached, the Hugging Face Trainer's
    closing train_runtime summary) after the last traceback or error of the log; else 0.""")
def run_completed(run: _Run) -> float:
    done = [e.line for e in run.events if e.kind == "completed"]
    crashed = [e.line for e in run.events if e.kind in ("traceback", "error", "oom")]
    return _flag(bool(done) and max(done) > max(crashed, default=-1))


# ---- sampling ---------------------------------------------------------------------------

@_feature("n_train_records", "records", """Primary train-loss records (finite or not, every
    segment, chosen rank).""")
def n_train_records(run: _Run) -> float:
    return float(len(run.loss))


@_feature("log_steps_span", "steps", """Largest minus smallest step over train records; nan
    when the log prints no step.""")
def log_steps_span(run: _Run) -> float:
    steps = run.train["step"].dropna()
    return float(steps.max() - steps.min()) if len(steps) else _NAN


@_feature("steps_inferred", "0/1", """1 when the log prints no step and steps are counted
    records (Hugging Face dicts without a progress bar): then a small step says nothing
    about how early in training the run was.""")
def steps_inferred(run: _Run) -> float:
    return _flag(any("no step" in note for note in run.series.notes))


@_feature("epoch_at_failure", "epochs", """The epoch printed on (or inherited by) the first
    non-finite value's line; nan when the log prints no epoch or nothing failed.""")
def epoch_at_failure(run: _Run) -> float:
    if run.failure is None:
        return _NAN
    rows = run.all_rows[(run.all_rows["line"] == run.failure["line"])]
    epochs = rows["epoch"].dropna()
    return float(epochs.iloc[0]) if len(epochs) else _NAN


@_feature("first_logged_step", "steps", """Step of the first train record (0 when the log
    starts with training; large when it is a window pasted from the middle of a run, where
    a flat loss says nothing about whether the run ever descended); nan without steps.""")
def first_logged_step(run: _Run) -> float:
    steps = run.train["step"].dropna()
    return float(steps.min()) if len(steps) else _NAN


@_feature("sampling_interval", "steps", """Median positive step difference between
    consecutive primary train-loss records of a segment (the logging interval); nan with
    fewer than two stepped records.""")
def sampling_interval(run: _Run) -> float:
    gaps: list[float] = []
    for _, seg in run.loss.dropna(subset=["step"]).groupby("segment"):
        diffs = np.diff(seg["step"].to_numpy(float))
        gaps += diffs[diffs > 0].tolist()
    return float(np.median(gaps)) if gaps else _NAN


# ---- header (hyperparameters echoed in the log) ------------------------------------------

_LR_KEYS = ("base_lr", "learning_rate", "lr", "max_lr", "peak_lr")


@_feature("hp_lr", "lr", """The configured learning rate (Caffe base_lr, learning_rate, lr,
    max_lr ...), else the first finite logged lr; nan when neither is printed.""")
def hp_lr(run: _Run) -> float:
    value = _first_number(run, _LR_KEYS)
    if math.isfinite(value):
        return _clip(value)
    logged = run.metric("lr")["value"].to_numpy(float)
    logged = logged[np.isfinite(logged)]
    return float(logged[0]) if len(logged) else _NAN


_CLIP_KEYS = ("clip_gradients", "clip_norm", "max_grad_norm", "gradient_clipping", "grad_clip", "clip_grad",
              "clip_grad_norm", "clipnorm", "clipvalue", "gradient_clip_val", "grad_clip_norm", "clip_value",
              "clip_gradient")


@_feature("hp_clipping", "0/1", """Gradient clipping configured: 1 when a clipping knob
    (Caffe clip_gradients, clip_norm, max_grad_norm, DeepSpeed gradient_clipping,
    grad_clip, clipnorm ...) is > 0, 0 when present and 0 / negative / off, nan unknown.""")
def hp_clipping(run: _Run) -> float:
    values = [0.0 if str(v).strip("'\" ").lower() in ("none", "null") else _number(v)
              for _, v in _hparams(run, _CLIP_KEYS)]  # clip_norm=None: clipping off
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return _NAN
    return _flag(any(v > 0 for v in values))


_FP16_KEYS = ("fp16", "fp16_enabled", "half", "use_amp", "amp", "fp16_full_eval", "use_fp16", "fp16_opt_level",
              "amp_opt_level", "opt_level")
_PRECISION_KEYS = ("mixed_precision", "precision", "torch_dtype")
_SAYS = {"fp16": re.compile(r"fp16|float16|half|16(-mixed)?|16-true"), "bf16": re.compile(r"bf16|bfloat16")}


def _precision_says(run: _Run, token: str) -> float:
    values = [str(v).lower() for _, v in _hparams(run, _PRECISION_KEYS)]
    if not values:
        return _NAN
    says = [bool(_SAYS[token].fullmatch(v) or (token == "bf16" and _SAYS[token].search(v))) for v in values]
    return _flag(any(says))


def _truthy(value: Any) -> float:
    """A switch: bools, numbers > 0, 'true', apex opt levels O1-O3 (O0 off), a config dict's
    'enabled' entry."""
    if isinstance(value, str):
        level = re.fullmatch(r"\s*[oO]([0-3])\s*", value)
        if level:
            return _flag(level.group(1) != "0")
        enabled = re.search(r"['\"]?enabled['\"]?\s*[:=]\s*(\w+)", value, re.I)
        if enabled:
            return _truthy(enabled.group(1))
    number = _number(value)
    return _NAN if math.isnan(number) else _flag(number > 0)


@_feature("hp_fp16", "0/1", """fp16 mixed precision: 1 when an fp16 switch is on (fp16,
    fp16_enabled, use_amp, apex opt_level O1-O3, precision 16 ...) or the log shows fp16
    loss scaling (overflow events, a loss scale other than 1); 0 when switched off; nan
    unknown.""")
def hp_fp16(run: _Run) -> float:
    if _overflows(run) or any(e.kind == "min_loss_scale" for e in run.events):
        return 1.0
    if any(v != 1.0 for _, v in _scales(run)):
        return 1.0
    flags = [_truthy(v) for _, v in _hparams(run, _FP16_KEYS)]
    flags = [f for f in flags if not math.isnan(f)] + [_precision_says(run, "fp16")]
    flags = [f for f in flags if not math.isnan(f)]
    return max(flags) if flags else _NAN


@_feature("hp_bf16", "0/1", """bf16: 1 when bf16 / bf16_enabled / precision 'bf16' is on, 0
    when switched off, nan unknown.""")
def hp_bf16(run: _Run) -> float:
    flags = [_truthy(v) for _, v in _hparams(run, ("bf16", "bf16_enabled", "bfloat16", "use_bf16"))]
    flags = [f for f in flags if not math.isnan(f)] + [_precision_says(run, "bf16")]
    flags = [f for f in flags if not math.isnan(f)]
    return max(flags) if flags else _NAN


_BATCH_KEYS = ("per_device_train_batch_size", "train_micro_batch_size_per_gpu", "micro_batch_size", "batch_size",
               "train_batch_size", "global_batch_size", "batch")


@_feature("hp_batch_size", "samples", """Per-device training batch size from the header
    (per_device_train_batch_size, micro batch, batch_size -- Caffe: the first data layer);
    nan unknown.""")
def hp_batch_size(run: _Run) -> float:
    value = _first_number(run, _BATCH_KEYS)
    return _clip(value) if math.isfinite(value) and value > 0 else _NAN


@_feature("hp_shuffle", "0/1", """Data shuffling: 1 / 0 from a 'shuffle' hparam (Caffe
    data_param shuffle, dataloader settings); nan unknown. No shuffling makes a bad sample
    recur at a fixed iteration.""")
def hp_shuffle(run: _Run) -> float:
    values = [_truthy(v) for _, v in _hparams(run, ("shuffle", "dataloader_shuffle", "shuffle_data"))]
    values = [v for v in values if not math.isnan(v)]
    return max(values) if values else _NAN


def _pool_layers(run: _Run) -> dict[str, dict[str, float]]:
    """Caffe pooling layers: name -> {kernel, stride} (stride defaults to 1)."""
    fields: dict[str, dict[str, Any]] = {}
    for key, h in run.series.hparams.items():
        if key.startswith("layer."):
            name, _, field = key[len("layer."):].rpartition(".")
            fields.setdefault(name, {})[field] = h.value
    out = {}
    for name, f in fields.items():
        kind = str(f.get("type", "")).strip("'\"").lower()
        if kind != "pooling" and "pool" not in f:
            continue
        kernel = _number(f.get("kernel_size", f.get("kernel_h", _NAN)))
        out[name] = {"kernel": kernel, "stride": _number(f.get("stride", f.get("stride_h", 1)))}
    return out


@_feature("hp_pool_stride_gt_kernel", "0/1", """1 if a Caffe pooling layer has stride >
    kernel_size (known to produce nan), 0 if pooling layers with a kernel size are echoed
    and none does, nan when the net definition is not in the log (or only global pooling).""")
def hp_pool_stride_gt_kernel(run: _Run) -> float:
    pools = [p for p in _pool_layers(run).values() if math.isfinite(p["kernel"]) and math.isfinite(p["stride"])]
    return _flag(any(p["stride"] > p["kernel"] for p in pools)) if pools else _NAN


@_feature("hp_max_loss_weight", "weight", """Largest loss weight echoed (Caffe loss_weight of
    a loss layer, or the '(* w = ...)' factor of a train net output); nan when none.""")
def hp_max_loss_weight(run: _Run) -> float:
    values = [_number(h.value) for k, h in run.series.hparams.items()
              if k.startswith("loss_weight.") or k.endswith(".loss_weight")]
    values = [v for v in values if math.isfinite(v)]
    return _clip(max(values)) if values else _NAN


FEATURES: tuple[Feature, ...] = tuple(_FEATURES)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)


# ---- public API ------------------------------------------------------------------------

def _merge(runs: Sequence[RunSeries]) -> RunSeries:
    """Several files of one job as one run: segments and lines renumbered consecutively."""
    if len(runs) == 1:
        return runs[0]
    frames: list[pd.DataFrame] = []
    events: list[Any] = []
    hparams: dict[str, Any] = {}
    texts: dict[int, str] = {}
    seg_off = line_off = 0
    for run in runs:
        f = run.frame
        frames.append(f.assign(segment=f["segment"].astype(int) + seg_off, line=f["line"].astype(int) + line_off,
                               metric=f["metric"].astype(str), phase=f["phase"].astype(str)))
        events += [replace(e, line=e.line + line_off, segment=e.segment + seg_off) for e in run.events]
        for key, value in run.hparams.items():
            hparams.setdefault(key, replace(value, line=value.line + line_off))
        texts.update({line + line_off: text for line, text in run.texts.items()})
        segs = [*f["segment"].astype(int).tolist(), *(e.segment for e in run.events)]
        seg_off += (max(segs) + 1) if segs else 1
        lines = [*f["line"].astype(int).tolist(), *(e.line for e in run.events), *run.texts,
                 *(h.line for h in run.hparams.values())]
        line_off += max(lines, default=0) + 1
    filled = [f for f in frames if len(f)]
    frame = conform(pd.concat(filled, ignore_index=True)) if filled else runs[0].frame
    formats = {r.format for r in runs}
    counts: dict[str, int] = {}
    for run in runs:
        for kind in {e.kind for e in run.events} | set(run.event_counts):
            counts[kind] = counts.get(kind, 0) + run.count(kind)
    return RunSeries(frame=frame, events=tuple(events), hparams=hparams, source=" + ".join(r.source for r in runs),
                     format=formats.pop() if len(formats) == 1 else "mixed", texts=texts, event_counts=counts)


def compute_features(runs: RunSeries | Sequence[RunSeries]) -> dict[str, float]:
    """One row of features for a run (or several attempts of one job).

    Parameters
    ----------
    runs : RunSeries or sequence of RunSeries
        Several series are attempts (files) of the same job, in time order; recurrence
        across them is evidence (``recurs_same_step``).

    Returns
    -------
    dict of str to float
        Exactly the names of :data:`FEATURES`, in order; ``nan`` = not applicable, never inf.
    """
    if isinstance(runs, RunSeries):
        runs = [runs]
    runs = list(runs)
    if not runs or not all(isinstance(r, RunSeries) for r in runs):
        raise TypeError("compute_features() needs a RunSeries or a non-empty sequence of RunSeries")
    run = _Run(_merge(runs))
    out: dict[str, float] = {}
    for feature in FEATURES:
        try:
            with np.errstate(all="ignore"):  # 1e308-sized losses overflow; results are clipped
                value = float(_COMPUTE[feature.name](run))
        except Exception as exc:  # one odd log must not stop the diagnosis: say so, go on
            warnings.warn(f"feature {feature.name} failed on {run.series.source}: {exc!r}", RuntimeWarning,
                          stacklevel=2)
            value = _NAN
        out[feature.name] = _clip(value)
    return out


def feature_vector(features: Mapping[str, float]) -> np.ndarray:
    """The features as a float64 array in :data:`FEATURES` order (missing names -> nan)."""
    return np.array([float(features.get(name, _NAN)) for name in FEATURE_NAMES], dtype=np.float64)
