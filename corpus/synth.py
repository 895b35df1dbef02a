"""Synthetic data sets, tiny models and loss functions for the corpus runs.

Nothing is downloaded: every data set is drawn from a seeded ``torch.Generator``.

* ``blobs``: Gaussian-blob classification (optionally heavy-tailed sample norms, a rare
  class, label noise) for the 2-layer MLP;
* ``images``: 1x8x8 synthetic images (a smooth template per class + noise) for the CNN;
* ``sequences``: length-T sequences whose target is a weighted sum over time, for the GRU;
* ``regression``: linear targets with an anisotropic feature spectrum, for linear / MLP
  regression with MSE (the stability edge of SGD is then known: lr = 2 / lambda_max).

The loss functions include the numerically unsafe ones the causes inject (hand-written
BCE / cross-entropy taking ``log`` of a saturating probability, a softmax without the max
subtraction, a loss normalised by the count of a label that can be absent).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

Tensor = torch.Tensor


@dataclass
class Data:
    """A training set: inputs ``x``, targets ``y`` (class ids or regression values)."""

    x: Tensor
    y: Tensor
    task: str  # "cls" or "reg"
    n_classes: int
    aux: Tensor  # an auxiliary regression target per sample (used by the loss-weight cause)

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def _aux_target(x: Tensor) -> Tensor:
    return x.reshape(len(x), -1).sum(1, keepdim=True) / 4.0


def blobs(g: torch.Generator, n: int, d: int, k: int, sep: float, spread: float = 0.0,
          noise: float = 0.05, rare: float | None = None) -> Data:
    """Gaussian blobs; ``spread`` is the log-normal sigma of a per-sample norm factor
    (heavy tails: a few samples with large inputs); ``rare`` the frequency of class 0."""
    centers = torch.randn(k, d, generator=g) * sep
    if rare:
        probs = torch.full((k,), (1 - rare) / (k - 1))
        probs[0] = rare
        y = torch.multinomial(probs, n, replacement=True, generator=g)
    else:
        y = torch.randint(0, k, (n,), generator=g)
    x = centers[y] + torch.randn(n, d, generator=g)
    if spread:
        x = x * torch.exp(torch.randn(n, 1, generator=g) * spread)
    flip = torch.rand(n, generator=g) < noise
    y = torch.where(flip, torch.randint(0, k, (n,), generator=g), y)
    return Data(x, y, "cls", k, _aux_target(x))


def images(g: torch.Generator, n: int, k: int, amp: float = 1.0, noise: float = 0.8) -> Data:
    """1x8x8 images: a smooth random template per class (bilinear upsampled 3x3) + noise."""
    coarse = torch.randn(k, 1, 3, 3, generator=g)
    templates = F.interpolate(coarse, size=(8, 8), mode="bilinear", align_corners=True)
    y = torch.randint(0, k, (n,), generator=g)
    x = templates[y] * amp + torch.randn(n, 1, 8, 8, generator=g) * noise
    return Data(x, y, "cls", k, _aux_target(x))


def sequences(g: torch.Generator, n: int, t: int, d: int) -> Data:
    """Sequences (n, t, d); target: a fixed weighted sum over time and features."""
    x = torch.randn(n, t, d, generator=g)
    w = torch.randn(d, generator=g) * torch.linspace(0.5, 1.5, t)[:, None]
    y = (x * w).sum((1, 2))[:, None] / t ** 0.5
    return Data(x, y, "reg", 0, _aux_target(x))


def regression(g: torch.Generator, n: int, d: int, target_scale: float = 1.0) -> Data:
    """Linear targets over features with an anisotropic spectrum (scales 0.2 .. 2)."""
    x = torch.randn(n, d, generator=g) * torch.linspace(0.2, 2.0, d)
    w = torch.randn(d, 1, generator=g)
    y = (x @ w + 0.1 * torch.randn(n, 1, generator=g)) * target_scale
    return Data(x, y, "reg", 0, _aux_target(x))


# ---- models ------------------------------------------------------------------------


class Net(nn.Module):
    """A body producing features, a main head and an auxiliary regression head."""

    def __init__(self, body: nn.Module, features: int, out: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Linear(features, out)
        self.aux_head = nn.Linear(features, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return self.head(h), self.aux_head(h)


class _GRUBody(nn.Module):
    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        self.gru = nn.GRU(d, h, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.gru(x)[0][:, -1]


def make_model(kind: str, data: Data, hidden: int) -> Net:
    """``mlp`` (2-layer), ``cnn`` (two conv + pool), ``gru``, ``linreg``, ``mlp_reg``."""
    out = data.n_classes if data.task == "cls" else 1
    if kind == "mlp" or kind == "mlp_reg":
        d = data.x.shape[1]
        return Net(nn.Sequential(nn.Linear(d, hidden), nn.ReLU()), hidden, out)
    if kind == "cnn":
        c = max(2, hidden // 4)
        body = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        return Net(body, 2 * c * 4, out)
    if kind == "gru":
        return Net(_GRUBody(data.x.shape[2], hidden), hidden, out)
    if kind == "linreg":
        return Net(nn.Identity(), data.x.shape[1], out)
    raise ValueError(f"unknown model {kind!r}")


def reinit(model: nn.Module, std: float | None = None, dead_bias: float | None = None) -> None:
    """Bad initialisation (every weight ~ N(0, std)) or a dead ReLU layer (large negative bias)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            if std is not None:
                nn.init.normal_(module.weight, 0.0, std)
    if dead_bias is not None:
        first = next(m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
        nn.init.constant_(first.bias, -dead_bias)


# ---- losses --------------------------------------------------------------------------


def main_loss(kind: str, out: Tensor, y: Tensor, n_classes: int) -> Tensor:
    """The task loss, stable or deliberately unsafe (``kind`` names which)."""
    if kind == "ce":
        return F.cross_entropy(out, y)
    if kind == "mse":
        return F.mse_loss(out, y)
    if kind == "unsafe_bce":  # one-vs-rest BCE by hand: 0 * log(0) = nan once sigmoid saturates
        p = torch.sigmoid(out)
        onehot = F.one_hot(y, n_classes).float()
        return -(onehot * torch.log(p) + (1 - onehot) * torch.log(1 - p)).sum(1).mean()
    if kind == "unsafe_ce":  # -(y * log(p)).sum(): 0 * log(0) once a softmax output underflows
        p = F.softmax(out, 1)
        return -(F.one_hot(y, n_classes).float() * torch.log(p)).sum() / len(y)
    if kind == "naive_softmax":  # exp without subtracting the max: inf / inf = nan
        e = torch.exp(out)
        return -torch.log(e.gather(1, y[:, None]) / e.sum(1, keepdim=True)).mean()
    if kind == "class_normalised":  # divided by the count of class 0, which can be 0
        ce = F.cross_entropy(out, y, reduction="none")
        rare = y == 0
        return ce[~rare].mean() + ce[rare].sum() / rare.sum()
    raise ValueError(f"unknown loss {kind!r}")
