"""From what the replay observed to a cause in the catalog's codes.

The rules are ordered; the first that matches gives the verdict's cause, and a rule may
add the causes that are also consistent with the observations. A cause is *confirmed*
when a counterfactual that targets it removed the failure (or, for C06, when the
location shows the loss function itself producing the non-finite value from finite
outputs and a learning rate of 0 does not help):

====  ==================================================================  =====
rule  observation                                                         cause
====  ==================================================================  =====
1     the failure does not reproduce                                      C14 (candidate only)
-     the checkpoint's weights already hold nan/inf                       none: use an earlier one
2     the batch's inputs hold nan/inf (confirmed by dropping them)        C09
3     ``fp32`` removes the failure                                        C10
4     finite model output, non-finite loss or gradient, in particular    C06
      samples or even with learning rate 0
5     ``clip`` removes it, and ``lr_x0.1`` does not or the model is       C02 (+ C01)
      recurrent
6     ``lr_x0.1`` removes it (C02 too, unconfirmed, if ``clip`` does)     C01
7     dropping the offending samples removes it (finite inputs)           C09 (+ C04)
8     otherwise: unconfirmed candidates from ``lr_0``'s answer            C01/C02 or C04/C05/C14
====  ==================================================================  =====

Rules 5 and 6 separate the two optimiser-side causes. When only one of a lower learning
rate and clipping cures the failure, it names the cause. When both do (common: both
make the updates smaller), the window cannot tell an overshooting learning rate from an
exploding gradient, and the architecture decides: back-propagation through time in a
recurrent network is the textbook gradient explosion (C02); elsewhere the learning rate
is what to change first (C01). The other cause is listed, unconfirmed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..catalog import load_catalog
from .result import CounterfactualResult, Location, ReplayCause, SampleFinding


@dataclass(frozen=True)
class Observations:
    """Everything the rules look at."""

    reproduced: bool
    deterministic: bool | None
    location: Location | None
    samples: SampleFinding | None
    counterfactuals: dict[str, CounterfactualResult]
    failed_step: int | None
    requested_step: int
    recurrent: str | None = None  # path of the first recurrent module of the model

    def fixed(self, name: str) -> bool:
        """True when counterfactual ``name`` ran and removed the failure."""
        c = self.counterfactuals.get(name)
        return bool(c and c.fixed)

    def ran(self, name: str) -> bool:
        c = self.counterfactuals.get(name)
        return bool(c and c.applicable)

    @property
    def stage(self) -> str:
        return self.location.stage if self.location else "none"


#: a rule returns None when it does not apply, else the causes (empty: nothing can be named)
Rule = Callable[[Observations], "list[ReplayCause] | None"]


def decide(obs: Observations) -> tuple[ReplayCause, ...]:
    """The causes, verdict first (empty only when nothing at all can be said)."""
    for rule in RULES:
        causes = rule(obs)
        if causes is not None:
            return tuple(causes)
    return ()


def cause(code: str, confirmed: bool, *because: str) -> ReplayCause:
    """A :class:`ReplayCause` with the catalog's slug, title and PyTorch fixes."""
    entry = load_catalog().cause(code)
    fixes = tuple(load_catalog().fixes_for(code, "pytorch"))
    return ReplayCause(entry.code, entry.slug, entry.title, confirmed, tuple(b for b in because if b), fixes)


def _not_reproduced(obs: Observations) -> list[ReplayCause] | None:
    if obs.reproduced:
        return None
    why = (f"the replay stays finite through step {obs.requested_step} on this machine: non-determinism in "
           "the original run (data order, dropout seeds, non-deterministic kernels) or its hardware")
    check = ("the adapter's batch(step) may differ from what training saw, or the checkpoint from the one the "
             "run resumed from: rule both out first")
    if obs.deterministic is False:
        check = "two runs of the same step from the same state differ here: the step itself is not deterministic"
    return [cause("C14", False, why, check)]


def _corrupt_checkpoint(obs: Observations) -> list[ReplayCause] | None:
    """Weights already non-finite in the checkpoint: the failure happened before it; no cause here."""
    return [] if obs.stage == "checkpoint" else None


def _corrupt_inputs(obs: Observations) -> list[ReplayCause] | None:
    loc = obs.location
    if loc is None or not loc.input_positions:
        return None
    which = _samples_text(loc.input_indices, loc.input_positions)
    dropped = obs.fixed("drop_samples")
    return [cause("C09", dropped, f"the inputs of {which} hold nan/inf",
                  "the batch without them trains finitely" if dropped else "",
                  _lr0_text(obs))]


def _fp16(obs: Observations) -> list[ReplayCause] | None:
    if not obs.fixed("fp32"):
        return None
    where = f"{obs.location.module} ({obs.location.module_type})" if obs.location and obs.location.module else None
    return [cause("C10", True, "the same steps in fp32 stay finite",
                  f"the first non-finite output under autocast is {where}" if where else "", _lr0_text(obs))]


def _unsafe_loss(obs: Observations) -> list[ReplayCause] | None:
    loc = obs.location
    if loc is None or loc.stage not in ("loss", "backward"):
        return None
    samples = obs.samples
    specific = bool(samples and samples.positions and not samples.all_samples)
    if obs.fixed("lr_0") and not specific:
        return None  # the updates make every sample's loss overflow: optimiser dynamics, not the loss
    where = ("the loss function turns the model's finite output non-finite" if loc.stage == "loss"
             else f"the forward pass is clean but the gradient of {loc.parameter} is non-finite")
    lr0_persists = obs.ran("lr_0") and not obs.fixed("lr_0")
    trigger = f"it happens for {_samples_text(samples.indices, samples.positions)} only" if samples and specific else ""
    causes = [cause("C06", lr0_persists or obs.fixed("drop_samples"), where, trigger, _lr0_text(obs))]
    if obs.fixed("lr_x0.1"):
        causes.append(cause("C01", False, "a 10x lower learning rate also avoids it, within this window"))
    return causes


def _explosion(obs: Observations) -> list[ReplayCause] | None:
    if not obs.fixed("clip"):
        return None
    lower_lr = obs.fixed("lr_x0.1")
    if lower_lr and not obs.recurrent:
        return None  # both cure it, not a recurrent model: rule 6
    causes = [cause("C02", True, "gradient clipping removes the failure",
                    f"the model is recurrent ({obs.recurrent}): back-propagation through time" if obs.recurrent else "",
                    "a 10x lower learning rate does not remove it" if obs.ran("lr_x0.1") and not lower_lr else "",
                    _where(obs))]
    if lower_lr:
        causes.append(cause("C01", False, "a 10x lower learning rate removes it too"))
    return causes


def _learning_rate(obs: Observations) -> list[ReplayCause] | None:
    if not obs.fixed("lr_x0.1"):
        return None
    causes = [cause("C01", True, "a 10x lower learning rate removes the failure", _lr0_text(obs), _where(obs))]
    if obs.fixed("clip"):
        causes.append(cause("C02", False, "gradient clipping removes it too: a safety net, but the learning "
                                          "rate is what to change first"))
    return causes


def _extreme_samples(obs: Observations) -> list[ReplayCause] | None:
    if not obs.fixed("drop_samples") or obs.samples is None:
        return None
    which = _samples_text(obs.samples.indices, obs.samples.positions)
    return [cause("C09", True, f"the batch without {which} trains finitely; their inputs are finite but drive the "
                  "model out of range", _where(obs)),
            cause("C04", False, "finite but extreme inputs: check their scale and normalisation")]


def _unconfirmed(obs: Observations) -> list[ReplayCause] | None:
    if obs.fixed("lr_0"):
        why = ("with learning rate 0 the failure goes away: the updates cause it, but neither x0.1 nor clipping "
               "removes it")
        return [cause("C01", False, why, _where(obs)), cause("C02", False, why)]
    why = "no counterfactual removes the failure, not even learning rate 0: look at the forward pass and the data"
    return [cause("C05", False, why, _where(obs)), cause("C04", False, why), cause("C14", False, why)]


def _lr0_text(obs: Observations) -> str:
    if not obs.ran("lr_0"):
        return ""
    if obs.fixed("lr_0"):
        return "with learning rate 0 it goes away"
    return "it persists with learning rate 0: the optimiser is not the cause"


def _where(obs: Observations) -> str:
    return obs.location.describe() if obs.location and obs.location.stage != "none" else ""


def _samples_text(indices: tuple[int, ...] | None, positions: tuple[int, ...]) -> str:
    if indices is not None:
        return "dataset " + ("index " if len(indices) == 1 else "indices ") + ", ".join(map(str, indices))
    return "batch " + ("position " if len(positions) == 1 else "positions ") + ", ".join(map(str, positions))


RULES: tuple[Rule, ...] = (_not_reproduced, _corrupt_checkpoint, _corrupt_inputs, _fp16, _unsafe_loss, _explosion,
                           _learning_rate, _extreme_samples, _unconfirmed)


def summary(reproduced: bool, failed_step: int | None, requested_step: int, causes: tuple[ReplayCause, ...],
            location: Location | None = None) -> str:
    """The one-line verdict."""
    if not reproduced:
        return f"not reproduced: the replay stays finite through step {requested_step}"
    head = f"reproduced at step {failed_step}"
    if failed_step is not None and failed_step != requested_step:
        head += f" (asked for {requested_step})"
    if location is not None and location.stage == "checkpoint":
        return (f"{head}: the checkpoint's weights already hold nan/inf ({location.parameter}): "
                "replay from an earlier checkpoint")
    if not causes:
        return head + ": cause not confirmed"
    c = causes[0]
    state = "confirmed" if c.confirmed else "likely, not confirmed"
    return f"{head}: {c.code} {c.slug} ({state})"
