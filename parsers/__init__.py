"""The explicit, ordered registry of built-in formats (installed as ``logsleuth.parsers``).

Order matters only for ties in detection: specific formats first, the generic
``key: value`` fallback last. Third-party formats register through the
``logsleuth.formats`` entry-point group; teams without Python use a format file
(see :mod:`logsleuth.userformat`).
"""

from __future__ import annotations

from importlib import import_module

from ..engine import Format, Rule
from .common import COMMON_RULES

_MODULES = (
    "caffe",
    "tensorflow",
    "keras",
    "hf_trainer",
    "lightning",
    "detectron2",
    "maskrcnn_benchmark",
    "mmcv",
    "yolo",
    "fairseq",
    "megatron",
    "deepspeed",
    "darknet",
    "turicreate",
    "opennmt",
    "pytorch",
    "generic",
)


def builtin_formats() -> tuple[Format, ...]:
    """Every built-in format, in registry order."""
    return tuple(import_module(f"{__name__}.{name}").FORMAT for name in _MODULES)


__all__ = ["COMMON_RULES", "Format", "Rule", "builtin_formats"]
