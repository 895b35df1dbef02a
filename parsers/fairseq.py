"""fairseq, old and new styles.

* new (>= 0.9): ``2020-03-23 11:39:44 | INFO | train_inner | epoch 003:  5 / 356 loss=9.44,
  ..., num_updates=700, lr=0.000175, gnorm=156.036, loss_scale=0``; epoch summaries
  ``| INFO | train | epoch 002 | loss 9.803 | ... | num_updates 695``; ``| valid |``;
* old: ``| epoch 001:    200 / 1374 loss=9.1, ..., gnorm=1.2, loss_scale=128`` and
  ``| epoch 028 | loss 3.976 | ...`` / ``| epoch 028 | valid on 'valid' subset | ...``;
* ``overflow detected, setting loss scale to: 64.0`` and ``Minimum loss scale reached``
  are cross-format events (:mod:`parsers.common`).

The step is ``num_updates``; validation metrics are ``eval_*``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..engine import KV_STYLES, NUM, Batch, Format, Rule, canonical, line_at, read_pairs

_PIPE_KV = re.compile(rb"\| (\w+) (" + NUM.encode() + rb")(?= \||\s*$)")
_EQ_KV = KV_STYLES["equals"]
_POSITION = frozenset({"num_updates", "epoch"})
_NOISE = frozenset({"wps", "ups", "wpb", "bsz", "wall", "train_wall", "oom", "gb_free", "cuda_gb_free"})


def _epoch_line(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        chunk = m.string
        start = line_at(chunk, m.start())[0]
        context = chunk[start:m.start()]
        epoch, inner, rest = m.groups()
        valid = b"valid on" in rest or b"| valid" in context
        pairs = read_pairs(_EQ_KV if inner else _PIPE_KV, rest, out.capped)
        names = [(canonical(k), v) for k, v in pairs]
        step = next((int(float(v)) for n, v in names if n == "num_updates"), None)
        for name, value in names:
            if name in _POSITION or name in _NOISE:
                continue
            if valid:
                name = name if name.startswith("eval_") else f"eval_{name}"
            out.add(m.start(), step, name, value, "eval" if valid else "train",
                                float(epoch), None, None)


FORMAT = Format(
    name="fairseq",
    replayable=True,
    title="fairseq (train_inner / epoch summaries, old and new styles)",
    samples=(
        "2020-03-23 11:39:44 | INFO | train_inner | epoch 003:      5 / 356 loss=9.44, nll_loss=8.44, ppl=347.28, "
        "wps=30690.8, num_updates=700, lr=0.000175, gnorm=156.036, loss_scale=0, train_wall=1281",
        "| epoch 028 | loss 3.976 | nll_loss 2.204 | ppl 4.61 | num_updates 9165 | lr 0.000330319 | gnorm 0.635 "
        "| loss_scale 0.000 | wall 4043",
        "| epoch 001:    200 / 1374 loss=9.1, nll_loss=8.2, ppl=294.1, num_updates=200, lr=0.0005, gnorm=1.2, "
        "loss_scale=128",
    ),
    sniff=(r"\| epoch \d+", r"\| train_inner \|", r"num_updates[ =]\d+", r"fairseq"),
    rules=(
        Rule("epoch", b"| epoch ", r"\| epoch (\d+)(:\s+\d+ / \d+)?([^\r\n]*)", _epoch_line),
    ),
)
