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
from collections.abc import Iterator

import numpy as np

from ..engine import PHASE_CODES, TRAIN, UNREADABLE, VAL, Batch, Columns, Format, Rule, canonical, phase_of, to_floats
from ..engine.native import compiled

#: an item of a logged dict; recent transformers releases quote the values (``'loss': '0.6832'``)
_ITEM = re.compile(rb"'([\w/.\-]+)': (?:'(?=[-+.\dnNiI]))?(" + VAL.encode() + rb")")
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
            epoch = to_floats([value])[0][0]  # NaN when it is no number
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


#: what each key of a dict is: a metric, or the record's epoch or step, or bookkeeping
_METRIC, _EPOCH, _STEP, _SKIPPED = 0, 1, 2, 3


def _key_role(name: str) -> int:
    return _EPOCH if name == "epoch" else _STEP if name == "step" else _SKIPPED if name in _SKIP else _METRIC


def _dict_line_native(chunk: bytes, out: Batch) -> bool:
    """:func:`_dict_line` with the compiled scanner (``logsleuth._native.hf_dicts``): the
    same records, as arrays. Per dict, the last epoch and the last all-digit step win."""
    lib = compiled()
    if lib is None:
        return False
    pos_b, owner_b, key_b, keys, value_b, digits_b, fallback_b = lib.hf_dicts(chunk)
    starts = np.frombuffer(pos_b, np.int64)
    owner = np.frombuffer(owner_b, np.int32)
    values = np.frombuffer(value_b, np.float64).copy()
    fallback = np.frombuffer(fallback_b, np.int64).reshape(-1, 3)
    readable = np.ones(len(values), dtype=bool)
    if len(fallback):  # nan/inf spellings and other tokens float() must judge
        converted, bad = to_floats([chunk[a:b] for _, a, b in fallback.tolist()])
        values[fallback[:, 0]] = converted
        readable[fallback[bad, 0]] = False
    names = [canonical(k, ALIASES) for k in keys]
    role = np.array([_key_role(n) for n in names], np.int8)[np.frombuffer(key_b, np.int32)]
    role[(role == _STEP) & (np.frombuffer(digits_b, np.int8) == 0)] = _SKIPPED  # as _pairs: a step is digits
    epoch = np.full(len(starts), np.nan)
    is_epoch = role == _EPOCH
    epoch[owner[is_epoch]] = values[is_epoch]
    step = np.full(len(starts), np.nan)
    is_step = role == _STEP
    step[owner[is_step]] = values[is_step]
    rows = np.flatnonzero(role == _METRIC)
    codes = np.frombuffer(key_b, np.int32)[rows].copy()
    out.unparsed += starts[owner[rows[~readable[rows]]]].tolist()
    codes[~readable[rows]] = UNREADABLE  # not a number: not a row (counted above)
    phases = np.array([PHASE_CODES[phase_of(n)] for n in names] + [TRAIN, TRAIN], np.int8)[codes]
    out.arrays.append(Columns(starts[owner[rows]], step[owner[rows]], codes, names, values[rows], phases,
                              epoch[owner[rows]]))
    return True


def _metrics_block(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        epoch, _, pairs = _pairs(m.group(1), _BLOCK_ITEM)
        phase = "eval" if m.group(0).startswith(b"***** eval") else "train"
        for name, value in pairs:
            out.add(m.start(), None, name, value, phase, epoch, None, None)


FORMAT = Format(
    name="hf_trainer",
    replayable=True,
    title="Hugging Face Trainer (dict lines, tqdm, metrics blocks)",
    samples=(
        "{'loss': 0.2051, 'grad_norm': nan, 'learning_rate': 9.774074342405685e-06, 'epoch': 0.53}",
        "{'eval_loss': 0.6123, 'eval_runtime': 1.2, 'eval_samples_per_second': 80.1, 'epoch': 1.0}",
        "***** eval metrics *****\n  epoch                   =        5.0\n  eval_loss               =        nan",
    ),
    sniff=(r"\{'loss': ", r"'learning_rate': ", r"\{'eval_loss': ", r"'grad_norm': ", r"\*\*\*\*\* (?:train|eval) metrics",
           r"\*\*\*\*\* Running training \*\*\*\*\*"),
    rules=(
        Rule("dict", b"{'", r"\{('(?:loss|eval_|train_|grad_norm|learning_rate|epoch|test_)[^}\r\n]*)\}", _dict_line,
             native=_dict_line_native),
        Rule("metrics-block", b"***** ",
             r"\*\*\*\*\* (?:train|eval|test) metrics \*\*\*\*\*\r?\n((?:[ \t]+[\w/.\-]+\s+=[^\r\n]*\r?\n?)*)",
             _metrics_block),
    ),
    bar_steps=True,
    infer_steps=True,
    step_note="Hugging Face Trainer prints no step: steps come from the tqdm bar before each dict line, "
              "or count the logged dicts when there is no bar",
)
