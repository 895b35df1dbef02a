"""Checkpoints: safe loading, the default dict layout, and in-memory snapshots of the state.

``torch.load`` runs with ``weights_only=True`` unless the user opts out
(``--trust-checkpoint``): a checkpoint is a pickle, and unpickling an untrusted file can
run arbitrary code. The default layout is a plain dict::

    {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 1200,
     # optional:
     "scheduler": ..., "scaler": scaler.state_dict(), "rng_state": torch.get_rng_state(),
     "cuda_rng_state": torch.cuda.get_rng_state_all()}

``step`` is the global step the state comes *before*: replay runs that step first.
Common aliases are read too (``model_state_dict``, ``state_dict``, ``optimizer_state_dict``,
``global_step``, ``iteration``), as are the ``module.`` (DataParallel / DDP) and
``_orig_mod.`` (``torch.compile``) key prefixes.
"""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InputError
from .adapter import TrainingParts

MODEL_KEYS = ("model", "model_state_dict", "state_dict", "model_state")
OPTIMIZER_KEYS = ("optimizer", "optimizer_state_dict", "optim", "optimizer_state")
STEP_KEYS = ("step", "global_step", "iteration", "iter")
_PREFIXES = ("module.", "_orig_mod.")
_LIST_MAX = 5


@dataclass(frozen=True)
class Loaded:
    """What the default loader did: the step, and caveats worth reporting."""

    step: int
    notes: tuple[str, ...] = ()


def read_checkpoint(path: str, device: torch.device, trust: bool = False) -> Any:
    """``torch.load`` the file onto ``device``, with ``weights_only=True`` unless ``trust``."""
    if not os.path.exists(path):
        raise InputError(f"checkpoint {path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"checkpoint {path}: is a directory (give the checkpoint file; sharded "
                         "checkpoints need a custom load_checkpoint() in the adapter)")
    try:
        return torch.load(path, map_location=device, weights_only=not trust)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"checkpoint {path}: refused by the safe loader (weights_only=True): {first}; "
                         "if you trust this file, pass --trust-checkpoint") from exc
    except Exception as exc:
        raise InputError(f"checkpoint {path}: cannot be read by torch.load: {type(exc).__name__}: {exc}") from exc


def load_default(checkpoint: Any, parts: TrainingParts) -> Loaded:
    """Load a ``{'model', 'optimizer', 'step', ...}`` dict into ``parts``.

    Raises
    ------
    InputError
        No model state or no step in the checkpoint, or a model / optimizer state that
        does not match what the adapter built (the keys and shapes are named).
    """
    if not isinstance(checkpoint, Mapping):
        raise InputError(f"the checkpoint is a {type(checkpoint).__name__}, not a dict: save "
                         "{'model': ..., 'optimizer': ..., 'step': N} or override load_checkpoint() in the adapter")
    notes: list[str] = []
    model_state = _first(checkpoint, MODEL_KEYS)
    if model_state is None:
        raise InputError(_missing("model state", MODEL_KEYS, checkpoint))
    load_model_state(parts.model, model_state)
    step = _step(checkpoint)
    opt_state = _first(checkpoint, OPTIMIZER_KEYS)
    if opt_state is None:
        notes.append("the checkpoint holds no optimizer state: the optimizer starts fresh (momentum and "
                     "Adam moments reset), so the replay may differ from the original run")
    else:
        _load_optimizer(parts.optimizer, opt_state)
    notes += _load_extras(checkpoint, parts)
    return Loaded(step=step, notes=tuple(notes))


def _first(checkpoint: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in checkpoint:
            return checkpoint[key]
    return None


def _missing(what: str, keys: tuple[str, ...], checkpoint: Mapping[str, Any]) -> str:
    found = ", ".join(repr(k) for k in list(checkpoint)[:8]) or "none"
    looks_bare = bool(checkpoint) and all(isinstance(v, torch.Tensor) for v in checkpoint.values())
    hint = " (it looks like a bare model state_dict)" if looks_bare else ""
    return (f"the checkpoint has no {what} (looked for {', '.join(repr(k) for k in keys)}; found {found}){hint}: "
            "save {'model': ..., 'optimizer': ..., 'step': N} or override load_checkpoint() in the adapter")


def _step(checkpoint: Mapping[str, Any]) -> int:
    value = _first(checkpoint, STEP_KEYS)
    if value is None:
        raise InputError(_missing("step", STEP_KEYS, checkpoint))
    try:
        step = int(value.item() if isinstance(value, torch.Tensor) else value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the checkpoint's step is {value!r}, not an integer") from exc
    if step < 0:
        raise InputError(f"the checkpoint's step is {step}: it must be >= 0")
    return step


def load_model_state(model: torch.nn.Module, state: Any) -> None:
    """``model.load_state_dict(state)``, strict, with an error that names what does not match."""
    if not isinstance(state, Mapping):
        raise InputError(f"the checkpoint's model state is a {type(state).__name__}, not a state_dict")
    state = _strip_prefixes(state, model)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != v.shape]
    problems = [f"{label}: {_short(items)}" for label, items in
                (("missing keys", missing), ("unexpected keys", unexpected),
                 ("shape mismatches (checkpoint vs model)", shapes)) if items]
    if problems:
        raise InputError("the checkpoint does not match the adapter's model: " + "; ".join(problems)
                         + ": build_model() must build the architecture the checkpoint was saved from")
    model.load_state_dict(state, strict=True)


def _strip_prefixes(state: Mapping[str, Any], model: torch.nn.Module) -> Mapping[str, Any]:
    expected = set(model.state_dict())
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in expected):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _short(items: list[str]) -> str:
    more = f" (+{len(items) - _LIST_MAX} more)" if len(items) > _LIST_MAX else ""
    return ", ".join(items[:_LIST_MAX]) + more


def _load_optimizer(optimizer: torch.optim.Optimizer, state: Any) -> None:
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise InputError(f"the checkpoint's optimizer state does not match the adapter's optimizer: {exc}: "
                         "build_optimizer() must build the optimizer (type, parameter groups) it was saved "
                         "from") from exc


def _load_extras(checkpoint: Mapping[str, Any], parts: TrainingParts) -> list[str]:
    notes = []
    if parts.scheduler is not None:
        if "scheduler" in checkpoint:
            parts.scheduler.load_state_dict(checkpoint["scheduler"])
        else:
            notes.append("the adapter builds a scheduler but the checkpoint holds no 'scheduler' state")
    if parts.scaler is not None and "scaler" in checkpoint:
        parts.scaler.load_state_dict(checkpoint["scaler"])
    elif parts.scaler is not None:
        notes.append("the checkpoint holds no 'scaler' state: the gradient scaler starts at its initial scale")
    if "rng_state" in checkpoint:
        torch.set_rng_state(checkpoint["rng_state"].cpu())
    if "cuda_rng_state" in checkpoint and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in checkpoint["cuda_rng_state"]])
    return notes


# ---- snapshots --------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The whole training state at one moment (model, optimizer, scheduler, scaler, RNG).

    Tensors are cloned on their own device, so restoring is a device-side copy; every
    experiment (instrumented run, probes, counterfactuals) starts from an exact copy.
    """

    model: Mapping[str, torch.Tensor]
    optimizer: Mapping[str, Any]
    scheduler: Mapping[str, Any] | None
    scaler: Mapping[str, Any] | None
    cpu_rng: torch.Tensor
    cuda_rng: tuple[torch.Tensor, ...]

    @classmethod
    def capture(cls, parts: TrainingParts) -> Snapshot:
        """Copy the current state (never aliases the live tensors)."""
        cuda = tuple(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else ()
        return cls(
            model={k: v.detach().clone() for k, v in parts.model.state_dict().items()},
            optimizer=copy.deepcopy(parts.optimizer.state_dict()),
            scheduler=copy.deepcopy(parts.scheduler.state_dict()) if parts.scheduler is not None else None,
            scaler=copy.deepcopy(parts.scaler.state_dict()) if parts.scaler is not None else None,
            cpu_rng=torch.get_rng_state(), cuda_rng=cuda,
        )

    def restore(self, parts: TrainingParts, model_only: bool = False) -> None:
        """Put the state back; ``model_only`` for probes that never step the optimizer."""
        parts.model.load_state_dict(self.model)
        parts.optimizer.zero_grad(set_to_none=True)
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng:
            torch.cuda.set_rng_state_all(list(self.cuda_rng))
        if model_only:
            return
        # load_state_dict may keep the given tensors: hand it a copy so the snapshot stays intact
        parts.optimizer.load_state_dict(copy.deepcopy(self.optimizer))
        if self.scheduler is not None:
            parts.scheduler.load_state_dict(copy.deepcopy(self.scheduler))
        if self.scaler is not None:
            parts.scaler.load_state_dict(copy.deepcopy(self.scaler))
