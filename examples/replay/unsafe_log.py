"""Example adapter: a numerically unsafe loss, binary cross-entropy written by hand.

The job: a binary classifier whose loss is ``-(y*log(p) + (1-y)*log(1-p))`` with
``p = sigmoid(logit)``. For a sample the model is very sure about, ``p`` rounds to
exactly 1.0 in float32, ``log(1-p)`` is ``-inf``, and ``0 * -inf`` is nan: the loss goes
nan although the model is *right*. Sample 77 is such a sample (a large but valid
feature vector, correctly labelled): at step 21 it passes, but when the next epoch
brings it back at step 46 the model has become sure enough. ``logsleuth replay``
should find a clean forward pass, a loss that turns finite outputs into nan for
dataset index 77 only, the failure persisting with learning rate 0, and name C06 (fix:
``F.binary_cross_entropy_with_logits``).
"""

from __future__ import annotations

import torch

from _common import epoch_batch, indexed_batch, mlp, seeded
from logsleuth.replay import Adapter, Batch

N, FEATURES, BATCH, SEED = 384, 8, 16, 5
CONFIDENT_INDEX = 77
FAIL_STEP = 46
CHECKPOINT_STEP = 44


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    """Linearly separable labels; sample CONFIDENT_INDEX lies far on the positive side."""
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(N, FEATURES, generator=g)
    w = torch.randn(FEATURES, generator=g)
    x[CONFIDENT_INDEX] = 12.0 * w / w.norm()
    y = (x @ w > 0).float().unsqueeze(1)
    return x, y


class UnsafeLossAdapter(Adapter):
    """MLP binary classifier trained with a hand-written (unsafe) cross-entropy."""

    def __init__(self) -> None:
        self.x, self.y = make_data()

    def build_model(self) -> torch.nn.Module:
        return seeded(0, lambda: mlp(FEATURES, 32, 1))

    def build_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=0.01)

    def batch(self, step: int) -> Batch:
        return indexed_batch(self.x, self.y, epoch_batch(step, BATCH, N, SEED))

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        p = torch.sigmoid(output)
        y = batch.targets
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean(dim=1)  # the bug: log(0)


adapter = UnsafeLossAdapter()
