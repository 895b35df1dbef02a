"""Example adapter: fp16 overflow under mixed precision (CPU autocast, float16).

The job: an MLP on raw, unnormalised sensor readings, trained under
``torch.autocast(dtype=torch.float16)`` with a ``GradScaler``. Most readings are in the
hundreds, but sample 172 is a legitimate reading 2000 times larger: in fp16 the
first layer's output exceeds 65504 and becomes inf (step 9). ``logsleuth replay``
should name the overflowing module (``fc1``, a Linear) and find that the same steps in
fp32 stay finite: C10.
"""

from __future__ import annotations

import torch

from _common import epoch_batch, indexed_batch, mlp, seeded
from logsleuth.replay import Adapter, Batch

N, FEATURES, BATCH, SEED = 256, 16, 16, 7
HOT_INDEX = 172
FAIL_STEP = 9
CHECKPOINT_STEP = 6


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    """Readings around 100 (unnormalised); sample HOT_INDEX is 2000x brighter but finite."""
    g = torch.Generator().manual_seed(SEED)
    x = 100.0 + 20.0 * torch.randn(N, FEATURES, generator=g)
    x[HOT_INDEX] *= 2000.0
    y = torch.randn(N, 1, generator=g)
    return x, y


class Fp16Adapter(Adapter):
    """MLP under fp16 autocast with a gradient scaler."""

    autocast_dtype = torch.float16
    grad_scaler = True

    def __init__(self) -> None:
        self.x, self.y = make_data()

    def build_model(self) -> torch.nn.Module:
        return seeded(0, lambda: mlp(FEATURES, 64, 1))

    def build_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=1e-6)

    def batch(self, step: int) -> Batch:
        return indexed_batch(self.x, self.y, epoch_batch(step, BATCH, N, SEED))

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ((output.float() - batch.targets) ** 2).mean(dim=1)


adapter = Fp16Adapter()
