"""Hand-written PyTorch loops: the ImageNet example and the free-form prints everyone copies.

* ``imagenet``: ``Epoch: [e][ i/T]\\tTime ... \\tLoss 6.9194e+00 (6.9194e+00)\\tAcc@1 ...``
  every ``print_freq`` batches (value of this batch, running epoch average), 0-based epoch
  and batch, so the step convention is ``e * T + i``;
* ``free``: one of a few common templates (``epoch 1 iter 200 loss 0.52 lr 0.01``, nanoGPT's
  ``iter 199: loss 3.25, time 34.12ms``, ``Step 200/3000 | loss ... | grad_norm ...``,
  Python logging ``step=200 loss=...``, a printed tensor ``loss tensor(0.5213, grad_fn=...)``,
  the MNIST example ``Train Epoch: 1 [6400/60000 (11%)]\\tLoss: 0.52`` whose position is
  in samples); the value is the step's loss or the mean since the last print.

Plain loops keep printing nan. With apex mixed precision, overflows print ``Gradient
overflow.  Skipping step, loss scaler 0 reducing loss scale to X``.
"""

from __future__ import annotations

import math

import numpy as np

from ..render import Clock, Cols, Line, Printer, shown, window_point
from ..runs import Trajectory

TEMPLATES = ("epoch", "bracket", "nanogpt", "pipes", "logging", "tensor", "mnist")


def _tensor(v: float, fn: str) -> str:
    return f"tensor({v:.4f}, grad_fn=<{fn}>)" if math.isfinite(v) else f"tensor({v}, grad_fn=<{fn}>)"


class PyTorch(Printer):
    name = "pytorch"
    fp16 = True

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        variant = str(rng.choice(["imagenet", "free", "free"]))
        weights = np.array([3, 2, 2, 2, 2, 0.7, 1.0])
        return {"variant": variant, "template": str(rng.choice(TEMPLATES, p=weights / weights.sum())),
                "reduce": str(rng.choice(["last", "mean"])), "e_fmt": bool(rng.random() < 0.6),
                "grad": bool(rng.random() < 0.5)}

    def printed_step(self, tstep: int, traj: Trajectory, opts: dict) -> int:
        spe, b = traj.steps_per_epoch, traj.spec.batch_size
        e, it = divmod(tstep - 1, spe)
        if opts["variant"] == "imagenet" or opts["template"] == "nanogpt":
            return tstep - 1
        if opts["template"] == "mnist":
            return e * traj.spec.n_train + it * b
        return tstep

    def _due(self, s: int, it: int, interval: int, opts: dict) -> bool:
        if opts["variant"] == "imagenet" or opts["template"] == "mnist":
            return it % interval == 0
        if opts["template"] == "nanogpt":
            return (s - 1) % interval == 0
        return s % interval == 0

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        clock = Clock(rng)
        lines: list[Line] = []
        spe = traj.steps_per_epoch
        for att in traj.attempts:
            if att.index:
                clock.gap()
            if att.resumed_from:
                lines.append(Line("=> loading checkpoint 'checkpoint.pth.tar'", attempt=att.index))
                lines.append(Line(f"=> loaded checkpoint 'checkpoint.pth.tar' (epoch {(att.start - 1) // spe}, "
                                  f"step {att.start - 1})", attempt=att.index))
            if not att.index and opts["variant"] == "free" and opts["template"] == "logging":
                lines.append(Line(f"{clock.now:%Y-%m-%d %H:%M:%S},{clock.now.microsecond // 1000:03d} - INFO - "
                                  f"__main__ - Training with lr={traj.spec.lr:g}, batch_size={traj.spec.batch_size}"))
            c = Cols(att)
            lo = 0
            run_sum, run_acc, run_n = 0.0, 0.0, 0
            for i in range(c.n):
                s, e, it = int(c.step[i]), int(c.epoch[i]), int(c.it[i])
                clock.advance()
                if it == 0:
                    run_sum, run_acc, run_n = 0.0, 0.0, 0
                run_sum += float(c.loss[i])
                run_acc += float(c.acc[i]) if c.acc is not None else 0.0
                run_n += 1
                if c.overflow[i] and c.scale is not None:
                    lines.append(Line(f"Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to "
                                      f"{max(float(c.scale[i]) / 2, traj.spec.fp16['min_scale']):.1f}",
                                      bad="overflow", tstep=s, attempt=att.index))
                if not self._due(s, it, interval, opts):
                    continue
                p = window_point(c, lo, i, opts["reduce"])
                lo = i + 1
                kw = dict(tstep=s, attempt=att.index, exact=True)
                if opts["variant"] == "imagenet":
                    lines.append(self._imagenet(c, i, e, it, spe, run_sum / run_n, run_acc / run_n, clock, opts, kw))
                else:
                    lines.append(self._free(traj, p, s, e, it, clock, opts, kw))
        return lines

    def _imagenet(self, c: Cols, i: int, e: int, it: int, spe: int, avg: float, acc: float, clock: Clock,
                  opts: dict, kw: dict) -> Line:
        v = float(c.loss[i])
        lf = "{:.4e}" if opts["e_fmt"] else "{:.4f}"
        w = len(str(spe))
        text = (f"Epoch: [{e}][{it:>{w}}/{spe}]\tTime {clock.sps:6.3f} ({clock.sps:6.3f})\t"
                f"Data {clock.sps * 0.1:6.3f} ({clock.sps * 0.1:6.3f})\tLoss {lf.format(v)} ({lf.format(avg)})")
        if c.acc is not None:
            text += f"\tAcc@1 {100 * float(c.acc[i]):6.2f} ({100 * acc:6.2f})"
        bad = "" if math.isfinite(v) and math.isfinite(avg) else "loss"
        return Line(text, step=e * spe + it, bad=bad, value=shown(v, avg), **kw)

    def _free(self, traj: Trajectory, p, s: int, e: int, it: int, clock: Clock, opts: dict, kw: dict) -> Line:  # noqa: ANN001
        t, x, lr, g = opts["template"], p.loss, p.lr, p.grad
        extra = f" grad_norm {g:.3f}" if opts["grad"] else ""
        if p.scale is not None:
            extra += f" scale {p.scale:g}"
        bad = "" if math.isfinite(x) else "loss"
        if not bad and opts["grad"] and not math.isfinite(g):
            bad = "grad"
        step = s
        if t == "epoch":
            text = f"epoch {e} iter {s} loss {x:.4f} lr {lr:.6f}{extra}"
        elif t == "bracket":
            text = f"[epoch {e + 1}, step {s:5d}] loss: {x:.3f}"
            bad = "" if math.isfinite(x) else "loss"
        elif t == "nanogpt":
            step = s - 1
            text = f"iter {s - 1}: loss {x:.4f}, time {1000 * clock.sps:.2f}ms, mfu {rng_mfu(s):.2f}%"
            bad = "" if math.isfinite(x) else "loss"
        elif t == "pipes":
            text = f"Step {s}/{traj.spec.max_steps} | loss {x:.4f} | lr {lr:.2e} | grad_norm {g:.3f}"
            if p.scale is not None:
                text += f" | loss_scale {p.scale:g}"
            bad = "loss" if not math.isfinite(x) else ("grad" if not math.isfinite(g) else "")
        elif t == "logging":
            now = clock.now
            text = (f"{now:%Y-%m-%d %H:%M:%S},{now.microsecond // 1000:03d} - INFO - __main__ - step={s} "
                    f"loss={x:.4f} grad_norm={g:.4f} lr={lr:.3e}")
            bad = "loss" if not math.isfinite(x) else ("grad" if not math.isfinite(g) else "")
        elif t == "tensor":
            fn = "NllLossBackward0" if traj.spec.loss != "mse" else "MseLossBackward0"
            text = f"epoch {e} step {s} loss {_tensor(x, fn)}"
            bad = "" if math.isfinite(x) else "loss"
        else:  # mnist
            n, b = traj.spec.n_train, traj.spec.batch_size
            step = e * n + it * b
            text = f"Train Epoch: {e + 1} [{it * b}/{n} ({100.0 * it / traj.steps_per_epoch:.0f}%)]\tLoss: {x:.6f}"
            bad = "" if math.isfinite(x) else "loss"
        return Line(text, step=step, bad=bad, value=x, **kw)


def rng_mfu(s: int) -> float:
    return 30.0 + (s * 7919 % 1000) / 100.0
