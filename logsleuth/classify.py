"""Features -> signature probabilities: deterministic guards first, then the model.

Where a fact decides, no model is asked (a log with no non-finite value and a falling
loss cannot be N201; a line without Megatron's ``lm loss`` is N203). The guards also
narrow the candidates the model may choose from, so it only ever weighs signatures the
facts allow. The model is a scikit-learn gradient-boosting classifier trained on the
labelled corpus (see ``corpus/``) and shipped in ``logsleuth/model/`` with the
feature-schema version it was trained on (evaluated from its exported trees, see
:mod:`logsleuth.forest`); when its confidence is low, or the log too short, the verdict
is I000 (inconclusive) rather than a guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .calibration import calibrated
from .catalog import load_catalog
from .errors import LogsleuthError
from .features import FEATURE_SCHEMA_VERSION, FEATURES
from .forest import Forest, shipped
from .types import Verdict

FAILURES = ("X101", "N201", "N202", "L301")
FINITE = ("H001", "S401", "R601")
MODEL_RESOURCE = "signatures.npz"  # the trees of signatures.joblib, see forest.py
#: below this probability the verdict is inconclusive
MIN_CONFIDENCE = 0.45


@dataclass(frozen=True)
class Guard:
    """What the facts allow: either one decided code, or a set of candidates."""

    candidates: tuple[str, ...]
    reason: str
    #: the rule that spoke (its confidence is calibrated per rule, see logsleuth.calibration)
    rule: str = ""

    @property
    def decided(self) -> str | None:
        return self.candidates[0] if len(self.candidates) == 1 else None


def guard(f: Mapping[str, float]) -> Guard:
    """Deterministic rules over the features; each returns the reason the user sees."""
    for rule in (_nothing, _collapsed, _recurring, _hidden, _lr_zero, _loss_scale, _no_failure, _early):
        found = rule(f)
        if found is not None:
            return replace(found, rule=rule.__name__.strip("_"))
    if f["n_logged_before_failure"] <= 1:
        return _sudden(f)
    if f["nonfinite_then_finite"] == 1 or f["n_segments"] >= 2:
        return Guard(("X101", "N201", "N202"), "non-finite after the first 100 steps: the model weighs how it got "
                                               "there (a recovered nan or a restart could be a recurring sample)",
                     "late_recovered")
    return Guard(("X101", "N201"), "non-finite after the first 100 steps, once and for good (no restart, no "
                                   "recovery: nothing recurs): the model weighs how it got there", "late")


def _sudden(f: Mapping[str, float]) -> Guard:
    """Non-finite after at most one finite record, and not early: no curve shows a growth,
    so nothing supports an explosion (X101 says the loss grew until it overflowed)."""
    reason = "non-finite after at most one finite record, past the first steps: no growth is visible, a sudden nan"
    if f["nonfinite_then_finite"] == 1 or f["n_segments"] >= 2:
        return Guard(("N201", "N202"), reason + " (a recovered nan or a restart could be a recurring sample)",
                     "sudden_recovered")
    return Guard(("N201",), reason, "sudden")


def _n(f: Mapping[str, float], name: str, default: float = 0.0) -> float:
    value = f.get(name, math.nan)
    return default if math.isnan(value) else value


def _nothing(f: Mapping[str, float]) -> Guard | None:
    if f["n_train_records"] == 0 and f["has_nonfinite"] == 0 and f["n_overflow_events"] == 0:
        return Guard(("I000",), "no training metric or failure event was found in the log")
    return None


def _collapsed(f: Mapping[str, float]) -> Guard | None:
    """The loss scale at its minimum is fatal whatever the logger prints about the loss."""
    loss_finite = f["first_nonfinite_is_grad"] == 1 or f["first_nonfinite_is_event"] == 1 or f["has_nonfinite"] == 0
    persistent = f["n_overflow_events"] >= 10 and (f["overflow_after_last_finite"] == 1
                                                   or _n(f, "overflow_rate") >= 0.5)  # most steps skipped
    if (f["min_loss_scale_reached"] == 1 or persistent) and loss_finite and _n(f, "grad_norm_growth_rate") <= 0.1:
        return Guard(("F502",), "the dynamic loss scale reached its minimum (or kept overflowing to the end)")
    return None


def _hidden(f: Mapping[str, float]) -> Guard | None:
    """HF logging_nan_inf_filter (finite or 0.0 loss, nan grad norm; or, without a grad
    norm, a loss that drops straight to exactly 0.0), Megatron-DeepSpeed (a line without
    its loss field), or only the eval loss non-finite while the printed train loss (a
    running average) stays finite. Never when the loss itself was printed non-finite (the
    logger hid nothing), nor for an inf grad norm under a loss scaler (an overflow skip)."""
    recovered = f["nonfinite_then_finite"] == 1  # a skipped fp16 step, not a dead run
    shown = f["loss_nonfinite_records"] > 0  # the loss itself was printed non-finite: nothing hidden
    grad_hidden = f["loss_zero_with_nan_grad"] == 1 and not _scaler(f)
    if (grad_hidden or f["loss_missing_events"] > 0) and not recovered and not shown:
        return Guard(("N203",), "the logger printed a finite loss while the step was non-finite "
                                "(nan grad norm with a finite/0.0 loss, or a line missing its loss field)")
    if f["loss_drops_to_zero"] == 1 and not shown:
        return Guard(("N203",), "the loss dropped straight to exactly 0.0 (isolated, or to the end): what nan "
                                "steps print under Hugging Face's logging_nan_inf_filter")
    if f["first_nonfinite_is_eval"] == 1 and f["nonfinite_then_finite"] == 0:
        return Guard(("N203",), "the eval loss is non-finite while the printed train loss stays finite")
    return None


def _scaler(f: Mapping[str, float]) -> bool:
    """A dynamic loss scaler is at work (overflow messages or a printed loss scale): an
    inf/nan grad norm with a finite loss is then an overflow skip, not a hidden nan."""
    return f["n_overflow_events"] > 0 or not math.isnan(f["loss_scale_min"])


def _lr_zero(f: Mapping[str, float]) -> Guard | None:
    if f["lr_is_zero_at_failure"] == 1 and f["first_nonfinite_is_event"] == 0:
        return Guard(("N202",), "the learning rate was 0 when the loss went non-finite: the weights were frozen, "
                                "so the batch of that step (the data) is what changed")
    return None


def _loss_scale(f: Mapping[str, float]) -> Guard | None:
    # a skipped step without overflow messages (Hugging Face fp16, or clipping that zeroed an
    # inf gradient) prints an inf/nan grad norm, and training goes on finite
    skipped_steps = f["nonfinite_then_finite"] == 1 and (f["hp_fp16"] == 1 or f["first_nonfinite_is_grad"] == 1)
    # a printed dynamic loss scale that ended lower than it began halved on overflows (a
    # scaler only lowers the scale when a step overflowed), even where no skip is printed
    scale_fell = _n(f, "loss_scale_final_over_initial") <= -1
    overflows = f["n_overflow_events"] > 0 or skipped_steps or scale_fell
    collapsed = f["min_loss_scale_reached"] == 1 or _n(f, "loss_scale_min", 1.0) <= 1e-4
    if not overflows and not collapsed:
        return None
    if not _scaler(f) and f["hp_fp16"] != 1 and _absurd_start(f):
        return None  # no scaler in sight, and the first steps blew up: an inf grad of that, not a skip
    dead_grads = f["n_nonfinite_records"] > 0 and f["nonfinite_then_finite"] == 0 and not _scaler(f)
    if f["loss_nonfinite_records"] > 0 or dead_grads:
        return None  # the loss itself went non-finite: the curve decides (early, sudden, exploding)
    if _n(f, "grad_norm_growth_rate") > 0.1 and f["n_train_records"] >= 2:
        return Guard(("X101",), "the gradient norm grew before the overflows: an explosion drove the loss scale down")
    if collapsed or (overflows and _n(f, "loss_scale_min", 1.0) < 1):
        return Guard(("F502",), "the dynamic loss scale collapsed (to its minimum, or below 1) and kept overflowing")
    return Guard(("F501",), "overflow skips with loss-scale backoff, and no non-finite loss")


def _no_failure(f: Mapping[str, float]) -> Guard | None:
    if f["has_nonfinite"] == 1:
        return None
    if _n(f, "max_loss_over_initial", 1.0) >= 5 and _n(f, "final_loss_over_initial", 1.0) >= 5:
        if _n(f, "loss_growth_rate") > 0.1 and f["n_train_records"] >= 10:
            return Guard(("X101",), "no nan yet, but the loss grows geometrically record after record")
        if _blew_up_late(f):
            return Guard(("X101",), "no nan yet, but the loss grew to over 5x its start after the first 100 steps, "
                                    "over many records")
        if _saturated(f):
            return Guard(("L301",), "no nan, but the loss jumped to an absurd, saturated level early and stayed there")
    if _absurd_start(f):
        return Guard(("L301",), "no nan, but the loss started absurdly high (over 1e4x where the run ends): "
                                "the first steps blew up, then it came back")
    if f["n_train_records"] < 3:
        return _short_run(f)
    candidates = ["H001"]
    interval = max(_n(f, "sampling_interval", 1.0), 1.0)
    mid_run = _n(f, "first_logged_step") > 10 * interval
    too_brief = _n(f, "log_steps_span", math.inf) < 2 * interval  # ranks printing one or two steps each
    if not mid_run and not too_brief and _n(f, "final_loss_over_initial", 1.0) >= 0.8:
        candidates.append("S401")  # a stall needs the start of the run, steps to see it, and no real descent
    if f["spike_recovered"] == 1 or _n(f, "spike_ratio") > 0:
        candidates.append("R601")  # no spike, no recovered spike
    if len(candidates) == 1:
        return Guard(("H001",), "no non-finite value, no spike, and no visible stall (the loss descended, "
                                "or the log is a window from the middle of the run)")
    return Guard(tuple(candidates), "no non-finite value or event: " + " or ".join(candidates))


def _short_run(f: Mapping[str, float]) -> Guard:
    """Fewer than 3 records (a captured RichProgressBar keeps only the last state of an
    epoch): too short to judge, unless the framework said the run reached its end, nothing
    in the log is non-finite or an error, and the loss it printed is low (under 0.5: the
    model learned; a higher lone value may as well be a stall or the end of a blowup)."""
    n = int(f["n_train_records"])
    low = _n(f, "initial_loss_log10", 9.0) < math.log10(0.5)
    if n == 1 and f["run_completed"] == 1 and f["has_error_event"] == 0 and low:
        return Guard(("H001",), "the framework says training ran to its end, nothing is non-finite, and the one "
                                "loss it printed is low (one record: too few to see a stall)")
    return Guard(("I000",), f"only {n} training record(s): too short to judge")


def _saturated(f: Mapping[str, float]) -> bool:
    """The loss jumped and stayed at its peak (Caffe's 87.3365 = -ln FLT_MIN), or went
    absurd (1e4x its start): not a noisy, merely worse plateau, which is a stall."""
    peak, final = _n(f, "max_loss_over_initial", 1.0), _n(f, "final_loss_over_initial", 1.0)
    return peak >= 1e4 or final >= 0.9 * peak


def _absurd_start(f: Mapping[str, float]) -> bool:
    """An early loss of 1e4 or more, and 1e4x above the end of a finite run: a bad
    initialisation or raw inputs blew the first steps up (DOMAIN: an absurd loss within
    the first steps)."""
    peak, final = _n(f, "max_loss_over_initial", 1.0), _n(f, "final_loss_over_initial", 1.0)
    early = _n(f, "step_over_5x_initial", 0.0) <= 100 or peak <= 1.0
    peak_value = 10 ** _n(f, "initial_loss_log10", 0.0) * peak  # (a loss that converges to ~0 is no blowup)
    return final > 0 and peak / final >= 1e4 and peak_value >= 1e4 and early and f["n_train_records"] >= 3


def _blew_up_late(f: Mapping[str, float]) -> bool:
    """The loss passed 5x its start only after the first 100 steps, or after 30 records or
    more (a gradual explosion, however densely logged); counted steps count records."""
    step, before = f.get("step_over_5x_initial", math.nan), _n(f, "records_before_5x_initial")
    if math.isnan(step) or before < 3:
        return False
    return before >= 10 if f["steps_inferred"] == 1 else step > 100 or before >= 30


def _recurring(f: Mapping[str, float]) -> Guard | None:
    if f["recurs_same_step"] == 1 or f["nan_steps_periodic"] == 1:
        return Guard(("N202",), "the first non-finite step recurs at the same iteration across attempts/epochs")
    return None


def _early(f: Mapping[str, float]) -> Guard | None:
    """DOMAIN: nan/inf within the first ~100 iterations, often at the first logged step."""
    step = f["first_nonfinite_step"]
    if math.isnan(step):
        return None
    if f["steps_inferred"] == 1 and _n(f, "epoch_at_failure") >= 0.1:
        return None  # counted records, not iterations: the printed epoch says it was not early
    if f["steps_inferred"] == 1 and math.isnan(f["epoch_at_failure"]) and f["n_logged_before_failure"] == 0:
        return None  # a first counted record with no epoch: a window of a run, nothing says how far in
    if step < 100 or (f["n_logged_before_failure"] <= 1 and step <= 1000):
        return Guard(("L301",), f"non-finite at step {int(step)}, with at most one finite record before it")
    return None


@lru_cache(maxsize=1)
def load_model() -> Forest | None:
    """The shipped model (its trees, evaluated with numpy), or None when none was trained."""
    forest = shipped(MODEL_RESOURCE)
    if forest is None:
        return None
    if forest.schema_version != FEATURE_SCHEMA_VERSION:
        raise LogsleuthError(f"the shipped model was trained on feature schema {forest.schema_version}, "
                             f"this logsleuth computes schema {FEATURE_SCHEMA_VERSION}: retrain it (make model)")
    return forest


def model_probabilities(f: Mapping[str, float], candidates: tuple[str, ...]) -> dict[str, float]:
    """Model probabilities restricted to ``candidates`` and renormalised (rules when no model)."""
    forest = load_model()
    if forest is None:
        scores = rule_scores(f)
    else:
        row = np.array([_bounded(f.get(name, math.nan)) for name in forest.feature_names], dtype=np.float64)
        scores = dict(zip(forest.classes, forest.predict_proba(row)))
    kept = {c: float(scores.get(c, 0.0)) for c in candidates}
    total = sum(kept.values())
    if total <= 0:
        return {c: 1.0 / len(candidates) for c in candidates}
    return {c: p / total for c, p in kept.items()}


def _bounded(x: float) -> float:
    return x if x is None or not math.isinf(x) else math.copysign(1e6, x)


def rule_scores(f: Mapping[str, float]) -> dict[str, float]:
    """Hand-written scores used before a model exists (and as a sanity baseline in bench)."""
    step = f["first_nonfinite_step"]
    early = not math.isnan(step) and (step < 100 or f["n_logged_before_failure"] <= 1)
    growth = f["loss_growth_rate"] if not math.isnan(f["loss_growth_rate"]) else 0.0
    jump = f["jump_ratio"] if not math.isnan(f["jump_ratio"]) else 1.0
    trend = f["loss_trend"] if not math.isnan(f["loss_trend"]) else 0.0
    return {
        "L301": 3.0 if early else 0.2,
        "X101": (2.0 if growth > 0.2 or jump > 3 else 0.3) * (0.3 if early else 1.0),
        "N201": (2.0 if growth <= 0.2 and jump <= 3 else 0.4) * (0.3 if early else 1.0),
        "N202": 2.0 if f["recurs_same_step"] == 1 else 0.1,
        "H001": 2.0 if trend < -0.05 else 0.5,
        "S401": 2.0 if abs(trend) <= 0.05 else 0.3,
        "R601": 3.0 if f["spike_recovered"] == 1 else 0.1,
    }


def classify(f: Mapping[str, float]) -> Verdict:
    """The verdict for one run's features."""
    catalog = load_catalog()
    g = guard(f)
    shape = underlying_shape(f) if g.decided == "N203" else None
    if g.decided:
        code, probabilities, decided_by = g.decided, {g.decided: 1.0}, f"guard: {g.reason}"
        basis = f"guard:{g.rule}:{code}"
    else:
        probabilities = model_probabilities(f, g.candidates)
        code = max(probabilities, key=probabilities.get)  # type: ignore[arg-type]
        source = "model" if load_model() is not None else "rules"
        decided_by = f"{source} among {', '.join(g.candidates)} ({g.reason})"
        basis = f"model:{g.rule}:{code}"
        if probabilities[code] < MIN_CONFIDENCE:
            ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])[:3]
            decided_by = "inconclusive: " + ", ".join(f"{c} {p:.2f}" for c, p in ranked)
            code, basis = "I000", "inconclusive"
    sig = catalog.signature(code)
    raw = probabilities.get(code, max(probabilities.values()))
    confidence = calibrated(basis, float(raw), f)
    return Verdict(code=code, slug=sig.slug, title=sig.title, confidence=round(confidence, 3),
                   benign=bool(sig.benign), decided_by=decided_by,
                   probabilities={k: round(float(v), 3) for k, v in probabilities.items()}, shape=shape, basis=basis)


def underlying_shape(f: Mapping[str, float]) -> str:
    """For a hidden non-finite (N203): the curve signature underneath, from the same rules
    and model as a visible failure."""
    early = _early(f)
    if early is not None:
        return "L301"
    probabilities = model_probabilities(f, ("X101", "N201"))
    return max(probabilities, key=probabilities.get)  # type: ignore[arg-type]


__all__ = ["classify", "guard", "Guard", "load_model", "FEATURES", "FAILURES", "FINITE"]
