"""Which samples of the failing batch cause the failure, down to dataset indices.

This automates the DOMAIN.md procedure ("batch size 1, no shuffling, step until the nan
appears") without running the batch sample by sample:

1. samples whose inputs already hold nan/inf are the first suspects;
2. else, when the adapter's loss is per sample, the samples with a non-finite loss;
3. else (a scalar loss, or a failure only in the gradients, or every per-sample loss
   non-finite) the batch is bisected: forward + backward on halves, from the same state,
   recursing into the halves that still fail. A group that fails only as a whole (batch
   norm statistics, a loss normalised over the batch) is reported as a group.

Suspects are confirmed by a probe on the batch without them. Probes never step the
optimizer; the model state (and RNG) is restored before each one.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InputError
from .batching import batch_size, dataset_indices
from .checkpoint import Snapshot
from .engine import Engine, StepOutcome
from .result import SampleFinding

#: at most this many forward+backward probes are spent on bisection
DEFAULT_PROBES = 64


class _Prober:
    """Forward + backward on a sub-batch of the failing step, from the snapshot before it."""

    def __init__(self, engine: Engine, before: Snapshot, step: int, budget: int) -> None:
        self.engine, self.before, self.step, self.budget, self.used = engine, before, step, budget, 0

    @property
    def exhausted(self) -> bool:
        return self.used >= self.budget

    def fails(self, positions: Sequence[int]) -> bool | None:
        """True when the sub-batch fails, None when it cannot run (e.g. batch norm on 1 sample)."""
        self.used += 1
        self.before.restore(self.engine.parts, model_only=True)
        try:
            batch = self.engine.sub_batch(self.step, positions)
            return self.engine.train_step(self.step, batch=batch, update=False).failed
        except InputError:
            return None
        finally:
            self.before.restore(self.engine.parts, model_only=True)


def find_offending(engine: Engine, before: Snapshot, outcome: StepOutcome, input_positions: Sequence[int],
                   budget: int = DEFAULT_PROBES) -> SampleFinding:
    """The samples of ``outcome.step``'s batch that make it fail (see the module docstring)."""
    batch = engine.batch(outcome.step)
    size = batch_size(batch)
    prober = _Prober(engine, before, outcome.step, budget)
    for method, suspects in (("inputs", list(input_positions)), ("per-sample loss", _nonfinite(outcome))):
        if 0 < len(suspects) < size:
            rest = [p for p in range(size) if p not in set(suspects)]
            if prober.fails(rest) is False:
                return _finding(engine, outcome.step, method, suspects, size, True, prober.used)
    if len(_nonfinite(outcome)) == size and _singles_fail(prober, size):
        return _finding(engine, outcome.step, "per-sample loss", list(range(size)), size, None, prober.used,
                        "every per-sample loss is non-finite and samples fail on their own: the failure is "
                        "not in particular samples")
    groups = _isolate(list(range(size)), prober)
    found = sorted(p for g in groups for p in g)
    if len(found) >= size:
        note = ("every sample fails on its own: the failure is not in particular samples"
                if all(len(g) == 1 for g in groups) else "the batch fails only as a whole, not in particular samples")
        if prober.exhausted:
            note = f"bisection stopped after {prober.used} probes without isolating samples"
        return _finding(engine, outcome.step, "bisection", found, size, None, prober.used, note)
    rest = [p for p in range(size) if p not in set(found)]
    confirmed = prober.fails(rest) is False if rest else None
    note = "" if all(len(g) == 1 for g in groups) else "some samples fail only together (as a group)"
    return _finding(engine, outcome.step, "bisection", found, size, confirmed, prober.used, note)


def _nonfinite(outcome: StepOutcome) -> list[int]:
    if outcome.per_sample is None:
        return []
    return [i for i, v in enumerate(outcome.per_sample) if v != v or v in (float("inf"), float("-inf"))]


def _singles_fail(prober: _Prober, size: int) -> bool:
    """The first, middle and last samples each fail alone (a cheap test before bisecting)."""
    return all(prober.fails([p]) for p in sorted({0, size // 2, size - 1}))


def _isolate(positions: list[int], prober: _Prober) -> list[list[int]]:
    """Minimal failing groups within ``positions`` (which fail together), by bisection."""
    if len(positions) == 1 or prober.exhausted:
        return [positions]
    half = len(positions) // 2
    parts = [positions[:half], positions[half:]]
    verdicts = [prober.fails(p) for p in parts]
    if None in verdicts:  # a half cannot run on its own: stop splitting here
        return [positions]
    failing = [p for p, bad in zip(parts, verdicts, strict=True) if bad]
    if not failing:
        return [positions]
    return [g for p in failing for g in _isolate(p, prober)]


def _finding(engine: Engine, step: int, method: str, positions: Sequence[int], size: int,
             confirmed: bool | None, probes: int, note: str = "") -> SampleFinding:
    batch = engine.batch(step)
    indices = dataset_indices(batch, positions)
    return SampleFinding(method=method, positions=tuple(positions),
                         indices=tuple(indices) if indices is not None else None, batch_size=size,
                         all_samples=len(positions) >= size, confirmed=confirmed, probes=probes, note=note)
