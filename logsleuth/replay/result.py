"""The types of a replay's result: what :func:`logsleuth.replay.run.replay` returns.

Torch-free on purpose: reports and tests read these without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..types import Evidence

REPLAY_SCHEMA_VERSION = 1

#: where a failure first shows, in the order a step runs
STAGES = ("checkpoint", "inputs", "forward", "loss", "backward", "update", "none")


@dataclass(frozen=True)
class SampleFinding:
    """The offending samples of the failing step.

    Attributes
    ----------
    method : str
        ``inputs`` (non-finite inputs), ``per-sample loss``, ``bisection`` or ``none``.
    positions : tuple of int
        Positions in the batch.
    indices : tuple of int or None
        Dataset indices (None when the adapter's batch gives none).
    all_samples : bool
        Every sample fails: the failure is not in particular samples.
    confirmed : bool or None
        The batch without them no longer fails (None when not tested).
    probes : int
        Forward+backward probes spent.
    """

    method: str
    positions: tuple[int, ...]
    indices: tuple[int, ...] | None
    batch_size: int
    all_samples: bool
    confirmed: bool | None
    probes: int
    note: str = ""


@dataclass(frozen=True)
class CounterfactualResult:
    """The outcome of one counterfactual over the window.

    ``fixed`` is True when no step of the window failed, None when not applicable;
    ``first_failing_step`` is the step that still failed; ``loss`` is the loss of the
    last step run.
    """

    name: str
    title: str
    applicable: bool
    fixed: bool | None
    first_failing_step: int | None
    loss: float | None
    note: str = ""


@dataclass(frozen=True)
class StepRecord:
    """One replayed step (the original settings): loss, gradient norm, and whether it failed."""

    step: int
    loss: float
    grad_norm: float
    lr: float | None
    failed: bool
    skipped: bool = False


@dataclass(frozen=True)
class Location:
    """Where the failing step first went non-finite.

    Attributes
    ----------
    stage : str
        One of :data:`STAGES`: ``checkpoint`` (the weights were already non-finite),
        ``inputs`` (the batch holds nan/inf), ``forward`` (a module's output),
        ``loss`` (finite model output, non-finite loss), ``backward`` (a gradient, with
        a clean forward pass), ``update`` (the optimizer step made a weight non-finite).
    module, module_type : str or None
        The first module whose forward output was non-finite (path as in
        ``named_modules``, class name).
    parameter : str or None
        With a clean forward pass: the first parameter whose gradient was non-finite
        (backward order), or the first weight the update made non-finite.
    input_positions, input_indices
        Samples whose inputs hold nan/inf (batch positions, dataset indices or None).
    """

    stage: str
    module: str | None = None
    module_type: str | None = None
    parameter: str | None = None
    input_positions: tuple[int, ...] = ()
    input_indices: tuple[int, ...] | None = None
    modules_checked: int = 0
    gradients_checked: int = 0

    def describe(self) -> str:
        """One sentence for the text report and the evidence."""
        where = f"{self.module} ({self.module_type})" if self.module else None
        text = {
            "checkpoint": f"the checkpoint's weights already hold nan/inf (first: {self.parameter})",
            "inputs": "the batch's inputs already hold nan/inf" + (f"; first non-finite module output: {where}"
                                                                  if where else ""),
            "forward": f"first non-finite module output: {where}",
            "loss": "the model's output is finite; the loss function turns it non-finite",
            "backward": f"forward pass clean; first non-finite gradient: {self.parameter}",
            "update": f"forward and backward clean; the optimizer step made {self.parameter} non-finite",
        }
        return text.get(self.stage, "no non-finite value found")


@dataclass(frozen=True)
class ReplayCause:
    """A cause in the catalog's codes, with whether replay confirmed it and why."""

    code: str
    slug: str
    title: str
    confirmed: bool
    because: tuple[str, ...]
    fixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """What was replayed: the step asked for, the checkpoint's step, and the settings."""

    requested_step: int
    checkpoint_step: int
    failed_step: int | None
    device: str
    autocast: str | None
    grad_scaler: bool
    clip_grad_norm: float | None


@dataclass(frozen=True)
class ReplayInputs:
    """Where the adapter, the checkpoint and (optionally) the diagnose report came from."""

    adapter: str
    checkpoint: str
    checkpoint_sha256: str | None
    diagnosis: str | None = None
    diagnosis_causes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplayResult:
    """Everything ``logsleuth replay`` reports; rendered by :mod:`logsleuth.replay.report`.

    ``reproduced`` is False both when the failure did not come back and when the run
    to the requested step stayed finite; ``causes`` starts with the verdict's cause.
    ``deterministic`` compares two runs of the failing step from the same state;
    ``instrumentation_exact`` compares the instrumented run with the plain one (both
    bit for bit on the loss and the gradient norm).
    """

    reproduced: bool
    summary: str
    target: Target
    steps: tuple[StepRecord, ...]
    location: Location | None
    samples: SampleFinding | None
    counterfactuals: tuple[CounterfactualResult, ...]
    causes: tuple[ReplayCause, ...]
    evidence: tuple[Evidence, ...]
    inputs: ReplayInputs
    deterministic: bool | None = None
    instrumentation_exact: bool | None = None
    warnings: tuple[str, ...] = ()
    timings: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        """A failure was reproduced (exit code 1)."""
        return self.reproduced

    @property
    def cause(self) -> ReplayCause | None:
        """The verdict's cause (confirmed or not), or None."""
        return self.causes[0] if self.causes else None

    def counterfactual(self, name: str) -> CounterfactualResult | None:
        return next((c for c in self.counterfactuals if c.name == name), None)
