"""Example adapter: a learning rate far too high.

The job: an MLP regressing a smooth target with plain SGD at ``lr=LR``. Every update
overshoots, the loss grows geometrically from the first steps and overflows to inf/nan
at step FAIL_STEP (signature L301, early blowup). The checkpoint is the initial state
(step 0). ``logsleuth replay`` should find that the failure reproduces for every sample
of the batch, that learning rate x0.1 removes it (and lr=0 too), and name C01.
"""

from __future__ import annotations

import torch

from _common import epoch_batch, indexed_batch, mlp, seeded
from logsleuth.replay import Adapter, Batch

N, FEATURES, BATCH, SEED = 256, 8, 32, 3
LR = 1.0
FAIL_STEP = 7
CHECKPOINT_STEP = 0


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(N, FEATURES, generator=g)
    y = torch.sin(x[:, :1]) + x[:, 1:2] ** 2
    return x, y


class LearningRateAdapter(Adapter):
    """MLP regression with SGD at a learning rate far too high."""

    def __init__(self, lr: float = LR) -> None:
        self.lr = lr
        self.x, self.y = make_data()

    def build_model(self) -> torch.nn.Module:
        return seeded(0, lambda: mlp(FEATURES, 64, 64, 1))

    def build_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=self.lr)

    def batch(self, step: int) -> Batch:
        return indexed_batch(self.x, self.y, epoch_batch(step, BATCH, N, SEED))

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ((output - batch.targets) ** 2).mean(dim=1)


adapter = LearningRateAdapter()
