"""PyTorch Lightning progress bars.

``Epoch e:  45%|████▌     | 450/1000 [00:10<00:12, 44.10it/s, loss=0.158, v_num=3,
train_loss=0.149]``: one bar per epoch (0-based), carriage-return updates every
``refresh_rate`` batches (in Colab every update is its own line and the bar has no
glyphs); ``loss`` is the running mean of the last 20 steps, ``train_loss`` the value
logged with ``prog_bar=True``. Lightning keeps training on nan. The step convention is
``e * T + i`` (i the 1-based batch count).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..render import Clock, Cols, Line, Printer, mmss, shown
from ..runs import Trajectory
from .hf_trainer import tqdm_bar


def g3(v: float) -> str:
    """tqdm's ``format_num``: the shorter of ``{:.3g}`` and ``str``."""
    a = f"{v:.3g}".replace("+0", "+").replace("-0", "-")
    b = str(v)
    return a if len(a) <= len(b) else b


class Lightning(Printer):
    name = "lightning"
    intervals = (1, 5, 10, 20, 50)

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        return {"colab": bool(rng.random() < 0.3), "train_loss": bool(rng.random() < 0.6),
                "v_num": int(rng.integers(0, 12))}

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        clock = Clock(rng)
        spe = traj.steps_per_epoch
        lines: list[Line] = []
        for att in traj.attempts:
            if att.index:
                clock.gap()
            if att.resumed_from:
                path = f"lightning_logs/version_{opts['v_num']}/checkpoints/epoch={(att.start - 1) // spe}-step=" \
                       f"{att.resumed_from}.ckpt"
                lines.append(Line(f"Restoring states from the checkpoint path at {path}", attempt=att.index))
                lines.append(Line(f"Restored all states from the checkpoint file at {path}", attempt=att.index))
            if not att.resumed_from:
                lines.extend(Line(t, attempt=att.index) for t in _header(traj))
            c = Cols(att)
            window: deque[float] = deque(maxlen=20)
            t0 = clock.elapsed()
            for i in range(c.n):
                s, e, it = int(c.step[i]), int(c.epoch[i]), int(c.it[i])
                clock.advance()
                if it == 0:
                    t0 = clock.elapsed()
                window.append(float(c.loss[i]))
                if (it + 1) % interval and it != spe - 1:
                    continue
                run = float(np.mean(window))
                post = f"loss={g3(run)}, v_num={opts['v_num']}"
                bad = "" if math.isfinite(run) else "loss"
                value = run
                if opts["train_loss"]:  # the step's own value: what the reader takes for the loss
                    value = shown(float(c.loss[i]), run)
                    post += f", train_loss={g3(float(c.loss[i]))}"
                    bad = bad or ("" if math.isfinite(float(c.loss[i])) else "loss")
                bar = tqdm_bar(it + 1, spe, clock.elapsed() - t0, ascii_only=opts["colab"])
                text = f"Epoch {e}: {bar[:-1]}, {post}]"
                end = "\n" if opts["colab"] or it == spe - 1 else "\r"
                lines.append(Line(text, step=s, exact=True, bad=bad, end=end, rankable=False, tstep=s,
                                  attempt=att.index, value=value))
            if lines and lines[-1].end == "\r":
                lines[-1].end = "\n"
        return lines


def _header(traj: Trajectory) -> list[str]:
    params = traj.spec.hidden * 40
    size = f"{params / 1000:.1f} K" if params >= 1000 else f"{params}  "
    return ["GPU available: True (cuda), used: True", "TPU available: False, using: 0 TPU cores",
            "IPU available: False, using: 0 IPUs", "HPU available: False, using: 0 HPUs",
            "LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]", "",
            "  | Name  | Type       | Params", "-------------------------------------",
            f"0 | model | Sequential | {size}", "-------------------------------------",
            f"{size:<10}Trainable params", "0         Non-trainable params", f"{size:<10}Total params",
            f"{params * 4 / 1e6:.3f}     Total estimated model params size (MB)"]


__all__ = ["Lightning", "mmss"]
