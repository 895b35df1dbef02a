"""OpenMMLab logs (held-out format): mmcv 1.x and mmengine.

* mmcv: ``2020-10-13 22:51:17,824 - mmdet - INFO - Epoch [5][2550/4015]\\tlr: 2.000e-02,
  eta: 3:18:45, time: 0.558, data_time: 0.007, memory: 3862, loss_cls: 0.1394, loss:
  0.6581, grad_norm: 8.1`` every ``interval`` iterations, values averaged over the interval
  (``grad_norm`` only with ``grad_clip``; the epoch's last partial interval is logged only
  with ``ignore_last=False``);
* mmengine: ``2023/01/01 10:00:00 - mmengine - INFO - Epoch(train)  [1][240/735]  lr:
  2.0000e-02  eta: 1:00:00  time: 0.5000  data_time: 0.0100  memory: 1234  grad_norm: 8.1000
  loss: 1.2031  loss_cls: 1.2031``.

Both keep training on nan. Epochs are 1-based: the step is ``(e - 1) * T + i``.
"""

from __future__ import annotations

import math

import numpy as np

from ..render import Clock, Cols, Line, Printer, hms, shown, window_point
from ..runs import Trajectory


def _terms(p, traj: Trajectory) -> list[tuple[str, float]]:  # noqa: ANN001
    if p.terms:
        return [(f"loss_{k}" if k != "main" else ("loss_cls" if traj.spec.loss != "mse" else "loss_reg"),
                 v * traj.loss_weights.get(k, 1.0)) for k, v in p.terms.items()]
    return [("loss_cls" if traj.spec.loss != "mse" else "loss_reg", p.loss)]


class MMCV(Printer):
    name = "mmcv"
    heldout = True
    intervals = (1, 5, 10, 20, 50, 100)

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        return {"engine": bool(rng.random() < 0.4), "memory": int(rng.integers(800, 12000)),
                "ignore_last": bool(rng.random() < 0.7)}

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        clock = Clock(rng)
        spec = traj.spec
        spe = traj.steps_per_epoch
        epochs = -(-spec.max_steps // spe)
        lines: list[Line] = []
        engine = opts["engine"]

        def stamp() -> str:
            n = clock.now
            return (f"{n:%Y/%m/%d %H:%M:%S} - mmengine - INFO - " if engine
                    else f"{n:%Y-%m-%d %H:%M:%S},{n.microsecond // 1000:03d} - mmdet - INFO - ")

        for att in traj.attempts:
            if att.index:
                clock.gap()
            if att.resumed_from:
                lines.append(Line(stamp() + "load checkpoint from local path: work_dirs/exp/latest.pth",
                                  attempt=att.index))
                lines.append(Line(stamp() + (f"resumed epoch: {(att.start - 1) // spe}, iter: {att.resumed_from}"
                                             if engine else f"resumed epoch {(att.start - 1) // spe}, iter "
                                             f"{att.resumed_from}"), attempt=att.index))
            if not att.resumed_from:
                lines.append(Line(stamp() + "Config:"))
                lines.extend(Line(t) for t in _config(traj))
                lines.append(Line(stamp() + "Start running, host: user@node12, work_dir: /work_dirs/exp"))
                lines.append(Line(stamp() + f"workflow: [('train', 1)], max: {epochs} epochs"))
            c = Cols(att)
            lo = 0
            for i in range(c.n):
                s, e, it = int(c.step[i]), int(c.epoch[i]), int(c.it[i])
                clock.advance()
                if (it + 1) % interval and (it != spe - 1 or opts.get("ignore_last", True)):
                    continue  # LoggerHook(ignore_last=True) skips the epoch's last partial interval
                p = window_point(c, lo, i)
                lo = i + 1
                eta = hms(clock.sps * (spec.max_steps - s))
                vals = [(k, v) for k, v in _terms(p, traj)] + [("loss", p.loss)]
                if engine:
                    w = len(str(spe))
                    text = (f"Epoch(train)  [{e + 1}][{it + 1:>{w}}/{spe}]  lr: {p.lr:.4e}  eta: {eta}  "
                            f"time: {clock.sps:.4f}  data_time: {clock.sps * 0.05:.4f}  memory: {opts['memory']}  "
                            + (f"grad_norm: {p.grad:.4f}  " if spec.clip else "")
                            + "  ".join(f"{k}: {v:.4f}" for k, v in [vals[-1]] + vals[:-1]))
                else:
                    text = (f"Epoch [{e + 1}][{it + 1}/{spe}]\tlr: {p.lr:.3e}, eta: {eta}, time: {clock.sps:.3f}, "
                            f"data_time: {clock.sps * 0.05:.3f}, memory: {opts['memory']}, "
                            + ", ".join(f"{k}: {v:.4f}" for k, v in vals)
                            + (f", grad_norm: {p.grad:.4f}" if spec.clip else ""))
                bad = "loss" if not all(math.isfinite(v) for _, v in vals) else (
                    "grad" if spec.clip and not math.isfinite(p.grad) else "")
                lines.append(Line(stamp() + text, step=s, exact=True, bad=bad, tstep=s, attempt=att.index,
                                  value=shown(p.loss, *(v for _, v in vals))))
        return lines


def _config(traj: Trajectory) -> list[str]:
    spec = traj.spec
    kind = "Adam" if spec.optimizer == "adam" else "SGD"
    mom = ", momentum=0.9" if spec.optimizer == "momentum" else ""
    clip = f"dict(max_norm={spec.clip:g}, norm_type=2)" if spec.clip else "None"
    return [f"optimizer = dict(type='{kind}', lr={spec.lr:g}{mom}, weight_decay=0.0001)",
            f"optimizer_config = dict(grad_clip={clip})",
            "lr_config = dict(policy='step', warmup='linear', warmup_iters=500, warmup_ratio=0.001, step=[8, 11])"
            if "step" in spec.schedule else "lr_config = dict(policy='fixed')",
            f"runner = dict(type='EpochBasedRunner', max_epochs={-(-spec.max_steps // traj.steps_per_epoch)})",
            "log_config = dict(interval=50, hooks=[dict(type='TextLoggerHook')])"]
