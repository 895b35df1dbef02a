"""Framework keys for fixes, and how a parser's format name maps onto them.

A fix is written in the terms of the framework that wrote the log (``base_lr`` for Caffe,
``max_grad_norm`` for the Hugging Face Trainer). Parsers name *formats*, which are not
quite frameworks: a format declares the framework whose advice it takes
(``Format.framework``: maskrcnn-benchmark logs take detectron2's, same config keys; Turi
Create has no knob worth naming and gets the generic advice). The table here holds the
other spellings: framework names people type, and the run artefacts.

Frameworks built on PyTorch fall back to the ``pytorch`` fix when they have none of their
own: a Lightning user's custom loss is still PyTorch code. The fallback is only used
where the catalog gives no framework fix, so advice that would be wrong there (clipping
by hand under DeepSpeed) is avoided by writing the framework's own fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: framework keys a cause's ``fixes`` table may use, in display order
FRAMEWORKS: tuple[str, ...] = (
    "generic",
    "caffe",
    "pytorch",
    "keras",
    "tensorflow",
    "hf_trainer",
    "lightning",
    "deepspeed",
    "fairseq",
    "megatron",
    "mmcv",
    "detectron2",
    "yolo",
    "darknet",
    "opennmt",
)

#: format names (and common spellings of framework names) that are not framework keys
FORMAT_FRAMEWORK: Mapping[str, str] = MappingProxyType({
    "nvcaffe": "caffe",
    "tf": "tensorflow",
    "tf1": "tensorflow",
    "huggingface": "hf_trainer",
    "transformers": "hf_trainer",
    "pytorch_lightning": "lightning",
    "megatron_lm": "megatron",
    "megatron_deepspeed": "megatron",
    "mmdet": "mmcv",
    "mmdetection": "mmcv",
    "mmengine": "mmcv",
    "ultralytics": "yolo",
    "yolov5": "yolo",
    "apex": "pytorch",
    "opennmt_py": "opennmt",
    # run artefacts, by the framework that wrote them
    "hf_trainer_state": "hf_trainer",
    "lightning_csv": "lightning",
    "keras_csv": "keras",
})

#: where a framework's missing fix is looked up next (before the generic one)
FRAMEWORK_PARENT: Mapping[str, str] = MappingProxyType({
    "lightning": "pytorch",
    "hf_trainer": "pytorch",
    "deepspeed": "pytorch",
    "fairseq": "pytorch",
    "megatron": "pytorch",
    "mmcv": "pytorch",
    "detectron2": "pytorch",
    "yolo": "pytorch",
    "opennmt": "pytorch",
})


def framework_for(format_name: str) -> str:
    """The framework key for a parser format name; ``generic`` for anything unknown.

    Case, ``-`` and ``_`` do not matter: ``maskrcnn-benchmark`` and ``Megatron-DeepSpeed``
    map like ``maskrcnn_benchmark`` and ``megatron_deepspeed``.
    """
    key = format_name.strip().lower().replace("-", "_")
    key = _declared_framework(key) or FORMAT_FRAMEWORK.get(key, key)
    return key if key in FRAMEWORKS else "generic"


def _declared_framework(name: str) -> str | None:
    """The framework a registered format declares (its own name where it declares none)."""
    from ..registry import find_format

    fmt = find_format(name)
    return (fmt.framework or fmt.name) if fmt is not None else None


def fix_chain(format_name: str) -> tuple[str, ...]:
    """Framework keys to try for a framework-specific fix, most specific first (no generic)."""
    chain: list[str] = []
    key: str | None = framework_for(format_name)
    while key is not None and key != "generic" and key not in chain:
        chain.append(key)
        key = FRAMEWORK_PARENT.get(key)
    return tuple(chain)
