"""What the example adapters share: seeded data, a seeded epoch order, and the training loop
the "original job" ran (it writes the log and the checkpoint that replay starts from).

The loop is written the way a user's ``train.py`` is, not with logsleuth's code: replay
reproducing its failure bit for bit is part of what the examples show.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import torch

from logsleuth.replay import Adapter, Batch


def seeded(seed: int, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build a module with a fixed seed, leaving the global RNG as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()


def epoch_batch(step: int, batch_size: int, n: int, seed: int) -> list[int]:
    """Dataset indices of global step ``step``: a seeded shuffle per epoch, no sample twice in one."""
    per_epoch = n // batch_size
    epoch, k = divmod(step, per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    return order[k * batch_size:(k + 1) * batch_size].tolist()


def indexed_batch(x: torch.Tensor, y: torch.Tensor, indices: list[int]) -> Batch:
    idx = torch.tensor(indices)
    return Batch(inputs=x[idx], targets=y[idx], indices=indices)


def train(adapter: Adapter, steps: int, checkpoint_step: int, checkpoint: str | Path,
          log: str | Path | None = None, extra_steps: int = 2) -> int | None:
    """Run the original training loop; return the first step whose loss is non-finite.

    Saves ``{'model', 'optimizer', 'step'[, 'scaler']}`` to ``checkpoint`` just before
    ``checkpoint_step`` runs, and writes ``epoch E iter S loss L lr LR`` lines to ``log``.
    Like a real job it keeps going a little after the loss turned non-finite.
    """
    model = adapter.build_model()
    model.train()
    optimizer = adapter.build_optimizer(model)
    scaler = torch.amp.GradScaler("cpu") if adapter.grad_scaler else None
    lines, first_bad = [], None
    for step in range(steps):
        if step == checkpoint_step:
            _save(checkpoint, model, optimizer, scaler, step)
        loss = _step(adapter, model, optimizer, scaler, adapter.batch(step))
        lines.append(f"epoch 0 iter {step} loss {loss:.6g} lr {optimizer.param_groups[0]['lr']:g}")
        if first_bad is None and not math.isfinite(loss):
            first_bad = step
        if first_bad is not None and step >= first_bad + extra_steps:
            break
    if log is not None:
        Path(log).write_text("\n".join(lines) + "\n")
    return first_bad


def _step(adapter: Adapter, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: Any,
          batch: Batch) -> float:
    optimizer.zero_grad(set_to_none=True)
    dtype = adapter.autocast_dtype
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    amp = torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()
    with amp:
        loss = adapter.loss(adapter.forward(model, batch), batch).mean()
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if adapter.clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), adapter.clip_grad_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return float(loss.detach())


def _save(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: Any, step: int) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    torch.save(state, path)


def mlp(*sizes: int, act: type[torch.nn.Module] = torch.nn.ReLU) -> torch.nn.Sequential:
    """``fc1, relu1, fc2, ...``: a multi-layer perceptron with readable module names."""
    layers: list[tuple[str, torch.nn.Module]] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False), 1):
        layers.append((f"fc{i}", torch.nn.Linear(a, b)))
        if i < len(sizes) - 1:
            layers.append((f"{act.__name__.lower()}{i}", act()))
    return torch.nn.Sequential(OrderedDict(layers))
