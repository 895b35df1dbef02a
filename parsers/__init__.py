"""The explicit, ordered registry of built-in formats (installed as ``logsleuth.parsers``).

Order matters only for ties in detection: specific formats first, the generic
``key: value`` fallback last. Third-party formats register through the
``logsleuth.formats`` entry-point group; teams without Python use a format file
(see :mod:`logsleuth.userformat`).
"""

from __future__ import annotations

from ..engine import Format, Rule
from . import (
    caffe,
    darknet,
    deepspeed,
    detectron2,
    fairseq,
    generic,
    hf_trainer,
    keras,
    lightning,
    maskrcnn_benchmark,
    megatron,
    mmcv,
    opennmt,
    pytorch,
    tensorflow,
    turicreate,
    yolo,
)
from .common import COMMON_RULES

#: every built-in format, in registry order; adding one is its module, a line here, and
#: its fixture (docs/ADDING_A_FORMAT.md)
BUILTIN: tuple[Format, ...] = (
    caffe.FORMAT,
    tensorflow.FORMAT,
    keras.FORMAT,
    hf_trainer.FORMAT,
    lightning.FORMAT,
    detectron2.FORMAT,
    maskrcnn_benchmark.FORMAT,
    mmcv.FORMAT,
    yolo.FORMAT,
    fairseq.FORMAT,
    megatron.FORMAT,
    deepspeed.FORMAT,
    darknet.FORMAT,
    turicreate.FORMAT,
    opennmt.FORMAT,
    pytorch.FORMAT,
    generic.FORMAT,
)


def builtin_formats() -> tuple[Format, ...]:
    """Every built-in format, in registry order."""
    return BUILTIN


__all__ = ["BUILTIN", "COMMON_RULES", "Format", "Rule", "builtin_formats"]
