"""Hugging Face ``trainer_state.json``: the Trainer's ``log_history``, one entry per log call.

``{"loss": 0.52, "grad_norm": 1.3, "learning_rate": 5e-05, "epoch": 0.4, "step": 10}``,
eval entries (``eval_loss`` ...), and a final summary (``train_loss`` = the average over
training, named ``train_loss_avg`` as the text parser names it). Python's ``json`` writes
non-finite floats as ``NaN``/``Infinity`` and reads them back, so they are kept as printed;
a ``null`` is an absent value. Unlike the printed dict lines, every entry has its step.

``line`` is the 1-based index of the entry in ``log_history``; the evidence text is the
entry itself. ``train_batch_size``, ``max_steps``, ``logging_steps``, ... become
hyperparameters (line 0: the header of the file).
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import InputError
from ..types import Hparam, RunSeries
from ._frame import build_series, metric_name
from ._sniff import looks_like_trainer_state

__all__ = ["read_trainer_state", "looks_like_trainer_state", "FORMAT"]

FORMAT = "hf_trainer_state"
#: keys that are no training signal (throughput, counters) or that position a record
_SKIP = frozenset({"epoch", "step", "total_flos", "train_runtime", "eval_runtime", "train_samples_per_second",
                   "train_steps_per_second", "eval_samples_per_second", "eval_steps_per_second",
                   "num_input_tokens_seen", "current_flos"})
_ALIASES = {"train_loss": "train_loss_avg"}
_HPARAMS = ("train_batch_size", "max_steps", "logging_steps", "eval_steps", "save_steps", "num_train_epochs",
            "global_step", "best_metric")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def read_trainer_state(path: str, data: bytes | None = None) -> RunSeries:
    """Read ``trainer_state.json`` (``data``: its bytes, when already read) into a RunSeries."""
    if data is None:
        from . import _read

        data = _read(path)[0]
    try:
        state = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to be a trainer_state.json") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise InputError(f"{path}: no log_history list (not a Hugging Face trainer_state.json)")
    steps, metrics, values, lines, epochs = [], [], [], [], []
    texts: dict[int, str] = {}
    unparsed: list[tuple[int, str]] = []
    for i, entry in enumerate(history, 1):
        if not isinstance(entry, dict):
            unparsed.append((i, f"log_history[{i - 1}]: not an object"))
            continue
        raw_step = _number(entry.get("step"))
        step = int(raw_step) if raw_step is not None and math.isfinite(raw_step) else None
        epoch = _number(entry.get("epoch"))
        bad = False
        for key, raw in entry.items():
            if key in _SKIP:
                continue
            value = _number(raw)
            if value is None:
                continue
            steps.append(step)
            metrics.append(metric_name(_ALIASES.get(key) or key)[0])
            values.append(value)
            lines.append(i)
            epochs.append(math.nan if epoch is None else epoch)
            bad = bad or not math.isfinite(value)
        if bad:
            texts[i] = f"log_history[{i - 1}]: " + json.dumps(entry)
    hparams = {k: Hparam(state[k], 0) for k in _HPARAMS if isinstance(state, dict) and k in state}
    return build_series(step=steps, metric=metrics, value=values, line=lines, epoch=epochs, source=path,
                        format=FORMAT, size=len(data), texts=texts, hparams=hparams, unparsed=len(unparsed),
                        unparsed_examples=unparsed[:5])
