"""What every framework run shares: generated data, tiny models, the injected causes, the trace.

Each framework module (``hf``, ``loops``, ``lightning_runs``, ``keras_runs``) is run as a
*subprocess* by :mod:`corpus.frameworks.build` with ``--spec spec.json``; it trains for
real through the framework and, from inside the training (a callback, a loss wrapper or
the loop itself), appends the loss the code actually computed to ``trace.jsonl`` -- one
row per optimizer step: ``attempt``, ``step`` (1-based global step, the convention the
log prints), ``loss``, ``grad_norm``, ``scale``, ``overflow``. The labels are measured on
that trace, never on the spec's cause.

Only torch and numpy are imported here (Keras runs import torch too: KERAS_BACKEND=torch;
the TensorFlow venv installs torch as well, for this module).
Nothing is downloaded: data are generated from the seed.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import torch
from torch import nn


def load_spec() -> dict:
    """The spec file named by ``--spec`` (the only command-line argument the workers take)."""
    path = sys.argv[sys.argv.index("--spec") + 1]
    with open(path) as f:
        return json.load(f)


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)


# ---------------------------------------------------------------- data

def make_data(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) for the spec's task, with the cause's input corruption applied.

    ``blobs``: Gaussian blobs, float features, integer classes; ``binary``: two blobs for
    a hand-written BCE; ``regress``: linear regression targets; ``seq``: sequences whose
    class is the sign of a running sum (for the GRU); ``tokens``: token ids for the
    transformer models (class = a token's presence).
    """
    rng = np.random.default_rng(spec["seed"])
    n, d, k, task = spec["n_samples"], spec.get("dim", 16), spec.get("classes", 4), spec["task"]
    if task in ("blobs", "binary"):
        k = 2 if task == "binary" else k
        centers = rng.normal(0, spec.get("sep", 2.0), size=(k, d))
        y = rng.integers(0, k, size=n)
        x = centers[y] + rng.normal(0, 1.0, size=(n, d))
        if spec.get("label_noise"):
            flip = rng.random(n) < spec["label_noise"]
            y = np.where(flip, rng.integers(0, k, size=n), y)
    elif task == "regress":
        scales = np.linspace(0.3, 1.0, d)
        x = rng.normal(0, 1.0, size=(n, d)) * scales
        w = rng.normal(0, 1.0, size=d)
        y = x @ w + 0.1 * rng.normal(size=n)
    elif task == "seq":
        x = rng.normal(0, 1.0, size=(n, spec.get("seq_len", 12), d))
        y = (x[:, :, 0].sum(1) > 0).astype(np.int64)
    elif task == "tokens":
        v = spec.get("vocab", 64)
        x = rng.integers(2, v, size=(n, spec.get("seq_len", 16)))
        y = (x == 7).any(1).astype(np.int64)
        return x.astype(np.int64), y
    else:
        raise ValueError(task)
    x = x.astype(np.float32) * float(spec.get("input_scale", 1.0))
    if spec.get("corrupt_index") is not None:
        x[spec["corrupt_index"]].flat[0] = np.float32(spec.get("corrupt_value", "nan"))
    y = y.astype(np.float32 if task in ("regress", "binary") else np.int64)
    return x, y


def resolve_lr(spec: dict, x: np.ndarray) -> float:
    """The spec's lr; ``lr_edge_factor`` x the full-batch SGD stability edge for MSE regression.

    For ``mean((Xw + b - y)^2)`` the Hessian is ``2/n [X 1]^T [X 1]``; SGD diverges past
    ``lr = 2 / lambda_max``, slowly when only a little past it (geometric growth).
    """
    if spec.get("lr_edge_factor"):
        xa = np.c_[x.reshape(len(x), -1), np.ones(len(x))].astype(np.float64)
        lam = float(np.linalg.eigvalsh(2.0 / len(x) * xa.T @ xa).max())
        spec["lr"] = round(spec["lr_edge_factor"] * 2.0 / lam, 6)
    return spec["lr"]


# ---------------------------------------------------------------- models

class MLP(nn.Module):
    def __init__(self, d: int, out: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, out))

    def forward(self, x):
        return self.net(x)


class GRUNet(nn.Module):
    def __init__(self, d: int, hidden: int = 32):
        super().__init__()
        self.rnn = nn.GRU(d, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def make_model(spec: dict) -> nn.Module:
    d, task = spec.get("dim", 16), spec["task"]
    if task == "seq":
        m = GRUNet(d)
    elif task == "regress":
        m = nn.Linear(d, 1)
    else:
        m = MLP(d, 1 if task == "binary" else spec.get("classes", 4), spec.get("hidden", 32))
    init_model(m, spec)
    return m


def init_model(m: nn.Module, spec: dict) -> None:
    """The bad-init cause: every weight from N(0, init_std)."""
    if spec.get("init_std"):
        with torch.no_grad():
            for p in m.parameters():
                if p.dim() > 1:
                    p.normal_(0.0, spec["init_std"])


# ---------------------------------------------------------------- losses

def loss_fn(spec: dict, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The run's loss; the unsafe variants are what people write by hand.

    ``unsafe_bce``: ``-(y log p + (1 - y) log(1 - p))`` with ``p = sigmoid(z)``: once p
    rounds to 1.0, ``0 * log(0)`` is nan. ``count_norm``: cross-entropy of a rare class
    divided by how many of it the batch holds (0 / 0 when none).
    """
    kind = spec.get("loss", "ce")
    if kind == "mse":
        return ((out.squeeze(-1) - y) ** 2).mean()
    if kind == "unsafe_bce":
        p = torch.sigmoid(out.squeeze(-1).float())
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    if kind == "count_norm":
        per = nn.functional.cross_entropy(out.float(), y, reduction="none")
        rare = (y == 0).float()
        return (per * (1 - rare)).mean() + (per * rare).sum() / rare.sum()
    return nn.functional.cross_entropy(out.float(), y)


def make_optimizer(spec: dict, params):
    if spec.get("optimizer", "sgd") == "adam":
        return torch.optim.Adam(params, lr=spec["lr"])
    return torch.optim.SGD(params, lr=spec["lr"], momentum=spec.get("momentum", 0.0))


def grad_norm(params) -> float:
    gs = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    return float(torch.stack(gs).norm()) if gs else float("nan")


# ---------------------------------------------------------------- trace

class Trace:
    """Appends one JSON row per optimizer step to ``<workdir>/trace.jsonl``."""

    def __init__(self, spec: dict):
        self.path = os.path.join(spec["workdir"], "trace.jsonl")
        self.attempt = spec.get("attempt", 0)
        self.f = open(self.path, "a")

    def step(self, step: int, loss: float, grad_norm: float | None = None, scale: float | None = None,
             overflow: bool = False) -> None:
        row = {"attempt": self.attempt, "step": int(step), "loss": _num(loss), "grad_norm": _num(grad_norm),
               "scale": _num(scale), "overflow": bool(overflow)}
        self.f.write(json.dumps(row) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def _num(v):
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else repr(v)  # "nan" / "inf" / "-inf": strict JSON


def finite(v: float) -> bool:
    return v is not None and math.isfinite(float(v))
