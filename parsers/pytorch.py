"""PyTorch example-style prints, which most hand-written training loops copy.

* ImageNet example: ``Epoch: [23][280/715]  Time 0.290 (0.318)  Loss 1.1693 (1.1644)
  Acc@1 72.656 (72.098)`` (value then running average) and ``Test: [ 10/196]`` / `` * Acc@1``;
* MNIST example: ``Train Epoch: 1 [32/6000 (1%)]\\tLoss: 0.037`` (position in samples) and
  ``Test set: Average loss: 0.0331, Accuracy: 9890/10000``;
* timm: ``Train: 0 [ 100/1251 (  8%)]  Loss: 6.91 (6.93)  Time: ...  LR: 1.000e-04``;
* anything else free-form mentioning a loss (``epoch 1 iter 200 loss 0.52 lr 0.01``,
  Python-logging lines) via the generic reader.

Epochs are 0-based in the ImageNet example and timm, 1-based in the MNIST example.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import ahocorasick_rs
import numpy as np

from ..engine import (
    NUM,
    Batch,
    Format,
    Rule,
    canonical,
    group_floats,
    line_starts,
    match_starts,
    native_pattern,
    pair_columns,
    pair_rows,
)
from .generic import free_form_lines

#: ``Acc@1  72.66 ( 72.10)``: AverageMeter pads both to their width (``:6.2f``); a key
#: starts after a non-key byte, so a failed try costs one byte, not the key's length
_VALUE_AVG = re.compile(rb"(?<![\w@])([A-Za-z][\w@]{0,127}+):?\s+(" + NUM.encode() + rb")\s+\(\s*(" + NUM.encode()
                        + rb")\s*\)")
_LR = re.compile(rb"LR:\s+(" + NUM.encode() + rb")")
native_pattern(_VALUE_AVG, 3)  # read by logsleuth/_native.c's pair_split where it is built
native_pattern(_LR, 4)
_NOISE = frozenset({"time", "data", "bw"})


_AVG = b" (avg)"


def _avg_rows(found: list[re.Match[bytes]], out: Batch, prefix: str = "", *, step: np.ndarray | None = None,
              epoch: np.ndarray | None = None, payload: int = 4, lr: bool = False) -> None:
    """``Key value (average)`` pairs of each match's ``payload`` group -> rows ``name`` (the
    value) and ``name_avg`` (the running average: a nan average shows a nan batch that was
    not the printed one), column-wise; with ``lr``, timm's plain ``LR: value`` too."""
    pos = match_starts(found)
    payloads = [m.group(payload) for m in found]
    owner, (keys, values, averages) = pair_columns(_VALUE_AVG, payloads, out.capped)
    # value and average of a pair side by side, the average keyed "<key> (avg)"
    keys = list(itertools.chain.from_iterable(zip(keys, [k + _AVG for k in keys])))
    values = list(itertools.chain.from_iterable(zip(values, averages)))
    owner = np.repeat(owner, 2)
    if lr:
        lr_owner, (lr_values,) = pair_columns(_LR, payloads)
        lines, first = np.unique(lr_owner, return_index=True)
        owner = np.concatenate((owner, lines))
        keys += [b"LR"] * len(lines)
        values += [lr_values[i] for i in first.tolist()]
        order = np.argsort(owner, kind="stable")
        keys, values, owner = [keys[i] for i in order.tolist()], [values[i] for i in order.tolist()], owner[order]
    pair_rows(out, pos, owner, keys, values, lambda key: _avg_name(key, prefix), step=step, epoch=epoch,
              phase=None if lr else "eval" if prefix else "train")


def _avg_name(key: bytes, prefix: str) -> str | None:
    average = key.endswith(_AVG)
    name = canonical(key[: -len(_AVG)] if average else key)
    if name in _NOISE:
        return None
    name = f"{prefix}{name}" if prefix and not name.startswith(prefix) else name
    return f"{name}_avg" if average else name


def _positions(found: list[re.Match[bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """(step, epoch) of ``Epoch: [e][i/n]``-style heads: step = e * n + i."""
    epoch, it, total = (group_floats(found, g) for g in (1, 2, 3))
    return epoch * total + it, epoch


def _imagenet(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    found = list(matches)
    if found:
        step, epoch = _positions(found)
        _avg_rows(found, out, step=step, epoch=epoch)


def _test_batch(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    found = list(matches)
    if found:
        _avg_rows(found, out, "eval_", payload=1)


def _mnist(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        epoch, seen, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
        out.add(m.start(), (epoch - 1) * total + seen, "loss", m.group(4), "train", float(epoch),
                            None, None)


def _mnist_test(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        out.add(m.start(), None, "eval_loss", m.group(1), "eval", None, None, None)


def _timm(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    found = list(matches)
    if found:
        step, epoch = _positions(found)
        _avg_rows(found, out, step=step, epoch=epoch, lr=True)


FORMAT = Format(
    name="pytorch",
    replayable=True,
    title="PyTorch loops: ImageNet / MNIST examples, timm, free-form prints",
    samples=(
        "Epoch: [23][280/715]    Time 0.290 (0.318)      Loss 1.1693 (1.1644)    Acc@1 72.656 (72.098)",
        "Train Epoch: 1 [32/6000 (1%)]\tLoss: 0.037991054356098",
        "Train: 0 [ 100/1251 (  8%)]  Loss: 6.912 (6.93)  Time: 0.4s  LR: 1.000e-04  Data: 0.01",
        "Test set: Average loss: 0.0331, Accuracy: 9890/10000 (99%)",
        "epoch 3 iter 200 loss 0.52 lr 0.01",
    ),
    sniff=(
        r"Epoch: \[\d+\]\[\s*\d+/\d+\]",
        r"Train Epoch: \d+ \[\d+/\d+",
        r"Train: \d+ \[\s*\d+/\d+",
        r"Test set: Average loss",
        r"(?i)(?:epoch|iter|step)\s*[:=]?\s*\[?\d+.*\bloss\b",
    ),
    rules=(
        Rule("imagenet", b"Epoch: [", r"Epoch: \[(\d+)\]\[\s*(\d+)/(\d+)\]([^\r\n]*)", _imagenet),
        Rule("imagenet-test", b"Test: [", r"Test: \[\s*\d+/\d+\]([^\r\n]*)", _test_batch),
        Rule("mnist", b"Train Epoch: ", r"Train Epoch: (\d+) \[(\d+)/(\d+) [^\]\r\n]*\]\s+Loss: ({VAL})", _mnist),
        Rule("mnist-test", b"Test set: Average loss: ", r"Test set: Average loss: ({VAL})", _mnist_test),
        Rule("timm", b"Train: ", r"Train: (\d+) \[\s*(\d+)/(\d+)[^\]\r\n]*\]([^\r\n]*)", _timm),
        Rule("free-form", b"oss", r"oss", lambda ms, out: _free_form_unclaimed(ms, out)),
    ),
    epoch_base=1,
    infer_steps=True,
    epoch_summaries=True,
    step_note="the log prints no step: steps are the order of the logged records",
)

_CLAIMED = (b"Epoch: [", b"Test: [", b"Train Epoch: ", b"Test set: ", b"Train: ")
_CLAIMED_GATE = ahocorasick_rs.BytesAhoCorasick(list(_CLAIMED), matchkind=ahocorasick_rs.MatchKind.LeftmostFirst)


def _free_form_unclaimed(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """Free-form loss lines that none of the specific rules above reads: a line is read
    (once) unless a specific rule's start comes before its first ``oss`` on the line."""
    found = list(matches)
    if not found:
        return
    chunk = found[0].string
    first = match_starts(found)
    starts, index = np.unique(line_starts(chunk, first), return_index=True)
    first = first[index]
    claimed = np.array(sorted(s for _, s, _ in _CLAIMED_GATE.find_matches_as_indexes(chunk)), np.int64)
    if len(claimed):
        at = np.searchsorted(claimed, starts, side="left")
        hit = at < len(claimed)
        hit[hit] = claimed[at[hit]] < first[hit]
        starts = starts[~hit]
    if len(starts):
        free_form_lines(chunk, starts, out)
