"""detectron2 (held-out format).

``[08/14 10:26:13 d2.utils.events]:  eta: 0:43:51  iter: 6319  total_loss: 0.4072
loss_cls: 0.06762  time: 0.4464  data_time: 0.0375  lr: 0.0003  max_mem: 1962M`` every
``period`` iterations (``iter`` is 0-based, printed when ``(iter + 1) % period == 0``; losses
are medians over the last 20 iterations, ``{:.4g}``). The trainer checks the loss at every
iteration and stops at the first non-finite one: ``ERROR ... Exception during training:``,
a traceback, ``FloatingPointError: Loss became infinite or NaN at iteration=N!`` and the
``loss_dict`` with ``tensor(nan, device='cuda:0', grad_fn=<...>)`` values.
"""

from __future__ import annotations

import math

import numpy as np

from ..render import Clock, Cols, Line, Printer, first_stop, hms, shown
from ..runs import Trajectory

_TRACE = ("Traceback (most recent call last):",
          '  File "/detectron2/detectron2/engine/train_loop.py", line 149, in train',
          "    self.run_step()",
          '  File "/detectron2/detectron2/engine/defaults.py", line 494, in run_step',
          "    self._trainer.run_step()",
          '  File "/detectron2/detectron2/engine/train_loop.py", line 294, in run_step',
          "    self._write_metrics(loss_dict, data_time)",
          '  File "/detectron2/detectron2/engine/train_loop.py", line 332, in _write_metrics',
          "    SimpleTrainer.write_metrics(loss_dict, data_time, prefix)",
          '  File "/detectron2/detectron2/engine/train_loop.py", line 373, in write_metrics',
          '    f"Loss became infinite or NaN at iteration={storage.iter}!\\n"')


def _tensor(v: float, fn: str) -> str:
    num = f"{v:.4f}" if math.isfinite(v) else str(v)
    return f"tensor({num}, device='cuda:0', grad_fn=<{fn}>)"


class Detectron2(Printer):
    name = "detectron2"
    heldout = True
    stops_on_nan = True
    intervals = (10, 20, 20, 50)

    def printed_step(self, tstep: int, traj: Trajectory, opts: dict) -> int:
        return tstep - 1

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        return {"mem": int(rng.integers(500, 9000)), "old": bool(rng.random() < 0.3)}

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        clock = Clock(rng)
        spec = traj.spec
        lines: list[Line] = []
        names = self._names(traj)

        def log(where: str, text: str, **kw: object) -> None:
            lines.append(Line(f"[{clock.now:%m/%d %H:%M:%S} {where}]: {text}", **kw))  # type: ignore[arg-type]

        for att in traj.attempts:
            if att.index:
                clock.gap()
            if att.resumed_from:
                log("fvcore.common.checkpoint", f"[Checkpointer] Loading from ./output/model_"
                    f"{att.resumed_from - 1 if att.resumed_from else 0:07d}.pth ...", attempt=att.index)
            log("d2.engine.train_loop", f"Starting training from iteration {att.start - 1}", attempt=att.index)
            c = Cols(att)
            stop = first_stop(c)
            end = c.n if stop is None else stop
            for i in range(end):
                s = int(c.step[i])
                clock.advance()
                if s % interval == 0 or s == spec.max_steps:
                    lo = max(0, i - 19)
                    med = {n: float(np.median(v[lo:i + 1])) for n, v in self._values(c, names).items()}
                    sep = "" if opts["old"] else " "  # ``]: eta`` (old) / ``]:  eta`` (newer)
                    text = (f"{sep}eta: {hms(clock.sps * (spec.max_steps - s))}  iter: {s - 1}  "
                            + "  ".join(f"{k}: {v:.4g}" for k, v in med.items())
                            + f"  time: {clock.sps:.4f}  data_time: {clock.sps * 0.05:.4f}  "
                              f"lr: {float(c.lr[i]):.5g}  max_mem: {opts['mem']}M")
                    bad = "" if all(math.isfinite(v) for v in med.values()) else "loss"
                    log("d2.utils.events", text, step=s - 1, exact=True, bad=bad,
                        tstep=s, attempt=att.index, value=shown(med["total_loss"], *med.values()))
                if s % spec.ckpt_every == 0:
                    log("fvcore.common.checkpoint", f"Saving checkpoint to ./output/model_{s - 1:07d}.pth",
                        attempt=att.index)
            if stop is not None:
                s = int(c.step[stop])
                clock.advance()
                kw = dict(tstep=s, attempt=att.index)
                lines.append(Line(f"ERROR [{clock.now:%m/%d %H:%M:%S} d2.engine.train_loop]: Exception during "
                                  "training:", **kw))
                lines.extend(Line(t, **kw) for t in _TRACE)
                lines.append(Line(f"FloatingPointError: Loss became infinite or NaN at iteration={s - 1}!",
                                  step=s - 1, exact=True, bad="event", value=float(c.loss[stop]), **kw))
                fns = {"loss_cls": "NllLossBackward0", "loss_reg": "MseLossBackward0", "loss_aux": "MseLossBackward0"}
                items = ", ".join(f"'{k}': {_tensor(float(v[stop]), fns.get(k, 'AddBackward0'))}"
                                  for k, v in self._values(c, names, total=False).items())
                lines.append(Line(f"loss_dict = {{{items}}}", bad="loss", **kw))
                log("d2.engine.hooks", f"Overall training speed: {s - att.start} iterations in "
                    f"{hms(clock.sps * (s - att.start))} ({clock.sps:.4f} s / it)", attempt=att.index)
        return lines

    def _names(self, traj: Trajectory) -> dict[str, str]:
        main = "loss_cls" if traj.spec.loss != "mse" else "loss_reg"
        return {"main": main, "aux": "loss_aux"}

    def _values(self, c: Cols, names: dict[str, str], total: bool = True) -> dict[str, np.ndarray]:
        out = {"total_loss": c.loss} if total else {}
        if c.terms:  # the weighted terms, as the model's loss dict holds them
            out[names["main"]] = c.terms["main"]
            out[names["aux"]] = c.loss - c.terms["main"]
        else:
            out[names["main"]] = c.loss
        return out
