"""Instrumentation of one step: the first non-finite module output and parameter gradient.

Forward hooks on every module record ``torch.isfinite(output).all()`` for each floating
tensor the module returns; post-accumulate-grad hooks on every parameter record only the
order in which backward finishes the gradients (the engine already knows, from the
gradient norms it computes anyway, which gradients are non-finite). Nothing is copied
and nothing is read back during the step: the flags stay on the device as 0-d tensors,
and one ``torch.stack(...).tolist()`` after the step finds the first False. Hooks only
read, so the numerics of the step are those of the plain step
(:func:`logsleuth.replay.run.replay` checks that bit for bit).

Order matters and is the one of execution: a forward hook fires when its module
returns, so the first non-finite output is the innermost module that produced it (a
container that only passes its last child's tensor through is not checked twice); the
gradient hooks fire in the order backward finishes each parameter, so the first
non-finite gradient is the one nearest the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import torch

from .batching import tensors


@dataclass(frozen=True)
class Site:
    """Where a non-finite value first appeared: a module call, or a parameter's gradient."""

    name: str
    kind: str  # module type name, or "parameter"
    call: int  # index among the checks of its kind (execution order)


@dataclass(frozen=True)
class Findings:
    """What the hooks saw during one step."""

    module: Site | None
    gradient: Site | None
    modules_checked: int
    gradients_checked: int


class Instrument:
    """Context manager that hooks ``model`` for one step; read :meth:`findings` afterwards."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self._handles: list[Any] = []
        self._module_sites: list[tuple[str, str]] = []
        self._module_flags: list[torch.Tensor] = []
        self._grad_order: list[str] = []
        self._last: tuple[torch.Tensor, ...] = ()

    def __enter__(self) -> Instrument:
        for path, module in self.model.named_modules():
            hook = self._forward_hook(path or "(model)", type(module).__name__)
            self._handles.append(module.register_forward_hook(hook))
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                handle = param.register_post_accumulate_grad_hook(self._grad_hook(name))  # type: ignore[no-untyped-call]
                self._handles.append(handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._last = ()

    def _forward_hook(self, path: str, type_name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            seen = self._last
            outs = tuple(t for t in tensors(output) if t.is_floating_point() or t.is_complex())
            for t in outs:
                if any(t is s for s in seen):  # a container returning its child's tensor
                    continue
                self._module_flags.append(torch.isfinite(t).all())
                self._module_sites.append((path, type_name))
            self._last = outs

        return hook

    def _grad_hook(self, name: str) -> Callable[[torch.Tensor], None]:
        def hook(param: torch.Tensor) -> None:
            self._grad_order.append(name)

        return hook

    def findings(self, nonfinite_grads: Collection[str] = ()) -> Findings:
        """The first non-finite module output, and the first of ``nonfinite_grads`` in backward order."""
        module = _first_false(self._module_flags)
        bad = set(nonfinite_grads)
        grad = next((i for i, name in enumerate(self._grad_order) if name in bad), None)
        return Findings(
            module=Site(*self._module_sites[module], call=module) if module is not None else None,
            gradient=Site(self._grad_order[grad], "parameter", call=grad) if grad is not None else None,
            modules_checked=len(self._module_flags), gradients_checked=len(self._grad_order),
        )


def _first_false(flags: list[torch.Tensor]) -> int | None:
    if not flags:
        return None
    values = torch.stack([f.to(flags[0].device) for f in flags]).tolist()
    return next((i for i, ok in enumerate(values) if not ok), None)
