"""Hugging Face Trainer: dict lines ``{'loss': 0.52, 'grad_norm': 1.3, 'learning_rate':
5e-05, 'epoch': 0.4}`` between tqdm bars, ``{'eval_loss': ...}``, the end-of-run
``***** train metrics *****`` blocks, and ``TrainingArguments(...)`` (hyperparameters).

The dicts print no step. It is taken from the tqdm bar just before each dict (the main
bar: an eval bar, with its smaller total, never sets it); with no bar in the log, steps
are counted logging records -- and the series says so. ``logging_nan_inf_filter`` can
print a finite loss while ``grad_norm`` is nan: both are kept as printed.
"""

from __future__ import annotations

import re
from typing import Iterator

from ._base import Batch, Format, Rule, canonical, phase_of
from ._grammar import VAL

_ITEM = re.compile(rb"'([\w/.\-]+)': (" + VAL.encode() + rb")")
_BLOCK_ITEM = re.compile(rb"(?m)^[ \t]+([\w/.\-]+)\s+=\s+(" + VAL.encode() + rb")[ \t\r]*$")
ALIASES = {"train_loss": "train_loss_avg", "loss": "loss"}
_SKIP = frozenset({"epoch", "step", "total_flos", "train_runtime", "eval_runtime", "train_samples_per_second",
                   "train_steps_per_second", "eval_samples_per_second", "eval_steps_per_second"})


def _pairs(payload: bytes, regex: re.Pattern[bytes]) -> tuple[float | None, int | None, list]:
    epoch = step = None
    pairs = []
    for key, value in regex.findall(payload):
        name = canonical(key, ALIASES)
        if name == "epoch":
            epoch = float(value)
        elif name == "step" and value.isdigit():
            step = int(value)
        elif name not in _SKIP:
            pairs.append((name, value))
    return epoch, step, pairs


def _dict_line(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """One record per numeric item of each dict line (collected, then added at once)."""
    pos: list[int] = []
    steps: list = []
    names: list[str] = []
    values: list[bytes] = []
    phases: list[str] = []
    epochs: list = []
    for m in matches:
        epoch, step, pairs = _pairs(m.group(1), _ITEM)
        start = m.start()
        for name, value in pairs:
            pos.append(start)
            steps.append(step)
            names.append(name)
            values.append(value)
            phases.append(phase_of(name))
            epochs.append(epoch)
    out.extend(pos, steps, names, values, phases, epochs)


def _metrics_block(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        epoch, _, pairs = _pairs(m.group(1), _BLOCK_ITEM)
        phase = "eval" if m.group(0).startswith(b"***** eval") else "train"
        for name, value in pairs:
            out.add(m.start(), None, name, value, phase, epoch, None, None)


FORMAT = Format(
    name="hf_trainer",
    title="Hugging Face Trainer (dict lines, tqdm, metrics blocks)",
    samples=(
        "{'loss': 0.2051, 'grad_norm': nan, 'learning_rate': 9.774074342405685e-06, 'epoch': 0.53}",
        "{'eval_loss': 0.6123, 'eval_runtime': 1.2, 'eval_samples_per_second': 80.1, 'epoch': 1.0}",
        "***** eval metrics *****\n  epoch                   =        5.0\n  eval_loss               =        nan",
    ),
    sniff=(r"\{'loss': ", r"'learning_rate': ", r"\{'eval_loss': ", r"'grad_norm': ", r"\*\*\*\*\* (?:train|eval) metrics",
           r"\*\*\*\*\* Running training \*\*\*\*\*"),
    rules=(
        Rule("dict", b"{'", r"\{('(?:loss|eval_|train_|grad_norm|learning_rate|epoch|test_)[^}\r\n]*)\}", _dict_line),
        Rule("metrics-block", b"***** ", r"\*\*\*\*\* (?:train|eval|test) metrics \*\*\*\*\*\r?\n((?:[ \t]+[\w/.\-]+\s+=[^\r\n]*\r?\n?)*)",
             _metrics_block),
    ),
    bar_steps=True,
    infer_steps=True,
    step_note="Hugging Face Trainer prints no step: steps come from the tqdm bar before each dict line, "
              "or count the logged dicts when there is no bar",
)
