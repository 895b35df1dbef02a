"""Megatron-LM and Megatron-DeepSpeed iteration lines.

`` iteration      200/  500000 | consumed samples: ... | elapsed time per iteration (ms): ...
| learning rate: 1.500E-04 | global batch size: 8 | lm loss: 7.300000E+00 | loss scale:
65536.0 | grad norm: 1.234 | number of skipped iterations:   0 | number of nan iterations:
0 |`` every ``log_interval`` iterations. The ``lm loss`` is the mean over the interval's
non-skipped iterations and is printed only ``if avg > 0.0`` -- a nan average fails that
test, so a nan step *omits* the field (the N203 case); ``inf`` prints as ``INF``. Skipped
iterations are fp16 overflows (``nan iterations`` those whose loss was nan); ``grad norm``
is the last iteration's (omitted when it was skipped; never printed by the DeepSpeed
variant, which adds consumed tokens, seqlen and throughput fields).
"""

from __future__ import annotations

import math

import numpy as np

from ..render import Clock, Cols, Line, Printer, window_point
from ..runs import Trajectory

_ARGS = ("adam_beta1", "clip_grad", "fp16", "bf16", "global_batch_size", "initial_loss_scale", "log_interval",
         "lr", "lr_decay_style", "lr_warmup_iters", "min_loss_scale", "micro_batch_size", "seed", "train_iters")


class Megatron(Printer):
    name = "megatron"
    fp16 = True
    intervals = (1, 5, 10, 20, 50, 100)

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        return {"variant": str(rng.choice(["lm", "lm", "ds"])), "seqlen": int(rng.choice([1024, 2048, 4096]))}

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        clock = Clock(rng)
        spec = traj.spec
        lines: list[Line] = []
        for att in traj.attempts:
            if att.index:
                clock.gap()
            lines.extend(Line(t, attempt=att.index) for t in _header(traj, interval))
            if att.resumed_from:
                lines.append(Line(f" loading checkpoint from checkpoints at iteration {att.resumed_from}",
                                  attempt=att.index))
                lines.append(Line(f" successfully loaded checkpoint from checkpoints at iteration {att.resumed_from}",
                                  attempt=att.index))
            lines.append(Line("training ...", attempt=att.index))
            c = Cols(att)
            lo = 0
            for i in range(c.n):
                s = int(c.step[i])
                clock.advance()
                if s % interval == 0:
                    p = window_point(c, lo, i, "mean", skip_overflow=True)
                    lo = i + 1
                    lines.append(self._line(p, c, i, s, spec, opts, clock, interval, att.index))
                if s % spec.ckpt_every == 0:
                    lines.append(Line(f"saving checkpoint at iteration {s:>7} to checkpoints", step=s, exact=True,
                                      attempt=att.index))
                    lines.append(Line(f"  successfully saved checkpoint at iteration {s:>7} to checkpoints",
                                      attempt=att.index))
        return lines

    def _line(self, p, c: Cols, i: int, s: int, spec, opts: dict, clock: Clock, interval: int,  # noqa: ANN001
              attempt: int) -> Line:
        b = spec.batch_size
        ds = opts["variant"] == "ds"
        f = [f" iteration {s:>8}/{spec.max_steps:>8}", f" consumed samples: {s * b:>12}"]
        if ds:
            f.append(f" consumed tokens: {s * b * opts['seqlen']:>12}")
        f += [f" elapsed time per iteration (ms): {1000 * clock.sps:.1f}", f" learning rate: {p.lr:.3E}",
              f" global batch size: {b:>5}"]
        hidden = False
        bad = ""
        value = None
        if p.loss > 0.0:  # Megatron: ``if avg > 0.0`` -- nan (and 0) averages are not printed
            f.append(f" lm loss: {p.loss:.6E}")
            bad = "" if math.isfinite(p.loss) else "loss"
            value = p.loss
        elif p.first_bad is not None:  # a non-finite loss in the window, and no field shows it
            hidden = True
        scale = p.scale if p.scale is not None else 1.0
        f.append(f" loss scale: {scale:.1f}")
        if ds:
            f.append(f" actual seqlen: {opts['seqlen']:>5}")
        elif not c.overflow[i]:
            f.append(f" grad norm: {p.grad:.3f}")
            if not math.isfinite(p.grad) and not bad:
                bad = "grad"
        f += [f" number of skipped iterations: {p.skipped:>3}", f" number of nan iterations: {p.nan_skipped:>3}"]
        if p.skipped and not bad:
            bad = "overflow"
        if ds:
            f += [f" samples per second: {b / clock.sps:.3f}",
                  f" tokens per gpu per second (tgs): {b * opts['seqlen'] / clock.sps:.3f}", " TFLOPs: 127.00"]
        return Line("".join(x + " |" for x in f), step=s, exact=True, bad=bad, hidden=hidden, tstep=s, attempt=attempt,
                    value=value)


def _header(traj: Trajectory, interval: int) -> list[str]:
    spec = traj.spec
    fp = spec.fp16 or {}
    values = {"adam_beta1": 0.9, "clip_grad": spec.clip or 0.0, "fp16": bool(fp), "bf16": not fp,
              "global_batch_size": spec.batch_size, "initial_loss_scale": fp.get("init_scale", 4294967296),
              "log_interval": interval, "lr": spec.lr, "lr_decay_style": "cosine" if spec.schedule == "cosine"
              else "constant", "lr_warmup_iters": spec.warmup if "warmup" in spec.schedule else 0,
              "min_loss_scale": fp.get("min_scale", 1.0), "micro_batch_size": spec.batch_size,
              "seed": spec.seed % 10000, "train_iters": spec.max_steps}
    out = ["using world size: 1, data-parallel-size: 1, tensor-model-parallel size: 1, "
           "pipeline-model-parallel size: 1 ", "------------------------ arguments ------------------------"]
    out += [f"  {k} {'.' * (48 - len(k))} {values[k]}" for k in _ARGS]
    out += ["-------------------- end of arguments ---------------------", "> building GPT2BPETokenizer tokenizer ...",
            "> initializing torch distributed ...", "done with setup ..."]
    return out
