"""One training step, the way the original job ran it, with knobs for the counterfactuals.

The step is the canonical PyTorch loop: ``zero_grad``; forward and loss under
``torch.autocast`` when the adapter says training used it; the per-sample loss reduced
as the adapter says; ``backward`` (through the ``GradScaler`` when there is one);
``unscale_``; clipping when training clipped; ``optimizer.step()`` (``scaler.step``);
``scheduler.step()``. Everything the engine adds only reads values, and cheaply: the
per-tensor norms of the gradients (one fused ``torch._foreach_norm``, which also gives
the total norm, as ``clip_grad_norm_`` computes it) and of the updated weights, whose
finiteness says whether any element is non-finite. A norm can also overflow on huge
finite values, so only when a norm is non-finite does an exact ``torch.isfinite`` pass
run to name the offending tensors. Everything is read back once per step.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ..errors import InputError
from .adapter import Batch, ResolvedAdapter, TrainingParts
from .batching import batch_size, tensors, to_device

#: batches kept on the device between uses (least recently used go first); beyond it the
#: adapter is asked again, which its contract (deterministic batches) allows
BATCH_CACHE_BYTES = 512 << 20


@dataclass(frozen=True)
class Change:
    """A counterfactual: what to do differently from the original step.

    ``lr_scale`` multiplies every parameter group's learning rate for the optimizer
    step (the scheduler is untouched); ``clip`` clips the gradient norm; ``fp32`` turns
    autocast and the gradient scaler off; ``drop`` removes batch positions at some steps.
    """

    lr_scale: float = 1.0
    clip: float | None = None
    fp32: bool = False
    drop: tuple[tuple[int, tuple[int, ...]], ...] = ()

    def dropped(self, step: int) -> tuple[int, ...]:
        return dict(self.drop).get(step, ())


ORIGINAL = Change()


@dataclass(frozen=True)
class StepOutcome:
    """What one step did: its loss, gradient norm and where values were non-finite.

    ``per_sample`` holds the per-sample losses when the adapter's loss gives them.
    ``skipped`` is True when the gradient scaler skipped the optimizer step.
    """

    step: int
    loss: float
    grad_norm: float
    loss_finite: bool
    grads_finite: bool
    params_finite: bool
    skipped: bool = False
    per_sample: tuple[float, ...] | None = None
    lr: float | None = None
    nonfinite_grads: tuple[str, ...] = ()  # parameters whose gradient holds nan/inf

    @property
    def failed(self) -> bool:
        """Non-finite loss, gradient (unless the scaler skipped the step) or updated weights."""
        return not (self.loss_finite and (self.grads_finite or self.skipped) and self.params_finite)


@dataclass
class Engine:
    """Runs steps on the live :class:`TrainingParts` with the adapter's batches and settings."""

    adapter: ResolvedAdapter
    parts: TrainingParts
    device: torch.device
    cache_bytes: int = BATCH_CACHE_BYTES
    _batches: OrderedDict[int, tuple[Batch, int]] = field(default_factory=OrderedDict)

    # ---- batches ------------------------------------------------------------------

    def batch(self, step: int) -> Batch:
        """The batch of ``step`` on the device (cached while it fits in ``cache_bytes``)."""
        if step in self._batches:
            self._batches.move_to_end(step)
            return self._batches[step][0]
        from .adapter import as_batch

        raw = call(self.adapter.batch, f"batch({step})", step)
        batch = to_device(as_batch(raw, step), self.device)
        size = sum(t.numel() * t.element_size() for t in (*tensors(batch.inputs), *tensors(batch.targets)))
        self._batches[step] = (batch, size)
        while len(self._batches) > 1 and sum(n for _, n in self._batches.values()) > self.cache_bytes:
            self._batches.popitem(last=False)
        return batch

    def sub_batch(self, step: int, keep: Sequence[int]) -> Batch:
        """The batch of ``step`` restricted to positions ``keep``."""
        from .adapter import as_batch

        return as_batch(call(self.adapter.select, "select", self.batch(step), list(keep)), step)

    def without(self, step: int, drop: Sequence[int]) -> Batch:
        full = self.batch(step)
        if not drop:
            return full
        keep = [p for p in range(batch_size(full)) if p not in set(drop)]
        return self.sub_batch(step, keep)

    # ---- steps --------------------------------------------------------------------

    def train_step(self, step: int, change: Change = ORIGINAL, batch: Batch | None = None,
                   update: bool = True) -> StepOutcome:
        """Run global step ``step``; with ``update=False`` stop after the gradients (a probe)."""
        if batch is None:
            batch = self.without(step, change.dropped(step))
        opt, scaler = self.parts.optimizer, self._scaler(change)
        opt.zero_grad(set_to_none=True)
        loss, per_sample = self.forward_loss(batch, change)
        _backward(scaler.scale(loss) if scaler is not None else loss)
        if scaler is not None and update:  # a probe leaves the scaler's state alone: no unscale_
            scaler.unscale_(opt)
        grad_norm, grads_ok = self._grad_norm(change)
        skipped, lr = False, _lr(opt)
        if update:
            skipped = self._optimizer_step(scaler, change.lr_scale)
            if self.parts.scheduler is not None:
                self.parts.scheduler.step()
        outcome = self._outcome(step, loss, per_sample, grad_norm, grads_ok, skipped, lr, update)
        if scaler is not None and not update and not outcome.grads_finite:
            outcome = replace(outcome, skipped=True)  # the scaler would have skipped this step
        return outcome

    def forward_loss(self, batch: Batch, change: Change = ORIGINAL) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Forward and loss under the step's autocast; (reduced loss, per-sample losses or None)."""
        with self.autocast(change):
            output = call(self.adapter.forward, "forward", self.parts.model, batch)
            raw = call(self.adapter.loss, "loss", output, batch)
        if not isinstance(raw, torch.Tensor):
            raise InputError(f"adapter loss() returned {type(raw).__name__}: it must return a tensor")
        return reduce_loss(raw, batch_size(batch), self.adapter.loss_reduction)

    def autocast(self, change: Change = ORIGINAL) -> contextlib.AbstractContextManager[Any]:
        """``torch.autocast`` as training used it (nothing for fp32 or the fp32 counterfactual)."""
        name = self.adapter.autocast_dtype
        if name is None or change.fp32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=getattr(torch, name))

    def _scaler(self, change: Change) -> Any:
        return None if change.fp32 else self.parts.scaler

    def _grad_norm(self, change: Change) -> tuple[torch.Tensor, torch.Tensor]:
        """(total norm before clipping, all-norms-finite flag), both left on the device."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not grads:
            zero = torch.zeros((), device=self.device)
            return zero, torch.ones((), dtype=torch.bool, device=self.device)
        norms = tensor_norms(grads)
        total = torch.linalg.vector_norm(norms)
        clip = change.clip if change.clip is not None else self.adapter.clip_grad_norm
        if clip is not None:
            clip_with_norm(list(self.parameters()), clip, total)
        return total, torch.isfinite(norms).all()

    def _optimizer_step(self, scaler: Any, lr_scale: float) -> bool:
        """``optimizer.step()`` with the learning rate scaled; True when the scaler skipped it."""
        opt = self.parts.optimizer
        saved = [g["lr"] for g in opt.param_groups]
        if lr_scale != 1.0:
            for g in opt.param_groups:
                g["lr"] = g["lr"] * lr_scale
        try:
            if scaler is None:
                opt.step()
                return False
            before = scaler.get_scale()
            scaler.step(opt)
            scaler.update()
            return bool(scaler.get_scale() < before)
        finally:
            for g, lr in zip(opt.param_groups, saved, strict=True):
                g["lr"] = lr

    def _outcome(self, step: int, loss: torch.Tensor, per_sample: torch.Tensor | None, grad_norm: torch.Tensor,
                 grads_ok: torch.Tensor, skipped: bool, lr: float | None, update: bool) -> StepOutcome:
        params_ok = self.params_finite() if update else torch.ones((), dtype=torch.bool, device=self.device)
        loss_f = loss.detach().float()
        values = torch.stack([loss_f, grad_norm.detach().float(), torch.isfinite(loss_f).float(),
                              grads_ok.float(), params_ok.float()]).tolist()  # one read-back
        samples = tuple(per_sample.detach().float().tolist()) if per_sample is not None else None
        bad_grads = self.nonfinite_gradients() if values[3] != 1.0 else ()  # exact, only when a norm is not
        params_finite = values[4] == 1.0 or self.first_nonfinite_parameter() is None
        return StepOutcome(step=step, loss=values[0], grad_norm=values[1], loss_finite=values[2] == 1.0,
                           grads_finite=not bad_grads, params_finite=params_finite, skipped=skipped,
                           per_sample=samples, lr=lr, nonfinite_grads=bad_grads)

    def params_finite(self) -> torch.Tensor:
        """One device flag: every parameter's norm is finite (false alarms are re-checked exactly)."""
        params = [p.detach() for p in self.parameters()]
        if not params:
            return torch.ones((), dtype=torch.bool, device=self.device)
        return torch.isfinite(tensor_norms(params)).all()

    def nonfinite_gradients(self) -> tuple[str, ...]:
        """Names of the parameters whose gradient holds nan/inf (exact; ``named_parameters`` order)."""
        named = [(n, p.grad) for n, p in self.parts.model.named_parameters() if p.grad is not None]
        if not named:
            return ()
        flags = torch.stack([torch.isfinite(g).all() for _, g in named]).tolist()
        return tuple(n for (n, _), ok in zip(named, flags, strict=True) if not ok)

    def first_nonfinite_parameter(self) -> str | None:
        """Name of the first parameter (in ``named_parameters`` order) holding nan or inf."""
        named = list(self.parts.model.named_parameters())
        if not named:
            return None
        flags = torch.stack([torch.isfinite(p.detach()).all() for _, p in named]).tolist()
        return next((name for (name, _), ok in zip(named, flags, strict=True) if not ok), None)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return (p for p in self.parts.model.parameters() if p.requires_grad)


def tensor_norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of each tensor, stacked (fp32): one fused kernel per device and dtype."""
    try:
        norms = list(torch._foreach_norm(tensors))
    except (AttributeError, RuntimeError):  # pragma: no cover - very old torch or exotic tensors
        norms = [torch.linalg.vector_norm(t) for t in tensors]
    return torch.stack([n.float() for n in norms])


def clip_with_norm(params: list[torch.nn.Parameter], max_norm: float, total: torch.Tensor) -> None:
    """``clip_grad_norm_`` given the total norm already computed (same arithmetic, one pass less)."""
    if hasattr(torch.nn.utils, "clip_grads_with_norm_"):
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    else:  # pragma: no cover - torch < 2.6
        torch.nn.utils.clip_grad_norm_(params, max_norm)


def _backward(loss: torch.Tensor) -> None:
    try:
        loss.backward()  # type: ignore[no-untyped-call]
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"backward() through the adapter's loss failed: {first}: loss() must return the "
                         "loss tensor training backpropagated (not detached, not .item())") from exc


def reduce_loss(raw: torch.Tensor, size: int, reduction: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(training loss, per-sample losses or None) from what the adapter's loss returned."""
    if raw.dim() == 0:
        return raw, None
    if raw.shape[0] != size:
        return (raw.mean() if reduction == "mean" else raw.sum()), None
    rows = raw.reshape(size, -1)
    per_sample = raw if raw.dim() == 1 else (rows.mean(dim=1) if reduction == "mean" else rows.sum(dim=1))
    return (per_sample.mean() if reduction == "mean" else per_sample.sum()), per_sample


def _lr(optimizer: torch.optim.Optimizer) -> float | None:
    try:
        return float(optimizer.param_groups[0]["lr"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def call(fn: Any, what: str, *args: Any) -> Any:
    """Call an adapter method; its exceptions become an :class:`InputError` naming the method."""
    try:
        return fn(*args)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"adapter {what} raised {type(exc).__name__}: {exc}") from exc
