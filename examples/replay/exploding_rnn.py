"""Example adapter: exploding gradients in a recurrent network (no clipping).

The job: a ReLU RNN reads sequences of 100 steps and predicts a value from its last
hidden state; its recurrent weights start slightly expansive (spectral radius 1.05)
and training does not clip gradients. Back-propagation through time multiplies the
gradient by the recurrent matrix at every time step: the loss is fine at step 0
(0.006), the first update is large enough to make the next forward pass enormous
(loss 3.6e35), and the update after that throws the recurrent weights out of range:
nan at step 2. ``logsleuth replay`` should locate the overflow in ``rnn`` (an RNN)
and find that gradient clipping removes the failure where a 10x lower learning rate
does not: C02.
"""

from __future__ import annotations

import torch

from _common import epoch_batch, indexed_batch, seeded
from logsleuth.replay import Adapter, Batch

N, SEQ_LEN, HIDDEN, BATCH, SEED = 128, 100, 16, 8, 9
RADIUS = 1.05
LR = 0.2
FAIL_STEP = 2
CHECKPOINT_STEP = 0


class Net(torch.nn.Module):
    """A one-layer ReLU RNN and a linear head on the last hidden state."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.RNN(1, HIDDEN, nonlinearity="relu", batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 1)
        with torch.no_grad():
            q, _ = torch.linalg.qr(torch.randn(HIDDEN, HIDDEN))
            self.rnn.get_parameter("weight_hh_l0").copy_(RADIUS * q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(SEED)
    x = torch.rand(N, SEQ_LEN, 1, generator=g)
    y = x.mean(dim=1)
    return x, y


class RnnAdapter(Adapter):
    """Sequence regression with an RNN, SGD, no gradient clipping."""

    def __init__(self) -> None:
        self.x, self.y = make_data()

    def build_model(self) -> torch.nn.Module:
        return seeded(0, Net)

    def build_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=LR)

    def batch(self, step: int) -> Batch:
        return indexed_batch(self.x, self.y, epoch_batch(step, BATCH, N, SEED))

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ((output - batch.targets) ** 2).mean(dim=1)


adapter = RnnAdapter()
