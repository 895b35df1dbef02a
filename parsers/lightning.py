"""PyTorch Lightning progress bars (TQDMProgressBar, and RichProgressBar's box-drawn
``Epoch 3/9 ━━━━╸ 21/25 0:00:00 • 0:00:01 50.59it/s v_num: 0.000 train_loss: 0.693``): ``Epoch 0:  97%|█▋| 1651/1702 [13:00<00:24, 2.11it/s,
loss=0.158, v_num=0, train_loss=0.149]`` (with or without bar glyphs, e.g. in Colab).

Each carriage-return update is a record; step = epoch * batches per epoch + batch
(epochs are 0-based). A bar wrapped onto two lines (a terminal or a paste broke it after
the glyphs) or cut before its closing ``]`` is still read. ``v_num`` is the logger version, not a metric. Next to a logged
``train_loss``, the bar's own ``loss`` is Lightning's running mean of recent steps: it is
``loss_avg``, so the two do not collide as ``loss``.
"""

from __future__ import annotations

import re
from typing import Iterator

from ._base import KV_STYLES, Batch, Format, Rule, canonical, phase_of, read_pairs

_KV = KV_STYLES["equals"]
_RICH_KV = KV_STYLES["colon"]
_SKIP = frozenset({"v_num"})


def _bar(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """Each bar update a record. A bar at ``0/T`` is the reset before an epoch's first
    batch (still showing the last epoch's postfix): no step was taken, so no record; of
    consecutive updates at one step only the last counts (the first draw of a step still
    shows the previous step's ``train_loss``)."""
    found = [m for m in matches if int(m.group(2)) > 0]
    for m, after in zip(found, found[1:] + [None]):
        epoch, it, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if after is not None and after.group(1, 2, 3) == m.group(1, 2, 3):
            continue
        step = epoch * total + it
        raw = read_pairs(_KV, m.group(4) or b"", out.capped)
        logged = any(k.startswith(b"train_loss") for k, _ in raw)
        # with a logged train_loss, the bar's own `loss` is Lightning's running mean
        pairs = [("loss_avg" if logged and k == b"loss" else canonical(k), v) for k, v in raw]
        if not pairs:
            out.add(m.start(), step, None, None, "train", float(epoch), None, None)
        for name, value in pairs:
            if name not in _SKIP:
                out.add(m.start(), step, name, value, phase_of(name), float(epoch), None, None)


def _rich_bar(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """RichProgressBar: ``Epoch 3/9 ━━━━━━╸  21/25 0:00:00 • 0:00:01 50.59it/s v_num: 0.000
    train_loss: 0.693`` (without a terminal only each epoch's last state is written)."""
    for m in matches:
        epoch, it, total = int(m.group("epoch")), int(m.group("it")), int(m.group("total"))
        step = epoch * total + it
        pairs = [(canonical(k), v) for k, v in read_pairs(_RICH_KV, m.group("payload") or b"", out.capped)]
        pairs = [(name, v) for name, v in pairs if name not in _SKIP]
        if not pairs:
            out.add(m.start(), step, None, None, "train", float(epoch), None, None)
        for name, value in pairs:
            out.add(m.start(), step, name, value, phase_of(name), float(epoch), None, None)


FORMAT = Format(
    name="lightning",
    title="PyTorch Lightning progress bars",
    samples=(
        "Epoch 0:  97% 1651/1702 [13:00<00:24,  2.11it/s, loss=0.158, v_num=0, train_loss=0.149]",
        "Epoch 2:  45%|████▌     | 450/1000 [00:10<00:12, 44.10it/s, v_num=3, train_loss_step=nan]",
        "Epoch 0:  71%|███████\n| 5880/8295 [04:01<01:39, 24.37it/s, v_num=0, train_loss_step=nan.0",
        "Epoch 6/9 ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 10/10 0:00:00 • 0:00:00 62.11it/s v_num: 0.000 "
        "train_loss: 0.002",
    ),
    sniff=(r"Epoch \d+:\s+\d+%.*\d+/\d+ \[", r"v_num=", r"train_loss(?:_step|_epoch)?=",
           r"Epoch \d+/-?\d+ (?:\xe2\x94\x81)+", r"v_num: "),
    rules=(
        Rule("bar", b"Epoch ",
             r"Epoch (\d+):\s+\d+%[^\r\n\[]*?\n?[^\r\n\[]*?(\d+)/(\d+) \[[^\]\r\n,]*(?:,[^\]\r\n,]*?it/s|,[^\]\r\n,]*?s/it)?"
             r"(?:, ([^\]\r\n]*))?(?:\]|(?=[\r\n])|\Z)", _bar),
        Rule("rich-bar", b"Epoch ",
             r"Epoch (?P<epoch>\d+)/-?\d+ [^\r\n\d]*?(?P<it>\d+)/(?P<total>\d+) [\d:]+ \S+ [\d:\-]+ "
             r"[\d.]+(?:it/s|s/it)(?P<payload>[^\r\n]*)", _rich_bar),
    ),
)
