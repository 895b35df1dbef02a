"""TensorFlow 1: Estimator ``loss = X, step = N``, slim ``global step N: loss = X``,
cifar10-style ``step N, loss = X``, eval ``Saving dict for global step N: ...``.

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
    ),
    sniff=(
        r"INFO:tensorflow:",
        r"loss = \S+, step = \d+",
        r"global step \d+: loss = ",
        r"step \d+, loss = \S+ \(",
    ),
    rules=(
        Rule("estimator", b"loss = ", r"loss = ({VAL}), step = (\d+)", _estimator),
        Rule("slim", b"global step ", r"global step (\d+): loss = ({VAL})", fixed("loss")),
        Rule("cifar10", b"step ", r"step (\d+), loss = ({VAL})", fixed("loss")),
        Rule("eval", b"Saving dict for global step ", r"Saving dict for global step (\d+): ([^\r\n]*)", _eval_dict),
    ),
    dedupe=True,
)
