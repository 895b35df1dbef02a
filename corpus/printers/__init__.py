"""One printer per framework: a trajectory rendered exactly as that framework prints it.

Each module defines a :class:`~corpus.render.Printer` subclass; :data:`PRINTERS` lists
them in a fixed order (the order matters for reproducibility, not for detection).
"""

from __future__ import annotations

from ..render import Printer
from .caffe import Caffe
from .deepspeed import DeepSpeed
from .detectron2 import Detectron2
from .fairseq import Fairseq
from .hf_trainer import HFTrainer
from .keras import Keras
from .lightning import Lightning
from .megatron import Megatron
from .mmcv import MMCV
from .pytorch import PyTorch
from .tensorflow import TensorFlow

PRINTERS: tuple[Printer, ...] = (Caffe(), TensorFlow(), Keras(), PyTorch(), HFTrainer(), Lightning(), Fairseq(),
                                 Megatron(), MMCV(), Detectron2(), DeepSpeed())
BY_NAME = {p.name: p for p in PRINTERS}
