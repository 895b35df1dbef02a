"""darknet (pjreddie and AlexeyAB): `` 182: -nan, -nan avg loss, 0.000000 rate, 2.01
seconds, 11648 images`` -- iteration, loss, running average, learning rate."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..engine import VAL, Batch, Format, Rule, line_at

_HEAD = re.compile(rb"(?<!\d)(\d+): (" + VAL.encode() + rb"), (" + VAL.encode() + rb")$")


def _row(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        chunk = m.string
        start = line_at(chunk, m.start())[0]
        head = _HEAD.search(chunk, start, m.start())
        if head is None:
            out.unparsed.append(m.start())
            continue
        step = int(head.group(1))
        for name, value in (("loss", head.group(2)), ("avg_loss", head.group(3)), ("lr", m.group(1))):
            out.add(m.start(), step, name, value, "train", None, None, None)


FORMAT = Format(
    name="darknet",
    title="darknet / AlexeyAB darknet (YOLO v2-v4) iteration lines",
    samples=(" 182: -nan, -nan avg loss, 0.000000 rate, 2.011170 seconds, 11648 images, 17.923213 hours left",
             "1: 722.7, 722.7 avg, 0.000010 rate, 2.1 seconds, 64 images"),
    sniff=(r"(?<!\d)\d+: \S+, \S+ avg(?: loss)?, \S+ rate", r"avg loss, ", r"hours left"),
    rules=(Rule("iteration", b" avg", r" avg(?: loss)?, ({VAL}) rate", _row),),
)
