"""The replay, start to end: load, walk to the failing step, instrument, bisect, counterfactuals.

1. Build the model, optimizer (and scheduler, scaler) with the adapter; load the
   checkpoint safely; step S is the checkpoint's.
2. Walk steps S..N with the original settings, keeping a snapshot of the state before
   each step; stop at the first step that fails (non-finite loss, gradient or weight).
   None fails: the failure does not reproduce (exit code 0).
3. From the snapshot before the failing step k: run it again plainly (determinism),
   then instrumented (location; its loss and gradient norm must equal the plain run's
   bit for bit), then find the offending samples.
4. From the checkpoint's state: the counterfactuals over S..k.
5. Decide the cause (:mod:`logsleuth.replay.verdict`) and gather the evidence.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..types import Evidence
from . import counterfactual, verdict
from .adapter import ResolvedAdapter, TrainingParts, load_adapter
from .batching import dataset_indices, nonfinite_positions
from .checkpoint import Loaded, Snapshot, load_default, read_checkpoint
from .engine import Engine, StepOutcome, call
from .instrument import Findings, Instrument
from .result import CounterfactualResult, Location, ReplayInputs, ReplayResult, SampleFinding, StepRecord, Target
from .samples import DEFAULT_PROBES, find_offending

Progress = Callable[[str], None]
_SHA_MAX_BYTES = 2 << 30


@dataclass(frozen=True)
class ReplayOptions:
    """What ``logsleuth replay`` was asked: see the CLI's help for each option."""

    adapter: str
    checkpoint: str
    step: int
    device: str = "auto"
    trust_checkpoint: bool = False
    clip_norm: float = counterfactual.DEFAULT_CLIP
    max_probes: int = DEFAULT_PROBES
    diagnosis: str | None = None
    diagnosis_causes: tuple[str, ...] = ()


def replay(options: ReplayOptions, progress: Progress | None = None) -> ReplayResult:
    """Replay the failing step described by ``options`` and return what it showed."""
    say = progress or (lambda _msg: None)
    device = resolve_device(options.device)
    adapter = load_adapter(options.adapter)
    call(adapter.setup, "setup", device)
    parts, loaded = _build(adapter, device, options)
    if options.step < loaded.step:
        raise InputError(f"--step {options.step} comes before the checkpoint's step {loaded.step}: "
                         "use a checkpoint saved before the failure")
    engine = Engine(adapter, parts, device)
    start = Snapshot.capture(parts)
    say(f"replaying steps {loaded.step}..{options.step} on {device}")
    records, last, before = _walk(engine, start, loaded.step, options.step)
    target = Target(options.step, loaded.step, last.step if last.failed else None, str(device),
                    adapter.autocast_dtype, adapter.grad_scaler, adapter.clip_grad_norm)
    inputs = _inputs(options)
    if not last.failed:
        before.restore(engine.parts)
        deterministic = _same(last, engine.train_step(last.step))
        return _not_reproduced(options, target, records, inputs, loaded.notes, deterministic)
    return _analyse(engine, start, before, last, options, target, records, inputs, loaded.notes, say)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"--device {name}: not a device (use auto, cpu or cuda)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device is available here; use --device cpu (or auto)")
    return device


def _build(adapter: ResolvedAdapter, device: torch.device, options: ReplayOptions) -> tuple[TrainingParts, Loaded]:
    model = call(adapter.build_model, "build_model()")
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"adapter build_model() returned {type(model).__name__}: it must return a torch.nn.Module")
    model.to(device).train()
    optimizer = call(adapter.build_optimizer, "build_optimizer(model)", model)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise InputError(f"adapter build_optimizer() returned {type(optimizer).__name__}: "
                         "it must return a torch.optim.Optimizer over the model's parameters")
    scheduler = call(adapter.build_scheduler, "build_scheduler(optimizer)", optimizer)
    scaler = torch.amp.GradScaler(device.type) if adapter.grad_scaler else None
    parts = TrainingParts(model, optimizer, scheduler, scaler)
    checkpoint = read_checkpoint(options.checkpoint, device, trust=options.trust_checkpoint)
    if adapter.load_checkpoint is None:
        return parts, load_default(checkpoint, parts)
    step = call(adapter.load_checkpoint, "load_checkpoint(checkpoint, parts)", checkpoint, parts)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise InputError(f"adapter load_checkpoint() returned {step!r}: "
                         "it must return the checkpoint's step (int >= 0)")
    return parts, Loaded(step)


def _walk(engine: Engine, start: Snapshot, first: int, last: int) -> tuple[list[StepRecord], StepOutcome, Snapshot]:
    """Steps first..last with the original settings, up to the first that fails.

    Returns the records, the outcome of the last step run (the failing one, if any) and
    the snapshot of the state before it.
    """
    records: list[StepRecord] = []
    before = start
    for step in range(first, last + 1):
        before = start if step == first else Snapshot.capture(engine.parts)
        outcome = engine.train_step(step)
        records.append(_record(outcome))
        if outcome.failed:
            break
    return records, outcome, before


def _record(o: StepOutcome) -> StepRecord:
    return StepRecord(o.step, o.loss, o.grad_norm, o.lr, o.failed, o.skipped)


def _analyse(engine: Engine, start: Snapshot, before: Snapshot, failing: StepOutcome, options: ReplayOptions,
             target: Target, records: list[StepRecord], inputs: ReplayInputs, notes: tuple[str, ...],
             say: Progress) -> ReplayResult:
    step = failing.step
    say(f"step {step} fails: instrumenting it")
    before.restore(engine.parts)
    t0 = time.perf_counter()
    plain = engine.train_step(step)
    t1 = time.perf_counter()
    before.restore(engine.parts)
    with Instrument(engine.parts.model) as inst:
        observed = engine.train_step(step)
    t2 = time.perf_counter()
    location = _locate(engine, before, observed, inst.findings(observed.nonfinite_grads))
    say("looking for the offending samples")
    samples = find_offending(engine, before, observed, location.input_positions, options.max_probes)
    plans = counterfactual.plan(engine.adapter, step, samples, options.clip_norm)
    say(f"counterfactuals over steps {target.checkpoint_step}..{step}")
    results = counterfactual.run_all(engine, start, target.checkpoint_step, step, plans)
    deterministic, exact = _same(failing, plain), _same(plain, observed)
    obs = verdict.Observations(True, deterministic, location, samples, {r.name: r for r in results},
                               step, options.step, recurrent=_recurrent(engine.parts.model))
    causes = verdict.decide(obs)
    warnings = list(notes) + _warnings(deterministic, exact)
    return ReplayResult(
        reproduced=True, summary=verdict.summary(True, step, options.step, causes, location), target=target,
        steps=tuple(records), location=location, samples=samples, counterfactuals=results, causes=causes,
        evidence=_evidence(failing, location, samples, results, deterministic, exact), inputs=inputs,
        deterministic=deterministic, instrumentation_exact=exact, warnings=tuple(warnings),
        timings={"plain_step_s": t1 - t0, "instrumented_step_s": t2 - t1},
    )


def _locate(engine: Engine, before: Snapshot, outcome: StepOutcome, findings: Findings) -> Location:
    """Where the step first went non-finite (reads the weights after, then before, the step)."""
    after_bad = engine.first_nonfinite_parameter()
    before.restore(engine.parts)
    before_bad = engine.first_nonfinite_parameter()
    batch = engine.batch(outcome.step)
    positions = tuple(nonfinite_positions(batch))
    indices = dataset_indices(batch, positions)
    module = findings.module
    stage, parameter = _stage(outcome, findings, before_bad, after_bad, bool(positions))
    return Location(stage=stage, module=module.name if module else None, module_type=module.kind if module else None,
                    parameter=parameter, input_positions=positions,
                    input_indices=tuple(indices) if indices is not None else None,
                    modules_checked=findings.modules_checked, gradients_checked=findings.gradients_checked)


def _stage(outcome: StepOutcome, findings: Findings, before_bad: str | None, after_bad: str | None,
           bad_inputs: bool) -> tuple[str, str | None]:
    if before_bad:
        return "checkpoint", before_bad
    if bad_inputs:
        return "inputs", None
    if findings.module is not None:
        return "forward", None
    if not outcome.loss_finite:
        return "loss", None
    if findings.gradient is not None or not outcome.grads_finite:
        return "backward", findings.gradient.name if findings.gradient else None
    if not outcome.params_finite:
        return "update", after_bad
    return "none", None


def _recurrent(model: torch.nn.Module) -> str | None:
    """Path of the model's first recurrent module (RNN, LSTM, GRU or one of their cells)."""
    kinds = (torch.nn.RNNBase, torch.nn.RNNCellBase)
    return next((path or "(model)" for path, m in model.named_modules() if isinstance(m, kinds)), None)


def _same(a: StepOutcome, b: StepOutcome) -> bool:
    """Bit-equal loss and gradient norm (nan equals nan)."""
    return all(x == y or (x != x and y != y) for x, y in ((a.loss, b.loss), (a.grad_norm, b.grad_norm)))


def _warnings(deterministic: bool, exact: bool) -> list[str]:
    out = []
    if not deterministic:
        out.append("the failing step gives different numbers when run twice from the same state "
                   "(non-deterministic kernels or data): conclusions are less certain")
    elif not exact:
        out.append("the instrumented step's numbers differ from the plain step's: please report this")
    return out


def _evidence(failing: StepOutcome, location: Location, samples: SampleFinding,
              results: tuple[CounterfactualResult, ...], deterministic: bool,
              exact: bool) -> tuple[Evidence, ...]:
    step = failing.step
    ev = [Evidence(step, None, f"loss {failing.loss} grad_norm {failing.grad_norm}",
                   "the failure reproduces" + (" deterministically" if deterministic else " (not deterministically)"),
                   "replay"),
          Evidence(step, None, location.describe(), f"location: {location.stage}", "replay")]
    if samples.positions and not samples.all_samples:
        ids = samples.indices if samples.indices is not None else samples.positions
        ev.append(Evidence(step, None, f"{'dataset indices' if samples.indices is not None else 'positions'} "
                           f"{list(ids)} of {samples.batch_size}", f"offending samples ({samples.method})", "replay"))
    for r in results:
        if r.applicable:
            state = "removes the failure" if r.fixed else f"still fails at step {r.first_failing_step}"
            ev.append(Evidence(step, None, r.title, f"counterfactual {r.name}: {state}", "replay"))
    if exact:
        ev.append(Evidence(step, None, "instrumented and plain step agree bit for bit",
                           "the instrumentation does not change the numerics", "replay"))
    return tuple(ev)


def _not_reproduced(options: ReplayOptions, target: Target, records: list[StepRecord], inputs: ReplayInputs,
                    notes: tuple[str, ...], deterministic: bool) -> ReplayResult:
    obs = verdict.Observations(False, deterministic, None, None, {}, None, options.step)
    causes = verdict.decide(obs)
    last = records[-1] if records else None
    evidence = (Evidence(last.step, None, f"loss {last.loss} grad_norm {last.grad_norm}",
                         f"all {len(records)} replayed steps are finite", "replay"),) if last else ()
    return ReplayResult(reproduced=False, summary=verdict.summary(False, None, options.step, causes), target=target,
                        steps=tuple(records), location=None, samples=None, counterfactuals=(), causes=causes,
                        evidence=evidence, inputs=inputs, deterministic=deterministic, warnings=notes)


def _inputs(options: ReplayOptions) -> ReplayInputs:
    return ReplayInputs(adapter=options.adapter, checkpoint=options.checkpoint,
                        checkpoint_sha256=_sha256(options.checkpoint), diagnosis=options.diagnosis,
                        diagnosis_causes=options.diagnosis_causes)


def _sha256(path: str) -> str | None:
    if not os.path.isfile(path) or os.path.getsize(path) > _SHA_MAX_BYTES:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
