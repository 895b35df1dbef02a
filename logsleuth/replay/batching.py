"""Batches as nested structures of tensors: size, device moves, sub-batches, non-finite inputs.

A batch's ``inputs`` and ``targets`` may be a tensor or any nesting of tuples, lists and
dicts of tensors (and other values, passed through untouched). A tensor belongs to the
batch dimension when its first dimension equals the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import torch

from .adapter import Batch


def tensors(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a nested structure, in order."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from tensors(v)


def _map(value: Any, fn: Callable[[torch.Tensor], Any]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return type(value)((k, _map(v, fn)) for k, v in value.items())
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(_map(v, fn) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_map(v, fn) for v in value)
    return value


def batch_size(batch: Batch) -> int:
    """Number of samples: ``len(indices)``, else the first dimension of the first input tensor."""
    if batch.indices is not None:
        return len(batch.indices)
    for t in tensors(batch.inputs):
        if t.dim() > 0:
            return int(t.shape[0])
    return 1


def to_device(batch: Batch, device: torch.device) -> Batch:
    """The batch with every tensor on ``device`` (no copy when it is already there)."""
    move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
    return replace(batch, inputs=_map(batch.inputs, move), targets=_map(batch.targets, move))


def select(batch: Batch, positions: Sequence[int]) -> Batch:
    """The samples at ``positions`` (batch order kept), from every batch-dimension tensor."""
    size = batch_size(batch)
    keep = list(positions)

    def take(t: torch.Tensor) -> torch.Tensor:
        if t.dim() > 0 and t.shape[0] == size:
            return t[torch.as_tensor(keep, dtype=torch.long, device=t.device)]
        return t

    indices = [batch.indices[p] for p in keep] if batch.indices is not None else None
    return Batch(inputs=_map(batch.inputs, take), targets=_map(batch.targets, take), indices=indices)


def nonfinite_positions(batch: Batch) -> list[int]:
    """Positions of samples whose floating-point inputs or targets hold nan or inf."""
    size = batch_size(batch)
    bad: torch.Tensor | None = None
    for t in (*tensors(batch.inputs), *tensors(batch.targets)):
        if not t.is_floating_point() and not t.is_complex():
            continue
        if t.dim() > 0 and t.shape[0] == size:
            rows = ~torch.isfinite(t).reshape(size, -1).all(dim=1)
        elif not bool(torch.isfinite(t).all()):
            rows = torch.ones(size, dtype=torch.bool, device=t.device)  # not per sample: all
        else:
            continue
        bad = rows if bad is None else bad | rows.to(bad.device)
    if bad is None:
        return []
    return [int(i) for i in torch.nonzero(bad).flatten().tolist()]


def dataset_indices(batch: Batch, positions: Sequence[int]) -> list[int] | None:
    """The dataset indices of ``positions``, or None when the adapter gave none."""
    if batch.indices is None:
        return None
    return [int(batch.indices[p]) for p in positions]
