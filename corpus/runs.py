"""Real training runs of tiny PyTorch models on the CPU, recorded step by step.

A :class:`RunSpec` fixes everything (seed, data, model, optimiser, schedule, the injected
cause's knobs, restarts); :func:`train` runs it and returns a :class:`Trajectory`: for
every attempt (restart / re-queued job) the full per-step record -- step (1-based update
count), epoch, iteration in epoch, loss, loss terms, batch accuracy, grad_norm (total L2 norm before
clipping), lr, loss_scale and overflow skips when fp16 is simulated.

fp16 dynamic loss scaling is simulated in float32 the way ``torch.cuda.amp.GradScaler``
works: backward of ``loss * scale``, check the scaled gradients in float16 (any value
beyond 65504 or non-finite is an overflow), skip the step and halve the scale on
overflow, double it after ``growth_interval`` clean steps; the scale never goes below
``min_scale``.

A run stops at ``max_steps``, or ``tail`` steps after it first went non-finite (it keeps
computing and recording nan like a real framework would), or ``tail`` steps after the
loss scale reached its minimum with overflows persisting.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from . import synth

FP16_MAX = 65504.0


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run (the injected cause's knobs live in ``extra``)."""

    run_id: str
    seed: int
    cause: str
    model: str
    data: str
    loss: str
    lr: float
    batch_size: int
    n_train: int
    max_steps: int
    hidden: int = 32
    optimizer: str = "momentum"  # sgd | momentum | adam
    schedule: str = "constant"  # constant | warmup | step | warmup_step | cosine
    warmup: int = 0
    clip: float | None = None
    shuffle: bool = True
    guard: bool = False  # skip the optimiser step when the loss is non-finite
    fp16: dict | None = None  # init_scale, growth_interval, min_scale
    tail: int = 30
    restart: str | None = None  # resume_same | rerun | preempt | resume_reshuffle
    attempts: int = 1
    ckpt_every: int = 100
    extra: dict = field(default_factory=dict)

    @property
    def steps_per_epoch(self) -> int:
        return self.n_train // self.batch_size


@dataclass
class Attempt:
    """One attempt's per-step columns (lists, JSON-ready), plus how it began and ended."""

    index: int
    start: int  # first step of this attempt
    resumed_from: int | None
    rows: dict[str, list] = field(default_factory=dict)
    terms: dict[str, list] = field(default_factory=dict)
    end: str = "max_steps"

    def add(self, **values: Any) -> None:
        for key, value in values.items():
            self.rows.setdefault(key, []).append(value)

    def column(self, name: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in self.rows.get(name, [])], dtype=float)

    def __len__(self) -> int:
        return len(self.rows.get("step", []))


@dataclass
class Trajectory:
    """A run: its spec and its attempts."""

    spec: RunSpec
    attempts: list[Attempt]
    loss_weights: dict[str, float]

    @property
    def steps_per_epoch(self) -> int:
        return self.spec.steps_per_epoch

    def header(self) -> dict:
        return {"id": self.spec.run_id, "injected_cause": self.spec.cause, "model": self.spec.model,
                "seed": self.spec.seed, "steps_per_epoch": self.steps_per_epoch,
                "loss_weights": self.loss_weights, "spec": asdict(self.spec)}


# ---- the pieces ----------------------------------------------------------------------


def make_data(spec: RunSpec, g: torch.Generator) -> synth.Data:
    e = spec.extra
    if spec.data == "blobs":
        data = synth.blobs(g, spec.n_train, e.get("dim", 10), e.get("classes", 4), e.get("sep", 1.5),
                           e.get("spread", 0.0), e.get("label_noise", 0.05), e.get("rare"))
    elif spec.data == "images":
        data = synth.images(g, spec.n_train, e.get("classes", 4), e.get("amp", 1.0))
    elif spec.data == "sequences":
        data = synth.sequences(g, spec.n_train, e.get("seq_len", 10), e.get("dim", 4))
    elif spec.data == "regression":
        data = synth.regression(g, spec.n_train, e.get("dim", 16), e.get("target_scale", 1.0))
    else:
        raise ValueError(f"unknown data {spec.data!r}")
    if e.get("input_scale"):
        data.x = data.x * e["input_scale"]  # unnormalised inputs (raw 0-255 style)
    if e.get("corrupt_index") is not None:
        data.x = data.x.clone()
        data.x[e["corrupt_index"]] = float(e.get("corrupt_value", "nan"))
    return data


def lr_at(spec: RunSpec, step: int) -> float:
    """Learning rate of (1-based) ``step`` under the spec's schedule."""
    lr = spec.lr
    if spec.schedule in ("warmup", "warmup_step") and spec.warmup:
        lr *= min(1.0, step / spec.warmup)
    if spec.schedule in ("step", "warmup_step"):
        every = spec.extra.get("decay_every", max(1, spec.max_steps // 3))
        lr *= spec.extra.get("gamma", 0.1) ** (step // every)
    if spec.schedule == "cosine":
        lr *= 0.5 * (1 + math.cos(math.pi * min(step, spec.max_steps) / spec.max_steps))
    return lr


def make_optimizer(spec: RunSpec, params: Any) -> torch.optim.Optimizer:
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr)
    return torch.optim.SGD(params, lr=spec.lr, momentum=0.9 if spec.optimizer == "momentum" else 0.0)


def _finite(x: float) -> bool:
    return math.isfinite(x)


def _num(x: float) -> float:
    """Round to float32-ish precision for storage (7 significant digits); keeps nan/inf."""
    return float(f"{x:.7g}") if _finite(x) else x


class _Runner:
    """State of one run across attempts: data, model, optimiser, scaler, checkpoints."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        torch.manual_seed(spec.seed)
        self.data = make_data(spec, torch.Generator().manual_seed(spec.seed))
        self.model = synth.make_model(spec.model, self.data, spec.hidden)
        e = spec.extra
        if e.get("init_std") is not None or e.get("dead_bias") is not None:
            synth.reinit(self.model, e.get("init_std"), e.get("dead_bias"))
        self.opt = make_optimizer(spec, self.model.parameters())
        self.aux_weight = float(e.get("aux_weight", 0.0))
        self.scale = float(spec.fp16["init_scale"]) if spec.fp16 else 1.0
        self.good = 0
        self.ckpt: tuple[int, dict] | None = None
        self.order_seed = spec.seed
        self.orders: dict[int, torch.Tensor] = {}

    # data order: epoch permutations (or the identity when not shuffling)
    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        spe, b = self.spec.steps_per_epoch, self.spec.batch_size
        epoch, it = divmod(step - 1, spe)
        if epoch not in self.orders:
            if self.spec.shuffle:
                gen = torch.Generator().manual_seed(self.order_seed * 1000 + epoch)
                self.orders[epoch] = torch.randperm(self.data.n, generator=gen)
            else:
                self.orders[epoch] = torch.arange(self.data.n)
        idx = self.orders[epoch][it * b:(it + 1) * b]
        x, y = self.data.x[idx], self.data.y[idx]
        if step in self.spec.extra.get("spike_steps", ()):  # a one-off batch of outliers / wrong labels
            x = x * self.spec.extra.get("spike_factor", 30.0)
            if self.data.task == "cls":
                y = (y + 1) % self.data.n_classes
        return x, y, self.data.aux[idx]

    def save(self, step: int) -> None:
        self.ckpt = (step, copy.deepcopy({"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                                           "scale": self.scale, "good": self.good}))

    def load(self) -> int:
        if self.ckpt is None:  # no checkpoint yet: start over
            torch.manual_seed(self.spec.seed)
            self.__init__(self.spec)  # type: ignore[misc]
            return 0
        step, state = self.ckpt
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.scale, self.good = state["scale"], state["good"]
        return step

    def step(self, step: int) -> dict:
        """One optimiser iteration; returns the record of this step."""
        spec = self.spec
        lr = lr_at(spec, step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        x, y, aux = self.batch(step)
        out, aux_out = self.model(x)
        main = synth.main_loss(spec.loss, out, y, self.data.n_classes)
        terms = {"main": main}
        loss = main
        if self.aux_weight:
            terms["aux"] = torch.nn.functional.mse_loss(aux_out, aux)
            loss = main + self.aux_weight * terms["aux"]
        self.opt.zero_grad(set_to_none=False)
        scale = self.scale
        (loss * scale if spec.fp16 else loss).backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        overflow = False
        if spec.fp16:
            overflow = any(not bool(torch.isfinite(p.grad.half()).all()) for p in params)
            for p in params:
                p.grad.div_(scale)
        norm = float(torch.linalg.vector_norm(torch.stack([p.grad.detach().norm() for p in params])))
        if overflow:
            norm = math.inf if _finite(norm) else norm
        loss_v = float(loss.detach())
        skip = overflow or (spec.guard and not _finite(loss_v))
        if not skip:
            if spec.clip:
                torch.nn.utils.clip_grad_norm_(params, spec.clip)
            self.opt.step()
        record = {"step": step, "loss": _num(loss_v), "grad_norm": _num(norm), "lr": _num(lr),
                  "acc": round(float((out.argmax(1) == y).float().mean()), 4) if self.data.task == "cls" else None,
                  "terms": {k: _num(float(v.detach())) for k, v in terms.items()} if self.aux_weight else None}
        if spec.fp16:
            record.update(scale=scale, overflow=int(overflow))
            self._update_scale(overflow)
        return record

    def _update_scale(self, overflow: bool) -> None:
        fp = self.spec.fp16 or {}
        if overflow:
            self.scale = max(self.scale / 2.0, float(fp.get("min_scale", 1.0)))
            self.good = 0
        else:
            self.good += 1
            if self.good >= int(fp.get("growth_interval", 2000)):
                self.scale *= 2.0
                self.good = 0


def _run_attempt(runner: _Runner, attempt: Attempt, start: int, stop_at: int | None) -> None:
    """Steps ``start`` .. until max_steps, a preemption at ``stop_at``, or the tail after failure."""
    spec = runner.spec
    spe = spec.steps_per_epoch
    failed_at = min_hit = None
    nan_streak = 0
    for step in range(start, spec.max_steps + 1):
        rec = runner.step(step)
        terms = rec.pop("terms")
        epoch, it = divmod(step - 1, spe)
        attempt.add(**rec, epoch=epoch, it=it)
        if terms:
            for key, value in terms.items():
                attempt.terms.setdefault(key, []).append(value)
        bad = not _finite(rec["loss"]) or (not _finite(rec["grad_norm"]) and not rec.get("overflow"))
        nan_streak = nan_streak + 1 if bad else 0
        continues = spec.guard or spec.fp16
        if bad and failed_at is None and (not continues or nan_streak >= 3):
            failed_at = step
        if spec.fp16 and rec.get("overflow") and rec["scale"] <= float(spec.fp16.get("min_scale", 1.0)):
            min_hit = step if min_hit is None else min_hit
        elif spec.fp16 and not rec.get("overflow"):
            min_hit = None
        if step % spec.ckpt_every == 0 and failed_at is None and _finite(rec["loss"]):
            runner.save(step)
        if failed_at is not None and step >= failed_at + spec.tail:
            attempt.end = "nonfinite"
            return
        if min_hit is not None and step >= min_hit + max(spec.tail, 25):
            attempt.end = "min_scale"
            return
        if stop_at is not None and step >= stop_at:
            attempt.end = "preempted"
            return
    attempt.end = "max_steps"


def train(spec: RunSpec) -> Trajectory:
    """Run every attempt of ``spec`` and return the recorded trajectory."""
    torch.set_num_threads(1)
    runner = _Runner(spec)
    attempts: list[Attempt] = []
    start, resumed = 1, None
    rng = np.random.default_rng(spec.seed + 7)
    for index in range(spec.attempts):
        attempt = Attempt(index, start, resumed)
        stop_at = None
        if spec.restart == "preempt" and index < spec.attempts - 1:
            stop_at = int(rng.integers(spec.max_steps // 5, max(spec.max_steps // 5 + 1, spec.max_steps * 4 // 5)))
        _run_attempt(runner, attempt, start, stop_at)
        attempts.append(attempt)
        if attempt.end == "max_steps" or index == spec.attempts - 1:
            break
        if spec.restart == "rerun":
            runner = _Runner(spec)
            start, resumed = 1, None
        else:
            resumed = runner.load()
            start = resumed + 1
            if spec.restart == "resume_reshuffle":  # a re-queued job draws a new data order
                runner.order_seed = spec.seed + 101 * (index + 1)
                runner.orders.clear()
    weights = {"main": 1.0, "aux": runner.aux_weight} if runner.aux_weight else {}
    return Trajectory(spec, attempts, weights)
