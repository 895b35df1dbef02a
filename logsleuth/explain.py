"""Signature + evidence + catalog -> ranked causes, framework-specific fixes, evidence
lines, and (for N202) where the bad sample is.

Cause ranking is Bayesian in spirit: the catalog gives P(cause | signature); each piece
of the log's own evidence multiplies the causes it supports or weakens (documented in
:data:`EVIDENCE_RULES`); the result is renormalised. The multipliers are deliberately
coarse (x3 strong, x1.5 weak, x0.3 against): they order causes, they are not
calibrated probabilities. Where the cause model is shipped (``model/causes.npz``, fitted
by :mod:`logsleuth.train` on runs whose cause was injected, from the log's features and
its signature), its probabilities are blended in (:data:`CAUSE_MODEL_WEIGHT`), and a
cause it favours is named with that as its reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .catalog import load_catalog
from .classify import _bounded
from .features import FEATURE_SCHEMA_VERSION, first_bad_component
from .forest import Forest, shipped
from .types import NONFINITE_EVENTS, Evidence, RankedCause, RunSeries, Verdict, is_loss_metric, nonfinite_words

Features = Mapping[str, float]
#: prior given to a cause that the signature does not list but the evidence points at
OUTSIDE_PRIOR = 0.02
CAUSES_RESOURCE = "causes.npz"  # written by logsleuth.train beside signatures.npz


@dataclass(frozen=True)
class EvidenceRule:
    """If ``applies(features)``, multiply the cause with slug ``cause`` by ``factor``."""

    cause: str
    factor: float
    applies: Callable[[Features], bool]
    because: str


def _is(name: str, value: float = 1.0) -> Callable[[Features], bool]:
    return lambda f: f.get(name) == value


def _gt(name: str, bound: float) -> Callable[[Features], bool]:
    return lambda f: not math.isnan(f.get(name, math.nan)) and f[name] > bound


def _lt(name: str, bound: float) -> Callable[[Features], bool]:
    return lambda f: not math.isnan(f.get(name, math.nan)) and f[name] < bound


EVIDENCE_RULES: tuple[EvidenceRule, ...] = (
    EvidenceRule("learning-rate-too-high", 3.0, _lt("first_nonfinite_step", 100), "the failure came within the first 100 steps"),
    EvidenceRule("learning-rate-too-high", 0.2, _is("lr_is_zero_at_failure"), "the learning rate was 0 and it still failed"),
    EvidenceRule("no-warmup", 2.0, lambda f: f.get("first_nonfinite_step", math.inf) < 100
                 and f.get("in_warmup_at_failure") == 0, "early failure without a learning-rate warm-up"),
    EvidenceRule("corrupt-data-sample", 4.0, _is("recurs_same_step"), "the failure recurs at the same step"),
    EvidenceRule("corrupt-data-sample", 3.0, _is("nan_steps_periodic"), "isolated nan steps recur each epoch"),
    EvidenceRule("corrupt-data-sample", 2.0, _is("lr_is_zero_at_failure"), "nan with lr=0: data or forward pass"),
    EvidenceRule("gradient-explosion", 3.0, _gt("grad_norm_growth_rate", 0.1), "the gradient norm grew before failure"),
    EvidenceRule("gradient-explosion", 2.0, _is("hp_clipping", 0.0), "gradient clipping is off in the header"),
    EvidenceRule("gradient-explosion", 0.5, _is("hp_clipping", 1.0), "gradient clipping is configured"),
    EvidenceRule("loss-weight-too-high", 3.0, _is("first_nonfinite_is_component"),
                 "one loss component went non-finite first"),
    EvidenceRule("loss-weight-too-high", 2.0, _gt("hp_max_loss_weight", 5.0), "a loss term has a large weight"),
    EvidenceRule("fp16-overflow", 3.0, _is("hp_fp16"), "mixed precision (fp16) is in use"),
    EvidenceRule("fp16-overflow", 3.0, _gt("n_overflow_events", 0), "the log shows overflow skips"),
    EvidenceRule("fp16-overflow", 0.3, _is("hp_fp16", 0.0), "fp16 is off"),
    EvidenceRule("caffe-pooling-stride-gt-kernel", 30.0, _is("hp_pool_stride_gt_kernel"),
                 "a pooling layer has stride > kernel_size in the echoed net"),
    EvidenceRule("caffe-pooling-stride-gt-kernel", 0.1, _is("hp_pool_stride_gt_kernel", 0.0),
                 "every pooling layer has stride <= kernel_size"),
    EvidenceRule("unsafe-loss-arithmetic", 1.5, _gt("descent_before_failure", 0.3), "the loss was descending normally before"),
    EvidenceRule("zero-count-division", 1.5, _gt("descent_before_failure", 0.3), "the loss was descending normally before"),
    EvidenceRule("unnormalised-input", 2.0, _gt("initial_loss_log10", 2.0), "the very first loss is huge"),
    EvidenceRule("bad-initialisation", 2.0, _gt("initial_loss_log10", 2.0), "the very first loss is huge"),
    EvidenceRule("learning-rate-too-low-or-dead-network", 3.0, _lt("hp_lr", 1e-6), "the learning rate is tiny"),
    EvidenceRule("unstable-softmax", 0.3, _gt("loss_growth_rate", 0.2),
                 "the loss grew steadily before failing, where an exp overflow is sudden"),
)


#: weight of the cause model against prior x evidence rules, where the signature has causes
CAUSE_MODEL_WEIGHT = 0.5
#: a cause the model gives less than this is not added to the signature's own list
_MODEL_FLOOR = 0.15


def rank_causes(verdict: Verdict, f: Features, framework: str) -> tuple[RankedCause, ...]:
    """Causes for the verdict's signature, ranked by prior x evidence blended with the
    cause model (learned from runs whose cause was injected and measured), with fixes."""
    catalog = load_catalog()
    sig = catalog.signature(verdict.code)
    scores: dict[str, float] = {}
    reasons: dict[str, list[str]] = {}
    candidates = dict(sig.ranked_priors())
    for rule in EVIDENCE_RULES:  # strong evidence can name a cause the signature's priors omit
        if rule.factor > 1 and rule.applies(f):
            candidates.setdefault(catalog.cause(rule.cause).code, OUTSIDE_PRIOR)
    supported: set[str] = set()
    for code, prior in candidates.items():
        cause = catalog.cause(code)
        score = prior
        for rule in EVIDENCE_RULES:
            if rule.cause == cause.slug and rule.applies(f):
                score *= rule.factor
                reasons.setdefault(code, []).append(rule.because)
                if rule.factor > 1:
                    supported.add(code)
        scores[code] = score
    if candidates:
        scores = _blend(scores, cause_probabilities(f, verdict.code), reasons, supported, _against(f, reasons))
    total = sum(scores.values()) or 1.0
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(
        RankedCause(code=code, slug=catalog.cause(code).slug, title=catalog.cause(code).title,
                    probability=round(score / total, 3), fixes=tuple(catalog.fixes_for(code, framework)),
                    because=tuple(reasons.get(code, ())))
        for code, score in ranked if score > 0
    )


def _against(f: Features, reasons: dict[str, list[str]]) -> dict[str, float]:
    """cause code -> the product of the evidence rules under 1 that apply to it (each
    rule's reason recorded), for causes whether or not the signature lists them."""
    catalog = load_catalog()
    out: dict[str, float] = {}
    for rule in EVIDENCE_RULES:
        if rule.factor < 1 and rule.applies(f):
            code = catalog.cause(rule.cause).code
            out[code] = out.get(code, 1.0) * rule.factor
            if rule.because not in reasons.get(code, []):
                reasons.setdefault(code, []).append(rule.because)
    return out


def _blend(scores: dict[str, float], learned: dict[str, float], reasons: dict[str, list[str]],
           supported: set[str], against: Mapping[str, float]) -> dict[str, float]:
    """(1 - w) x the rules' normalised scores + w x the cause model's probabilities; a
    cause the model favours joins the list with its probability as the reason. Evidence
    against a cause (``against``: the product of the rules under 1 that apply) weighs on
    the model's share of it too: the model, fitted partly on printed trajectories, can
    name a cause the log itself argues against. A cause
    the model never learned that the log's own evidence supports (a pooling stride over
    the kernel in Caffe's net echo) keeps its share: the model cannot weigh it."""
    if not learned:
        return scores
    total = sum(scores.values()) or 1.0
    kept = {code: score / total for code, score in scores.items() if code in supported and code not in learned}
    mass = 1.0 - sum(kept.values())
    out = {code: (1 - CAUSE_MODEL_WEIGHT) * score / total for code, score in scores.items() if code not in kept}
    out.update(kept)
    for code, p in learned.items():
        if code in out or p >= _MODEL_FLOOR:
            out[code] = out.get(code, 0.0) + CAUSE_MODEL_WEIGHT * mass * p * against.get(code, 1.0)
            if p >= _MODEL_FLOOR:
                reasons.setdefault(code, []).append(f"runs with injected causes whose logs look like this one: "
                                                    f"{p:.0%} had this cause (the cause model)")
    return out


def cause_probabilities(f: Features, code: str) -> dict[str, float]:
    """P(cause | features, verdict code) from the shipped cause model; {} without one."""
    forest = load_cause_model()
    if forest is None:
        return {}
    row = np.array([float(name == f"verdict={code}") if name.startswith("verdict=") else _bounded(f.get(name, math.nan))
                    for name in forest.feature_names], dtype=np.float64)
    return dict(zip(forest.classes, forest.predict_proba(row).tolist()))


@lru_cache(maxsize=1)
def load_cause_model() -> Forest | None:
    """The shipped cause model (``model/causes.npz``), or None when there is none or it was
    fitted on another feature schema (then the rules alone rank causes)."""
    forest = shipped(CAUSES_RESOURCE)
    return forest if forest is not None and forest.schema_version == FEATURE_SCHEMA_VERSION else None


# ---- evidence lines ------------------------------------------------------------------


def evidence(runs: Sequence[RunSeries], f: Features, verdict: Verdict) -> tuple[Evidence, ...]:
    """The lines that support the verdict: failure, what came before it, header facts."""
    out: list[Evidence] = []
    for run in runs:
        name = run.source.rsplit("/", 1)[-1]
        out += _failure_lines(run, name)
        out += _trajectory_lines(run, f, name)
        out += _event_lines(run, name)
        out += _header_lines(run, name)
    return tuple(out[:12])


def _text(run: RunSeries, line: int) -> str:
    return run.texts.get(line, "")


def _failure_lines(run: RunSeries, name: str) -> list[Evidence]:
    first = run.first_nonfinite()
    if first is None:
        return []
    out = [Evidence(first.step, first.line, first.text, f"first non-finite: {nonfinite_words(first.metric)}", name)]
    component = first_bad_component(run)
    if component and component != first.metric:
        out.append(Evidence(first.step, first.line, first.text, f"the loss component {component} went first", name))
    segments = set(run.frame["segment"].tolist()) | {e.segment for e in run.events}
    for seg in sorted(segments - {0}):
        again = _first_in_segment(run, seg)
        if again is not None:
            step, line = again
            out.append(Evidence(step, line, _text(run, line),
                                f"attempt {seg + 1}: non-finite again at step {step}", name))
    if len(segments) == 1 and first.step is not None:
        again_said = [e for e in run.events if e.kind == "nonfinite" and e.step == first.step and e.line > first.line]
        for e in again_said[:3]:
            out.append(Evidence(e.step, e.line, e.text, f"the log says it again at step {e.step} "
                                                        f"(a re-run of the job, or another rank)", name))
    return out


def _first_in_segment(run: RunSeries, seg: int) -> tuple[int | None, int] | None:
    """(step, line) of the first non-finite loss value or non-finite event of an attempt."""
    f = run.frame
    bad = f[(f["segment"] == seg) & f["metric"].map(is_loss_metric).astype(bool)
            & ~f["value"].map(math.isfinite).astype(bool)]
    found = [(_int(r["step"]), int(r["line"])) for _, r in bad.head(1).iterrows()]
    found += [(e.step, e.line) for e in run.events if e.segment == seg and e.kind in NONFINITE_EVENTS][:1]
    return min(found, key=lambda sl: sl[1]) if found else None


def _trajectory_lines(run: RunSeries, f: Features, name: str) -> list[Evidence]:
    loss = run.frame[(run.frame["metric"] == "loss") & (run.frame["phase"] == "train")]
    finite = loss[loss["value"].map(math.isfinite).astype(bool)]
    if finite.empty:
        return []
    first = run.first_nonfinite()
    before = finite[finite["line"] < first.line] if first else finite
    out = []
    head = finite.iloc[0]
    out.append(Evidence(_int(head["step"]), int(head["line"]), _text(run, int(head["line"])),
                        f"loss starts at {head['value']:.4g}", name))
    if len(before) > 1:
        last = before.iloc[-1]
        low = before["value"].min()
        out.append(Evidence(_int(last["step"]), int(last["line"]), _text(run, int(last["line"])),
                            f"last finite loss {last['value']:.4g} (minimum before it {low:.4g}, "
                            f"x{last['value'] / low:.3g})" if low > 0 else f"last finite loss {last['value']:.4g}",
                            name))
    return out


def _event_lines(run: RunSeries, name: str) -> list[Evidence]:
    out = []
    overflows = [e for e in run.events if e.kind == "overflow"]
    if overflows:
        e = overflows[0]
        out.append(Evidence(e.step, e.line, e.text, f"{len(overflows)} overflow skip(s), first here", name))
        last = overflows[-1]
        if last is not e:
            scale = last.fields.get("loss_scale")
            now = f", loss scale now {scale:g}" if isinstance(scale, (int, float)) and math.isfinite(scale) else ""
            out.append(Evidence(last.step, last.line, last.text, f"last overflow{now}", name))
    for e in run.events:
        if e.kind in ("min_loss_scale", "loss_missing", "terminate_on_nan", "nonfinite"):
            said = e.fields.get("said") or e.fields.get("message") or e.kind.replace("_", " ")
            out.append(Evidence(e.step, e.line, e.text, f"the log says: {said}", name))
            break
    return out


_HEADER_KEYS = ("base_lr", "lr", "learning_rate", "clip_gradients", "clip_norm", "max_grad_norm",
                "gradient_clipping", "fp16", "bf16", "batch_size")


def _header_lines(run: RunSeries, name: str) -> list[Evidence]:
    out = []
    for key in _HEADER_KEYS:
        hp = run.hparams.get(key)
        if hp is not None:
            out.append(Evidence(None, hp.line, _text(run, hp.line), f"header: {key} = {hp.value}", name))
    for key, hp in run.hparams.items():
        if key.endswith(".stride") and key.startswith("layer."):
            kernel = run.hparams.get(key[: -len("stride")] + "kernel_size")
            if kernel is not None and _num(hp.value) > _num(kernel.value):
                out.append(Evidence(None, hp.line, "", f"header: {key} = {hp.value} > kernel_size {kernel.value}",
                                    name))
    return out


def _num(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _int(value: object) -> int | None:
    try:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


# ---- the bad sample (N202) -------------------------------------------------------------


def bad_sample(runs: Sequence[RunSeries], f: Features) -> dict | None:
    """Where the corrupt sample is: its step, and with batch size and no shuffling, the
    range of sample indices; plus how to confirm it."""
    step = f.get("first_nonfinite_step", math.nan)
    if math.isnan(step):
        return None
    step = int(step)
    batch = next((_num(r.hparams[k].value) for r in runs for k in ("batch_size", "per_device_train_batch_size",
                                                                     "train_batch_size", "batch")
                  if k in r.hparams), math.nan)
    shuffle = f.get("hp_shuffle", math.nan)
    out: dict = {"step": step}
    summary = f"the batch of step {step}"
    if not math.isnan(batch) and shuffle != 1:
        lo, hi = step * int(batch), (step + 1) * int(batch) - 1
        epoch_len = f.get("failure_epoch_position", math.nan)
        out.update(batch_size=int(batch), first_index=lo, last_index=hi)
        summary += f": sample indices {lo}..{hi} (batch size {int(batch)}, counted from the start of training"
        summary += "; reduce modulo the dataset size if the epoch restarted)" if not math.isnan(epoch_len) else ")"
    elif math.isnan(batch):
        summary += " (batch size not in the log: pass it to locate the samples)"
    else:
        summary += " (data is shuffled: the indices differ per epoch; use replay)"
    out["summary"] = summary
    out["confirm"] = (f"logsleuth replay --step {step} with your adapter, or rerun from the last checkpoint "
                      f"with batch size 1 and no shuffling and step until the loss is nan")
    return out
