"""OpenMMLab logs (mmdetection, mmseg, ... ): mmcv ``Epoch [1][100/7330]\\tlr: 2.0e-02,
eta: ..., loss: 1.2, grad_norm: 8.1``, mmengine ``Epoch(train) [1][240/735]  lr: ...
loss: ...  grad_norm: ...`` and ``Iter(train) [ 100/90000]``; ``Epoch(val)`` lines are eval.

Epochs are 1-based: step = (epoch - 1) * iterations per epoch + iteration.
"""

from __future__ import annotations

from typing import Iterator
import re

from ._base import KV_STYLES, Batch, Format, Rule, canonical, is_noise, read_pairs

_KV = KV_STYLES["colon"]


def _records(m: re.Match[bytes], out: Batch, step: int | None, epoch: float | None, phase: str,
             payload: bytes) -> None:
    for key, value in read_pairs(_KV, payload, out.capped):
        name = canonical(key)
        if is_noise(name):
            continue
        if phase == "eval" and not name.startswith("eval_"):
            name = f"eval_{name}"
        out.add(m.start(), step, name, value, phase, epoch, None, None)


def _epoch_line(phase: str):
    def handle(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        for m in matches:
            epoch, it, total, payload = m.groups()
            step = (int(epoch) - 1) * int(total) + int(it) if total and phase == "train" else None
            _records(m, out, step, float(epoch), phase, payload)
    return handle


def _iter_line(phase: str):
    def handle(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        for m in matches:
            _records(m, out, int(m.group(1)) if phase == "train" else None, None, phase, m.group(2))
    return handle


FORMAT = Format(
    name="mmcv",
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
