"""OpenMMLab logs (mmdetection, mmseg, ... ): mmcv ``Epoch [1][100/7330]\\tlr: 2.0e-02,
eta: ..., loss: 1.2, grad_norm: 8.1``, mmengine ``Epoch(train) [1][240/735]  lr: ...
loss: ...  grad_norm: ...`` and ``Iter(train) [ 100/90000]``; ``Epoch(val)`` lines are eval.

Epochs are 1-based: step = (epoch - 1) * iterations per epoch + iteration.
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
    canonical,
    group_floats,
    is_noise,
    match_starts,
    pair_columns,
    pair_rows,
)

_KV = KV_STYLES["colon"]


def _records(found: list[re.Match[bytes]], out: Batch, step: np.ndarray, epoch: np.ndarray | None, phase: str,
             payload: int) -> None:
    """The ``key: value`` pairs of each line's ``payload`` group as rows, column-wise
    (bookkeeping left out; eval metrics named ``eval_*``)."""
    pos = match_starts(found)
    owner, (keys, values) = pair_columns(_KV, [m.group(payload) for m in found], out.capped)
    pair_rows(out, pos, owner, keys, values, _EVAL_NAME if phase == "eval" else _TRAIN_NAME, step=step, epoch=epoch,
              phase=phase)


def _named(eval_phase: bool):
    def name_of(key: bytes) -> str | None:
        name = canonical(key)
        if is_noise(name):
            return None
        return f"eval_{name}" if eval_phase and not name.startswith("eval_") else name
    return name_of


_TRAIN_NAME, _EVAL_NAME = _named(False), _named(True)


def _epoch_line(phase: str):
    def handle(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        found = list(matches)
        if not found:
            return
        epoch, it, total = group_floats(found, 1), group_floats(found, 2), group_floats(found, 3)
        step = (epoch - 1) * total + it if phase == "train" else np.full(len(found), np.nan)
        _records(found, out, step, epoch, phase, 4)
    return handle


def _iter_line(phase: str):
    def handle(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        found = list(matches)
        if found:
            step = group_floats(found, 1) if phase == "train" else np.full(len(found), np.nan)
            _records(found, out, step, None, phase, 2)
    return handle


FORMAT = Format(
    name="mmcv",
    replayable=True,
    title="OpenMMLab mmcv / mmengine (mmdetection, mmseg, ...)",
    samples=(
        "2020-10-13 22:51:17,824 - mmdet - INFO - Epoch [5][2550/4015]\tlr: 2.000e-02, eta: 3:18:45, time: 0.558, "
        "data_time: 0.007, memory: 3862, loss_rpn_cls: 0.0221, loss: 0.6581",
        "2023/01/01 10:00:00 - mmengine - INFO - Epoch(train)  [1][240/735]  lr: 2.0000e-02  eta: 1:00:00  "
        "time: 0.5  loss: 1.2031  grad_norm: 8.1",
        "2023/01/01 10:00:00 - mmengine - INFO - Iter(train) [  100/90000]  lr: 1.0e-02  loss: 2.31",
    ),
    sniff=(r"Epoch(?:\((?:train|val)\))?\s*\[\d+\]\[\s*\d+/\d+\]", r"Iter\((?:train|val)\)", r"- mmdet -",
           r"mmengine", r"mmcv"),
    rules=(
        Rule("epoch", b"Epoch [", r"Epoch \[(\d+)\]\[\s*(\d+)/(\d+)\]([^\r\n]*)", _epoch_line("train")),
        Rule("epoch-train", b"Epoch(train)", r"Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]([^\r\n]*)",
             _epoch_line("train")),
        Rule("epoch-val", b"Epoch(val)", r"Epoch\(val\)\s*\[(\d+)\](?:\[\s*(\d+)(?:/(\d+))?\])?([^\r\n]*)",
             _epoch_line("eval")),
        Rule("iter-train", b"Iter(train)", r"Iter\(train\)\s*\[\s*(\d+)/\d+\]([^\r\n]*)", _iter_line("train")),
        Rule("iter-val", b"Iter(val)", r"Iter\(val\)\s*\[\s*(\d+)(?:/\d+)?\]([^\r\n]*)", _iter_line("eval")),
    ),
)
