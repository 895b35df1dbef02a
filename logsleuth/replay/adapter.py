"""The adapter contract: what a project tells ``logsleuth replay`` about its training step.

A user writes the adapter once per project, as a Python file or an importable
``module:object``. It says how to build the model and the optimizer, how to load a
checkpoint (the default reads a plain ``{'model': ..., 'optimizer': ..., 'step': ...}``
dict), how to get the batch of a global step (deterministically, with the dataset
indices of its samples when known) and the loss (per sample when possible). Everything
else (autocast, the gradient scaler, clipping) is a class attribute with a default.

This module does not import torch: an adapter file can import :class:`Adapter` and
:class:`Batch` cheaply, and the CLI can report a missing torch before loading anything.

Examples
--------
A minimal adapter file (``replay_adapter.py``)::

    import torch
    from logsleuth.replay import Adapter, Batch

    class MyAdapter(Adapter):
        def build_model(self):
            return MyNet()

        def build_optimizer(self, model):
            return torch.optim.SGD(model.parameters(), lr=0.1)

        def batch(self, step):
            idx = list(range(step * 32, step * 32 + 32))
            x, y = dataset[idx]
            return Batch(inputs=x, targets=y, indices=idx)

        def loss(self, output, batch):
            return torch.nn.functional.cross_entropy(output, batch.targets, reduction="none")

    adapter = MyAdapter()
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: the methods an adapter must define, with the arguments replay calls them with
REQUIRED = {"build_model": (), "build_optimizer": ("model",), "batch": ("step",), "loss": ("output", "batch")}
#: optional methods (defaults in :class:`Adapter`), with their arguments
OPTIONAL = {"setup": ("device",), "build_scheduler": ("optimizer",),
            "load_checkpoint": ("checkpoint", "parts"), "forward": ("model", "batch"),
            "select": ("batch", "positions")}
REDUCTIONS = ("mean", "sum")
_AUTOCAST_NAMES = {"float16": "float16", "fp16": "float16", "half": "float16",
                   "bfloat16": "bfloat16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class Batch:
    """One training batch: what :meth:`Adapter.batch` returns.

    Attributes
    ----------
    inputs : tensor, or a tuple / list / dict of tensors
        What :meth:`Adapter.forward` gives the model (by default ``model(inputs)``).
    targets : tensor, or a tuple / list / dict of tensors, optional
        What :meth:`Adapter.loss` compares the output with.
    indices : sequence of int, optional
        The dataset index of each sample, in batch order. Without it replay names the
        offending samples by their position in the batch only.
    """

    inputs: Any
    targets: Any = None
    indices: Sequence[int] | None = None


@dataclass
class TrainingParts:
    """The live training state that :meth:`Adapter.load_checkpoint` fills in.

    ``scheduler`` is what :meth:`Adapter.build_scheduler` returned (or None); ``scaler``
    is the ``torch.amp.GradScaler`` replay created when ``grad_scaler`` is set (or None).
    """

    model: Any
    optimizer: Any
    scheduler: Any = None
    scaler: Any = None


class Adapter:
    """Base class of a replay adapter: subclass it and define the four required methods.

    Attributes
    ----------
    autocast_dtype : torch.dtype or str or None
        The dtype of ``torch.autocast`` around the forward pass and the loss in the
        original training step (``torch.float16``, ``torch.bfloat16``, or their names),
        None for plain fp32. The ``fp32`` counterfactual turns it off.
    grad_scaler : bool
        Whether training used a ``torch.amp.GradScaler`` (its state is read from the
        checkpoint's ``scaler`` entry when present).
    clip_grad_norm : float or None
        The max norm training clipped gradients to (``clip_grad_norm_``), None if it did not.
    loss_reduction : {"mean", "sum"}
        How a per-sample loss from :meth:`loss` is reduced to the training loss.
    """

    autocast_dtype: Any = None
    grad_scaler: bool = False
    clip_grad_norm: float | None = None
    loss_reduction: str = "mean"

    # ---- required ------------------------------------------------------------------

    def build_model(self) -> torch.nn.Module:
        """A freshly built model (replay moves it to the device and loads the checkpoint)."""
        raise NotImplementedError

    def build_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        """The optimizer over ``model``'s parameters, with the original hyperparameters."""
        raise NotImplementedError

    def batch(self, step: int) -> Batch:
        """The batch of global step ``step``, exactly as training saw it (deterministic).

        May also return a tuple ``(inputs, targets)`` or ``(inputs, targets, indices)``.
        """
        raise NotImplementedError

    def loss(self, output: Any, batch: Batch) -> torch.Tensor:
        """The loss of ``output``: per sample (shape ``[batch]``) when possible, else a scalar.

        A per-sample loss lets replay name the offending samples in one pass; with a
        scalar it bisects the batch instead. Extra dimensions (``[batch, tokens]``) are
        averaged per sample.
        """
        raise NotImplementedError

    # ---- optional ------------------------------------------------------------------

    def setup(self, device: torch.device) -> None:
        """Called once before anything is built: set determinism flags or seeds here."""

    def build_scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        """The learning-rate scheduler stepped once per step, or None (the default)."""
        return None

    def load_checkpoint(self, checkpoint: Any, parts: TrainingParts) -> int:
        """Load ``checkpoint`` (what ``torch.load`` returned) into ``parts``; return its step.

        The step is the global step the saved state comes *before*: replay runs that
        step first. The default reads ``{'model', 'optimizer', 'step'}`` (and optional
        ``scheduler``, ``scaler``, ``rng_state``, ``cuda_rng_state``) dicts.
        """
        from .checkpoint import load_default

        return load_default(checkpoint, parts).step

    def forward(self, model: torch.nn.Module, batch: Batch) -> Any:
        """The model's output for ``batch``; the default is ``model(batch.inputs)``."""
        return model(batch.inputs)

    def select(self, batch: Batch, positions: Sequence[int]) -> Batch:
        """The sub-batch of the samples at ``positions`` (used to bisect the batch).

        The default indexes every tensor whose first dimension is the batch size.
        """
        from .batching import select

        return select(batch, positions)


@dataclass(frozen=True)
class ResolvedAdapter:
    """An adapter with its defaults filled in and its settings checked: what replay uses."""

    spec: str
    build_model: Callable[[], Any]
    build_optimizer: Callable[[Any], Any]
    build_scheduler: Callable[[Any], Any]
    load_checkpoint: Callable[[Any, TrainingParts], int] | None  # None: the default loader
    batch: Callable[[int], Any]
    forward: Callable[[Any, Batch], Any]
    loss: Callable[[Any, Batch], Any]
    select: Callable[[Batch, Sequence[int]], Batch]
    setup: Callable[[Any], None]
    autocast_dtype: str | None
    grad_scaler: bool
    clip_grad_norm: float | None
    loss_reduction: str


# ---- loading ----------------------------------------------------------------------------


def load_adapter(spec: str) -> ResolvedAdapter:
    """Load and check the adapter named by ``spec``.

    ``spec`` is ``path/to/file.py``, ``path/to/file.py:object``, ``package.module`` or
    ``package.module:object``. Without ``:object`` the module's ``adapter`` is used,
    else its only :class:`Adapter` subclass, else the module itself when it defines the
    required functions at top level. A class is instantiated without arguments. The
    directory of a file is put on ``sys.path`` so the adapter can import its project.

    Raises
    ------
    InputError
        The module cannot be imported, the object is missing, or a method is missing or
        has the wrong signature: the message names what to fix.
    """
    target, _, name = _split_spec(spec)
    module = _import(spec, target)
    obj = _pick_object(spec, module, name)
    return resolve(spec, obj)


def _split_spec(spec: str) -> tuple[str, str, str]:
    """``file.py:obj`` -> (``file.py``, ':', ``obj``); a Windows drive colon is not a split."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isidentifier() and head and not (len(head) == 1 and head.isalpha()):
        return head, sep, tail
    return spec, "", ""


def _import(spec: str, target: str) -> ModuleType:
    is_file = target.endswith(".py") or os.sep in target or "/" in target
    try:
        if is_file:
            return _import_file(target)
        return importlib.import_module(target)
    except InputError:
        raise
    except (ImportError, SyntaxError) as exc:
        raise InputError(f"adapter {spec}: cannot import it: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # the user's module-level code failed
        raise InputError(f"adapter {spec}: importing it raised {type(exc).__name__}: {exc}") from exc


def _import_file(path: str) -> ModuleType:
    if not os.path.isfile(path):
        raise InputError(f"adapter {path}: no such file")
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = "logsleuth_adapter_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"adapter {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _pick_object(spec: str, module: ModuleType, name: str) -> Any:
    if name:
        if not hasattr(module, name):
            raise InputError(f"adapter {spec}: the module has no attribute {name!r}")
        return getattr(module, name)
    if hasattr(module, "adapter"):
        return module.adapter
    classes = [c for c in vars(module).values()
               if inspect.isclass(c) and issubclass(c, Adapter) and c is not Adapter
               and c.__module__ == module.__name__]
    if len(classes) == 1:
        return classes[0]
    if all(callable(getattr(module, m, None)) for m in REQUIRED):
        return module
    found = ", ".join(sorted(c.__name__ for c in classes)) or "none"
    raise InputError(f"adapter {spec}: define `adapter = MyAdapter()` in it, or name the object as "
                     f"{spec}:NAME (Adapter subclasses found: {found})")


def resolve(spec: str, obj: Any) -> ResolvedAdapter:
    """Instantiate ``obj`` if it is a class, fill in defaults, and check every method."""
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise InputError(f"adapter {spec}: {obj.__name__}() raised {type(exc).__name__}: {exc}: "
                             "an adapter class must be constructible without arguments") from exc
    methods = {m: _method(spec, obj, m, args, required=True) for m, args in REQUIRED.items()}
    methods.update({m: _method(spec, obj, m, args, required=False) for m, args in OPTIONAL.items()})
    custom_load = _overrides(obj, "load_checkpoint")
    return ResolvedAdapter(
        spec=spec, **{k: v for k, v in methods.items() if k != "load_checkpoint"},
        load_checkpoint=methods["load_checkpoint"] if custom_load else None,
        autocast_dtype=_autocast_name(spec, getattr(obj, "autocast_dtype", None)),
        grad_scaler=bool(getattr(obj, "grad_scaler", False)),
        clip_grad_norm=_clip(spec, getattr(obj, "clip_grad_norm", None)),
        loss_reduction=_reduction(spec, getattr(obj, "loss_reduction", "mean")),
    )


def _method(spec: str, obj: Any, name: str, args: tuple[str, ...], required: bool) -> Callable[..., Any]:
    fn = getattr(obj, name, None)
    if fn is None or _is_base_stub(obj, name):
        if required:
            raise InputError(f"adapter {spec}: missing required method {name}({', '.join(args)})")
        default: Callable[..., Any] = getattr(Adapter(), name)
        return default
    if not callable(fn):
        raise InputError(f"adapter {spec}: {name} must be a method, not {type(fn).__name__}")
    try:
        inspect.signature(fn).bind(*args)
    except TypeError as exc:
        want = ", ".join(args)
        raise InputError(f"adapter {spec}: {name}{_signature(fn)} must accept ({want}), as in "
                         f"`def {name}(self{', ' if args else ''}{want})`") from exc
    except ValueError:  # builtins without a signature: accept them
        pass
    return fn  # type: ignore[no-any-return]


def _is_base_stub(obj: Any, name: str) -> bool:
    """A required method inherited unchanged from :class:`Adapter` (it only raises)."""
    return name in REQUIRED and isinstance(obj, Adapter) and not _overrides(obj, name)


def _overrides(obj: Any, name: str) -> bool:
    if not isinstance(obj, Adapter):
        return hasattr(obj, name)
    return getattr(type(obj), name, None) is not getattr(Adapter, name)


def _signature(fn: Callable[..., Any]) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def _autocast_name(spec: str, value: Any) -> str | None:
    """``torch.float16`` / ``"fp16"`` / None -> ``"float16"`` / ``"bfloat16"`` / None."""
    if value is None:
        return None
    name = str(value).removeprefix("torch.")
    if name not in _AUTOCAST_NAMES:
        raise InputError(f"adapter {spec}: autocast_dtype must be torch.float16, torch.bfloat16 or None, "
                         f"not {value!r}")
    return _AUTOCAST_NAMES[name]


def _clip(spec: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        clip = float(value)
    except (TypeError, ValueError):
        clip = -1.0
    if not clip > 0:
        raise InputError(f"adapter {spec}: clip_grad_norm must be a positive number or None, not {value!r}")
    return clip


def _reduction(spec: str, value: Any) -> str:
    if value not in REDUCTIONS:
        raise InputError(f"adapter {spec}: loss_reduction must be one of {', '.join(REDUCTIONS)}, not {value!r}")
    return str(value)


def as_batch(value: Any, step: int) -> Batch:
    """What :meth:`Adapter.batch` returned, as a :class:`Batch` (tuples of 2 or 3 accepted)."""
    if isinstance(value, Batch):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3):
        return Batch(*value)
    if isinstance(value, Mapping) and "inputs" in value:
        return Batch(value["inputs"], value.get("targets"), value.get("indices"))
    raise InputError(f"adapter batch({step}) returned {type(value).__name__}: return a "
                     "logsleuth.replay.Batch, or a tuple (inputs, targets[, indices])")
