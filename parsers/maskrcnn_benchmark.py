"""maskrcnn-benchmark (and FCOS, its forks): ``maskrcnn_benchmark.trainer INFO: eta:
17:39:53  iter: 140  loss: nan (nan)  loss_cls: nan (nan) ... lr: 0.003333  max mem: 7051``.
Each metric prints its median then its global average in parentheses: the first is kept.
"""

from __future__ import annotations

from ..engine import Format
from .detectron2 import ITER_RULE

FORMAT = Format(
    name="maskrcnn_benchmark",
    replayable=True,
    framework="detectron2",  # the same config keys: detectron2's advice
    title="maskrcnn-benchmark / FCOS trainer lines",
    samples=(
        "2019-04-16 10:35:26,752 maskrcnn_benchmark.trainer INFO: eta: 17:39:53  iter: 140  loss: nan (nan)  "
        "loss_cls: nan (nan)  loss_reg: nan (nan)  time: 0.6618 (0.7077)  lr: 0.003333  max mem: 7051",
    ),
    sniff=(r"maskrcnn_benchmark", r"iter: \d+\s+loss: \S+ \(", r"fcos_core"),
    rules=(ITER_RULE,),
)
