"""PyTorch Lightning progress bars (TQDMProgressBar, and RichProgressBar's box-drawn
``Epoch 3/9 ━━━━╸ 21/25 0:00:00 • 0:00:01 50.59it/s v_num: 0.000 train_loss: 0.693``):
``Epoch 0:  97%|█▋| 1651/1702 [13:00<00:24, 2.11it/s, loss=0.158, v_num=0,
train_loss=0.149]`` (with or without bar glyphs, e.g. in Colab).

Each carriage-return update is a record; step = epoch * batches per epoch + batch
(epochs are 0-based). A bar wrapped onto two lines (a terminal or a paste broke it after
the glyphs) or cut before its closing ``]`` is still read. ``v_num`` is the logger version, not a metric. Next to a logged
``train_loss``, the bar's own ``loss`` is Lightning's running mean of recent steps: it is
``loss_avg``, so the two do not collide as ``loss``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from ..engine import (
    KV_STYLES,
    Batch,
    Format,
    Rule,
    add_markers,
    canonical,
    group_floats,
    match_starts,
    pair_columns,
    pair_rows,
)

_KV = KV_STYLES["equals"]
_RICH_KV = KV_STYLES["colon"]
_SKIP = frozenset({"v_num"})


def _bar(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """Each bar update a record. A bar at ``0/T`` is the reset before an epoch's first
    batch (still showing the last epoch's postfix): no step was taken, so no record; of
    consecutive updates at one step only the last counts (the first draw of a step still
    shows the previous step's ``train_loss``)."""
    found = [m for m in matches if int(m.group(2)) > 0]
    heads = [m.group(1, 2, 3) for m in found]
    found = [m for m, head, after in zip(found, heads, heads[1:] + [None]) if head != after]
    if found:
        _records(found, [m.group(4) or b"" for m in found], (1, 2, 3), _KV, out, running_mean=True)


def _rich_bar(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """RichProgressBar: ``Epoch 3/9 ━━━━━━╸  21/25 0:00:00 • 0:00:01 50.59it/s v_num: 0.000
    train_loss: 0.693`` (without a terminal only each epoch's last state is written). Rich
    wraps a bar at the console's width: a value pushed onto the next line, alone and
    indented, after a key that ends the line, is still the key's."""
    found = list(matches)
    if found:
        payloads = [b" ".join((m.group("payload") or b"").split()) for m in found]
        _records(found, payloads, ("epoch", "it", "total"), _RICH_KV, out)


def _records(found: list[re.Match[bytes]], payloads: list[bytes], head: tuple, kv: re.Pattern[bytes], out: Batch,
             running_mean: bool = False) -> None:
    """One record per bar update, column-wise: step = epoch * total + batch, a row per
    postfix pair (``v_num`` left out), a marker for an update without pairs. With
    ``running_mean``, a bar's own ``loss`` beside a logged ``train_loss`` is ``loss_avg``."""
    epoch, it, total = (group_floats(found, g) for g in head)
    step = epoch * total + it
    pos = match_starts(found)
    owner, (keys, values) = pair_columns(kv, payloads, out.capped)
    if running_mean and len(owner):
        logged = np.zeros(len(found), bool)
        logged[owner[np.fromiter((k.startswith(b"train_loss") for k in keys), bool, len(keys))]] = True
        keys = [_MEAN if k == b"loss" and logged[o] else k for k, o in zip(keys, owner.tolist())]
    kept = pair_rows(out, pos, owner, keys, values, _name, step=step, epoch=epoch)
    bare = np.setdiff1d(np.arange(len(found)), owner[kept])  # an update without metrics still gives its step
    if len(bare):
        add_markers(out, pos[bare], step[bare], epoch[bare])


#: the bar's running mean, keyed apart from a logged ``loss``
_MEAN = b"\x00loss_avg"


def _name(key: bytes) -> str | None:
    if key == _MEAN:
        return "loss_avg"
    name = canonical(key)
    return None if name in _SKIP else name


FORMAT = Format(
    name="lightning",
    replayable=True,
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
             r"[\d.]+(?:it/s|s/it)(?P<payload>[^\r\n]*:[ ]*\r?\n[ ]{8,}[^\s][^\r\n]*|[^\r\n]*)", _rich_bar),
    ),
)
