"""Replay: re-run the failing step of a PyTorch job and confirm the cause (``logsleuth replay``).

The optional ``[replay]`` extra: torch is imported only when a replay runs, so this
package and the adapter contract (:class:`Adapter`, :class:`Batch`) import without it,
and registering the command costs ``logsleuth``'s start-up nothing worth measuring.

Modules
-------
adapter         the contract a project writes once, and its loader / checks
checkpoint      safe loading (``weights_only=True``), the default layout, snapshots
batching        nested batches: size, device moves, sub-batches, non-finite inputs
engine          one training step as the original job ran it, with counterfactual knobs
instrument      hooks: first non-finite module output and parameter gradient
samples         the offending samples (per-sample loss, or bisection of the batch)
counterfactual  the same steps from the same state with one thing changed
verdict         observations -> a cause in the catalog's codes
run             orchestration: :func:`replay` -> :class:`ReplayResult`
report          text and strict JSON
cli             the ``replay`` click command

Examples
--------
>>> from logsleuth.replay import Adapter, Batch  # no torch needed for the contract
>>> Batch(inputs=[1.0], targets=[0.0], indices=[7]).indices
[7]
"""

from __future__ import annotations

from typing import Any

from .adapter import Adapter, Batch, TrainingParts, load_adapter

__all__ = ["Adapter", "Batch", "ReplayOptions", "ReplayResult", "TrainingParts", "load_adapter", "replay"]


def __getattr__(name: str) -> Any:
    """Loaded on first use: ``replay`` and ``ReplayOptions`` import torch, ``ReplayResult`` pandas
    (``logsleuth --help`` imports this package to register the command, and stays light)."""
    if name in ("replay", "ReplayOptions"):
        from . import run

        return getattr(run, name)
    if name == "ReplayResult":
        from .result import ReplayResult

        return ReplayResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
