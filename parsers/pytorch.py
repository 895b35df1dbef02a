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

import re
from typing import Iterator

from ._base import Batch, Format, Rule, canonical, line_at, phase_of, read_pairs
from ._grammar import NUM
from .generic import lines_with_metrics

_VALUE_AVG = re.compile(rb"([A-Za-z][\w@]{0,127}+):?\s+(" + NUM.encode() + rb")\s+\((" + NUM.encode() + rb")\)")
_NOISE = frozenset({"time", "data", "bw"})


def _avg_pairs(payload: bytes, prefix: str = "", capped: dict | None = None) -> list[tuple[str, bytes]]:
    """``Key value (average)`` pairs -> the value as ``name`` and the running average as
    ``name_avg`` (a nan average shows a nan batch that was not the printed one)."""
    pairs = []
    for key, value, average in read_pairs(_VALUE_AVG, payload, capped):
        name = canonical(key)
        if name not in _NOISE:
            name = f"{prefix}{name}" if prefix and not name.startswith(prefix) else name
            pairs += [(name, value), (f"{name}_avg", average)]
    return pairs


def _imagenet(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        epoch, it, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
        step = epoch * total + it
        for name, value in _avg_pairs(m.group(4), capped=out.capped):
            out.add(m.start(), step, name, value, "train", float(epoch), None, None)


def _test_batch(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        for name, value in _avg_pairs(m.group(1), "eval_", out.capped):
            out.add(m.start(), None, name, value, "eval", None, None, None)


def _mnist(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        epoch, seen, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
        out.add(m.start(), (epoch - 1) * total + seen, "loss", m.group(4), "train", float(epoch),
                            None, None)


def _mnist_test(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        out.add(m.start(), None, "eval_loss", m.group(1), "eval", None, None, None)


def _timm(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        epoch, it, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
        for name, value in _avg_pairs(m.group(4), capped=out.capped) + _plain_lr(m.group(4)):
            out.add(m.start(), epoch * total + it, name, value, phase_of(name), float(epoch), None, None)


_LR = re.compile(rb"LR:\s+(" + NUM.encode() + rb")")


def _plain_lr(payload: bytes) -> list[tuple[str, bytes]]:
    return [("lr", v) for v in _LR.findall(payload)[:1]]


FORMAT = Format(
    name="pytorch",
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
    step_note="the log prints no step: steps are the order of the logged records",
)

_CLAIMED = (b"Epoch: [", b"Test: [", b"Train Epoch: ", b"Test set: ", b"Train: ")


def _free_form_unclaimed(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """Free-form loss lines that none of the specific rules above reads."""
    lines_with_metrics(_first_unclaimed(matches), out)


def _first_unclaimed(matches: Iterator[re.Match[bytes]]) -> Iterator[re.Match[bytes]]:
    """The first match of each line, unless a specific rule's start comes before it on the
    line. Only the first match of a line can decide (a later one sees more of the line
    before it, and the line is read once), so a line saying ``loss`` 100,000 times is
    looked at once, not once per match."""
    line_stop = -1
    for m in matches:
        if m.start() < line_stop:
            continue
        chunk = m.string
        start, line = line_at(chunk, m.start())
        line_stop = start + len(line)
        if not any(chunk.find(c, start, m.start()) != -1 for c in _CLAIMED):
            yield m
