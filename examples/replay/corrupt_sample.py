"""Example adapter: a corrupt sample (a nan feature) at dataset index 238.

The job: a small MLP regressing a linear target, SGD with momentum, batches of 16 from
a seeded per-epoch shuffle of 512 samples. Sample 238 has a nan in feature 5 (a sensor
that dropped out), so the loss goes nan at step 13, the step whose batch holds it (at
position 5), and the nan recurs at the same place in every epoch (signature N202).
``logsleuth replay`` should name the first module (``fc1``, a Linear), dataset
index 238, and the counterfactual that removes the failure: the batch without it.

``clean_adapter`` is the same job after the data was repaired: replay does not reproduce.
"""

from __future__ import annotations

import torch

from _common import epoch_batch, indexed_batch, mlp, seeded
from logsleuth.replay import Adapter, Batch

N, FEATURES, BATCH, SEED = 512, 16, 16, 11
CORRUPT_INDEX = 238
FAIL_STEP = 13
CHECKPOINT_STEP = 10


def make_data(corrupt: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset: features ~ N(0, 1), target a noisy linear function of them."""
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(N, FEATURES, generator=g)
    w = torch.randn(FEATURES, 1, generator=g)
    y = x @ w + 0.1 * torch.randn(N, 1, generator=g)
    if corrupt:
        x[CORRUPT_INDEX, 5] = float("nan")
    return x, y


class CorruptSampleAdapter(Adapter):
    """MLP regression with SGD(momentum); per-sample squared error."""

    def __init__(self, corrupt: bool = True) -> None:
        self.x, self.y = make_data(corrupt)

    def build_model(self) -> torch.nn.Module:
        return seeded(0, lambda: mlp(FEATURES, 32, 1))

    def build_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def batch(self, step: int) -> Batch:
        return indexed_batch(self.x, self.y, epoch_batch(step, BATCH, N, SEED))

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ((output - batch.targets) ** 2).mean(dim=1)  # per sample


adapter = CorruptSampleAdapter()
clean_adapter = CorruptSampleAdapter(corrupt=False)
