"""The fallback for everything else: any line mentioning a loss, read as free-form
``key value`` / ``key: value`` / ``key=value`` pairs (``epoch 1 iter 200 loss 0.52 lr
0.01``, ``02:29:53: train iter: 100 loss_net: nan norm: nan``, Python-logging lines).

Keys named step/iter/iteration/global_step/batch position the record, ``epoch`` sets the
epoch, ``iter 200/500`` is an iteration within an epoch; bookkeeping (time, eta, memory)
is dropped. When no line prints a step, records are counted instead (and the user told).
"""

from __future__ import annotations

import re
from typing import Iterator

from ..bounds import MAX_LINE_BYTES
from ._base import Batch, Format, Rule, free_form, line_at, phase_of


#: a loss with something like a number after it: a line we should have read ("possible",
#: "Cross validation..." and "loss is nan" in words are not unread metrics)
_METRIC_LOOKING = re.compile(rb"(?i)loss\w{0,64}['\"]?\s*[:=]?\s*['\"]?(?:[-+]?\.?\d|nan|inf)")


def lines_with_metrics(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """Every line (or bar update) containing the anchor, read once as a free-form print.
    Matches inside the line just read are skipped without looking the line up again: a
    line saying ``loss`` 100,000 times costs its length once, not 100,000 times."""
    line_stop = -1
    for m in matches:
        if m.start() < line_stop:
            continue
        start, line = line_at(m.string, m.start())
        line_stop = start + len(line)
        where, pairs = free_form(line, capped=out.capped)
        if not pairs:
            if not where.get("config") and _METRIC_LOOKING.search(line, 0, MAX_LINE_BYTES):
                out.unparsed.append(start)
            continue
        step, epoch = where.get("step"), where.get("epoch")
        it, total = where.get("iter"), where.get("total")
        for name, value in pairs:
            out.add(start, step, name, value, phase_of(name), epoch, it, total)


FORMAT = Format(
    name="generic",
    title="Generic key/value prints (fallback)",
    samples=(
        "epoch 1 iter 200 loss 0.52 lr 0.01",
        "02:31:56: train iter: 100 loss_net: nan loss_scale: 785.4200 norm: nan",
        "2023-01-01 12:00:00,123 - INFO - step=300 loss=0.412 grad_norm=1.9",
        "Epoch [1/10], Step [100/600], Loss: 0.2513",
    ),
    sniff=(),
    rules=(Rule("loss-line", b"oss", r"oss", lines_with_metrics),),
    epoch_base=1,
    infer_steps=True,
    step_note="the log prints no step: steps are the order of the logged records",
)
