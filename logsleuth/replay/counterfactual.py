"""Counterfactuals: the same steps from the same state with one thing changed.

A cause often acts before the step where the loss shows it: a learning rate that is
too high throws the weights out of range one update *before* the forward pass
overflows. So every counterfactual re-runs the whole window from the checkpoint's state
to the failing step, with the change applied at every step (the dropped samples only at
the failing step), and "removes the failure" means every step of the window keeps a
finite loss, finite gradients and finite weights.

===============  ==========================================================  ==========================
name             change                                                      what it tells
===============  ==========================================================  ==========================
``lr_x0.1``      every learning rate x0.1 (the scheduler still runs)         C01 learning rate too high
``lr_0``         learning rate 0: the weights stay at the checkpoint's       nan with lr=0: not the
                                                                             optimiser (data, forward)
``clip``         ``clip_grad_norm_`` to ``--clip-norm`` (default 1.0)        C02 gradient explosion
``fp32``         no autocast, no gradient scaler                             C10 fp16 overflow
``drop_samples`` the failing batch without the offending samples             C09 corrupt sample
===============  ==========================================================  ==========================
"""

from __future__ import annotations

from dataclasses import dataclass

from .adapter import ResolvedAdapter
from .checkpoint import Snapshot
from .engine import Change, Engine
from .result import CounterfactualResult, SampleFinding

NAMES = ("lr_x0.1", "lr_0", "clip", "fp32", "drop_samples")
DEFAULT_CLIP = 1.0


@dataclass(frozen=True)
class Plan:
    """One counterfactual to run: ``change`` is None when it does not apply (``note`` says why)."""

    name: str
    title: str
    change: Change | None
    note: str = ""


def plan(adapter: ResolvedAdapter, failed_step: int, samples: SampleFinding | None,
         clip_norm: float = DEFAULT_CLIP) -> list[Plan]:
    """The five counterfactuals, each with its change or the reason it does not apply."""
    clip, clip_note = _clip_value(adapter, clip_norm)
    plans = [Plan("lr_x0.1", "learning rate x0.1", Change(lr_scale=0.1)),
             Plan("lr_0", "learning rate 0", Change(lr_scale=0.0)),
             Plan("clip", f"gradient clipping to norm {clip:g}", Change(clip=clip), clip_note)]
    if adapter.autocast_dtype or adapter.grad_scaler:
        what = adapter.autocast_dtype or "the gradient scaler"
        plans.append(Plan("fp32", f"fp32 instead of {what}", Change(fp32=True)))
    else:
        plans.append(Plan("fp32", "fp32 instead of autocast", None, "the step already runs in fp32 (no autocast)"))
    plans.append(_drop_plan(failed_step, samples))
    return plans


def _clip_value(adapter: ResolvedAdapter, clip_norm: float) -> tuple[float, str]:
    if adapter.clip_grad_norm is not None and adapter.clip_grad_norm <= clip_norm:
        value = adapter.clip_grad_norm / 10
        return value, f"training already clips at {adapter.clip_grad_norm:g}: tried 10x tighter"
    return clip_norm, ""


def _drop_plan(failed_step: int, samples: SampleFinding | None) -> Plan:
    title = "the batch without the offending samples"
    if samples is None or not samples.positions:
        return Plan("drop_samples", title, None, "no offending samples were found")
    if samples.all_samples:
        return Plan("drop_samples", title, None, "every sample of the batch fails: nothing left to train on")
    names = samples.indices if samples.indices is not None else samples.positions
    kind = "dataset indices" if samples.indices is not None else "batch positions"
    title = f"the batch without {kind} {', '.join(str(i) for i in names)}"
    return Plan("drop_samples", title, Change(drop=((failed_step, tuple(samples.positions)),)))


def run_window(engine: Engine, start: Snapshot, first: int, last: int, change: Change) -> tuple[int | None, float]:
    """Steps ``first..last`` from ``start`` with ``change``: (first failing step or None, last loss)."""
    start.restore(engine.parts)
    loss = float("nan")
    for step in range(first, last + 1):
        outcome = engine.train_step(step, change)
        loss = outcome.loss
        if outcome.failed:
            return step, loss
    return None, loss


def run_all(engine: Engine, start: Snapshot, first: int, last: int,
            plans: list[Plan]) -> tuple[CounterfactualResult, ...]:
    """Every applicable counterfactual over the window ``first..last``."""
    results = []
    for p in plans:
        if p.change is None:
            results.append(CounterfactualResult(p.name, p.title, False, None, None, None, p.note))
            continue
        failing, loss = run_window(engine, start, first, last, p.change)
        results.append(CounterfactualResult(p.name, p.title, True, failing is None, failing, loss, p.note))
    return tuple(results)
