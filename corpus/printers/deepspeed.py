"""DeepSpeed engine output around a tqdm training loop.

The engine echoes its configuration (``[config.py:1066:print]   fp16_enabled ..... True``),
prints ``[Rank 0] step=N, skipped=K, lr=[...], mom=[...]`` every ``steps_per_print`` steps,
and on every fp16 overflow ``[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss
scale: 65536, reducing to 32768`` -- printed inside ``engine.step()``, so it is glued to the
tqdm bar, whose count is still the previous step. At the minimum scale it either keeps
skipping (``reducing to 1``) or raises ``Current loss scale already at minimum``. The loss
is shown by the training loop in the bar description (trlx style ``[loss: 0.52 | ...]:``).

``pipe``: a pipeline-parallel job (``PipelineEngine.train_batch``, no tqdm bar) prints the
step's aggregated loss after the engine's own step line, every ``steps_per_print`` steps:
``steps: 18 loss: nan iter time (s): 3.235 samples/sec: 0.309``.
"""

from __future__ import annotations

import math

import numpy as np

from ..render import Clock, Cols, Line, Printer, window_point
from .hf_trainer import tqdm_bar


class DeepSpeed(Printer):
    name = "deepspeed"
    fp16 = True
    intervals = (1, 5, 10, 20, 50)

    def options(self, rng, traj) -> dict:  # noqa: ANN001
        return {"raise_at_min": bool(rng.random() < 0.5), "zero3": bool(rng.random() < 0.3),
                "desc": str(rng.choice(["loss", "train/loss", "losses/total_loss"])),
                "steps_per_print": int(rng.choice([1, 10, 50, 100])), "pipe": bool(rng.random() < 0.3)}

    def render(self, traj, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:  # noqa: ANN001
        clock = Clock(rng)
        spec = traj.spec
        total = spec.max_steps
        lines: list[Line] = []
        zero3 = opts["zero3"]
        pipe = opts.get("pipe", False)
        src = "stage3.py:2323:_overflow_clean_up" if zero3 else "loss_scaler.py:183:update_scale"
        tag = "[deepscale]" if zero3 else "[deepspeed]"

        def stamp(where: str) -> str:
            n = clock.now
            return f"[{n:%Y-%m-%d %H:%M:%S},{n.microsecond // 1000:03d}] [INFO] [{where}] "

        def num(v: float) -> str:
            return f"{v:.1f}" if zero3 else f"{int(v)}" if v >= 1 else f"{v:g}"

        for att in traj.attempts:
            if att.index:
                clock.gap()
            if att.resumed_from:
                lines.append(Line(stamp("torch_checkpoint_engine.py:27:load") + "[Torch] Loading checkpoint from "
                                  f"./ckpt/global_step{att.resumed_from}/mp_rank_00_model_states.pt...",
                                  attempt=att.index))
            lines.extend(Line(stamp("config.py:1066:print") + t, attempt=att.index) for t in _config(traj, opts))
            c = Cols(att)
            lo = 0
            desc = ""
            for i in range(c.n):
                s = int(c.step[i])
                clock.advance()
                kw = dict(tstep=s, attempt=att.index)
                if c.overflow[i]:
                    cur = float(c.scale[i])
                    at_min = cur <= spec.fp16["min_scale"]
                    if not pipe:
                        bar = tqdm_bar(s - 1, total, clock.elapsed())
                        lines.append(Line(f"{desc}{bar}", step=s - 1, exact=True, end="", rankable=False, **kw))
                    if at_min and opts["raise_at_min"]:
                        lines.append(Line(stamp(src) + "Current loss scale already at minimum - cannot decrease "
                                          "scale anymore. Exiting run.", bad="overflow", **kw))
                        break
                    lines.append(Line(stamp(src) + f"{tag} OVERFLOW! Rank 0 Skipping step. Attempted loss scale: "
                                      f"{num(cur)}, reducing to {num(max(cur / 2, spec.fp16['min_scale']))}",
                                      bad="overflow", **kw))
                if s % interval == 0 and not pipe:
                    p = window_point(c, lo, i)
                    lo = i + 1
                    desc = f"[{opts['desc']}: {p.loss:.4g} | lr: {p.lr:.3g}]: "
                    bad = "" if math.isfinite(p.loss) else "loss"
                    lines.append(Line(desc + tqdm_bar(s, total, clock.elapsed()), step=s, exact=True, bad=bad,
                                      end="\r", rankable=False, value=p.loss, **kw))
                if s % opts["steps_per_print"] == 0:
                    if lines and lines[-1].end == "\r":
                        lines[-1].end = ""
                    skipped = int(c.overflow[: i + 1].sum())
                    lines.append(Line(stamp("logging.py:96:log_dist") + f"[Rank 0] step={s}, skipped={skipped}, "
                                      f"lr=[{float(c.lr[i]):g}], mom=[(0.9, 0.999)]", step=s, exact=True, **kw))
                    if not pipe:
                        lines.append(Line(stamp("timer.py:260:stop") + f"epoch=0/micro_step={s}/global_step={s}, "
                                          f"RunningAvgSamplesPerSec={spec.batch_size / clock.sps:.4f}, "
                                          f"CurrSamplesPerSec={spec.batch_size / clock.sps:.4f}, "
                                          "MemAllocated=0.52GB, MaxMemAllocated=1.37GB", **kw))
                    else:
                        loss = float(c.loss[i])
                        lines.append(Line(f"steps: {s} loss: {loss:0.4f} iter time (s): {clock.sps:0.3f} "
                                          f"samples/sec: {spec.batch_size / clock.sps:0.3f}", step=s, exact=True,
                                          bad="" if math.isfinite(loss) else "loss", value=loss, **kw))
            if lines and lines[-1].end in ("\r", ""):
                lines[-1].end = "\n"
        return lines


def _config(traj, opts: dict) -> list[str]:  # noqa: ANN001
    spec = traj.spec
    fp = spec.fp16 or {}
    items = [("fp16_enabled", bool(fp)), ("gradient_clipping", spec.clip or 0.0),
             ("initial_dynamic_scale", int(fp.get("init_scale", 65536))),
             ("dynamic_loss_scale_args", {"init_scale": int(fp.get("init_scale", 65536)),
                                          "scale_window": fp.get("growth_interval", 1000), "delayed_shift": 1,
                                          "min_scale": fp.get("min_scale", 1)} if fp else None),
             ("optimizer_name", "adam" if spec.optimizer == "adam" else "sgd"),
             ("optimizer_params", {"lr": spec.lr}), ("steps_per_print", opts["steps_per_print"]),
             ("train_batch_size", spec.batch_size), ("zero_enabled", opts["zero3"])]
    return ["DeepSpeedEngine configuration:"] + [f"  {k} {'.' * (28 - len(k))} {v}" for k, v in items]
