"""TensorFlow 1: Estimator ``loss = X, step = N``, slim ``global step N: loss = X``,
cifar10-style ``step N, loss = X``, eval ``Saving dict for global step N: ...``; and the
TF2 Object Detection API's ``model_lib_v2`` loop: ``Step 100 per-step time 0.382s`` then the
step's losses pretty-printed one key per line (``{'Loss/classification_loss': 0.52,``,
`` 'Loss/total_loss': 0.97,``, `` 'learning_rate': 0.079}``), read at that step.

``Model diverged with loss = NaN`` and CheckNumerics errors are cross-format events
(:mod:`parsers.common`). TF prints through absl *and* glog in many setups, so every
message may appear twice: this format drops the copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..engine import NUM, Batch, Format, Rule, canonical, fixed

_PAIR = re.compile(rb"(\w{1,128}+) = (" + NUM.encode() + rb")")


def _estimator(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """``loss = 0.52, step = 1200`` (value first, step second)."""
    for m in matches:
        out.add(m.start(), int(m.group(2)), "loss", m.group(1), "train", None, None, None)


def _od_step(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """``Step 100 per-step time 0.382s``: the step the loss dict after it belongs to."""
    for m in matches:
        out.add(m.start(), int(m.group(1)), None, None)


def _od_loss(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """One line of the loss dict: ``'Loss/total_loss': 0.97`` (the total is the loss)."""
    for m in matches:
        key = m.group(1)
        name = "loss" if key == b"total_loss" else canonical(key)
        out.add(m.start(), None, name, m.group(2), "train", None, None, None)


def _eval_dict(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        step = int(m.group(1))
        for key, value in _PAIR.findall(m.group(2)):
            name = canonical(key)
            if name == "global_step":
                continue
            name = name if name.startswith("eval_") else f"eval_{name}"
            out.add(m.start(), step, name, value, "eval", None, None, None)


FORMAT = Format(
    name="tensorflow",
    title="TensorFlow 1 (Estimator, slim, cifar10 examples)",
    samples=(
        "INFO:tensorflow:loss = 1.8717, step = 31601 (182.200 sec)",
        "INFO:tensorflow:global step 98468: loss = nan (0.416 sec/step)",
        "2017-05-01 10:00:00.123: step 1200, loss = 0.52 (340.1 examples/sec; 0.376 sec/batch)",
        "INFO:tensorflow:Saving dict for global step 1000: accuracy = 0.91, global_step = 1000, loss = 0.31",
        "I0409 23:03:12.869635 140410452137792 model_lib_v2.py:708] {'Loss/classification_loss': nan,",
    ),
    sniff=(
        r"INFO:tensorflow:",
        r"loss = \S+, step = \d+",
        r"global step \d+: loss = ",
        r"step \d+, loss = \S+ \(",
        r"model_lib_v2\.py:\d+\] ",
        r"^ ?\{?'Loss/total_loss': ",
    ),
    rules=(
        Rule("estimator", b"loss = ", r"loss = ({VAL}), step = (\d+)", _estimator),
        Rule("slim", b"global step ", r"global step (\d+): loss = ({VAL})", fixed("loss")),
        Rule("cifar10", b"step ", r"step (\d+), loss = ({VAL})", fixed("loss")),
        Rule("od-step", b"Step ", r"Step (\d+) per-step time ", _od_step),
        Rule("od-loss", b"'Loss/", r"'Loss/(\w+)': ({VAL})[,}]", _od_loss),
        Rule("od-lr", b"'learning_rate': ", r"'learning_rate': ()({VAL})\}", fixed("lr")),
        Rule("eval", b"Saving dict for global step ", r"Saving dict for global step (\d+): ([^\r\n]*)", _eval_dict),
    ),
    dedupe=True,
)
