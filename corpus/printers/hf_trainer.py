"""Hugging Face ``Trainer``.

``***** Running training *****`` block, a tqdm bar (``  5%|▌         | 50/1000 [00:10<03:10,
4.98it/s]``, carriage-return updates) and, every ``logging_steps``, ``tqdm.write`` of a dict
``{'loss': 0.52, 'grad_norm': 1.3, 'learning_rate': 5e-05, 'epoch': 0.4}`` (no step: it
comes from the bar). The logged loss is the interval mean rounded to 4 digits, but with
``logging_nan_inf_filter`` (on by default) a non-finite step loss is replaced by the
running mean of the interval so far -- so the printed loss stays finite, often ``0.0`` once
every step is nan, while ``grad_norm`` (the last step's) shows nan: the N203 case.
With ``disable_tqdm`` only the dicts are printed (logsleuth then counts records).
"""

from __future__ import annotations

import math

import numpy as np

from ..render import Clock, Cols, Line, Printer, mmss
from ..runs import Trajectory

_BLOCKS = " ▏▎▍▌▋▊▉█"


def tqdm_bar(n: int, total: int, elapsed: float, width: int = 10, ascii_only: bool = False) -> str:
    frac = n / total if total else 0.0
    rate = n / elapsed if elapsed > 0 else 0.0
    remaining = (total - n) / rate if rate else 0.0
    if ascii_only:
        bar = ""
    else:
        full, part = divmod(int(frac * width * 8), 8)
        bar = "|" + "█" * full + (_BLOCKS[part] if full < width else "") + " " * max(0, width - full - 1) + "|"
    speed = f"{rate:.2f}it/s" if rate >= 1 or rate == 0 else f"{1 / rate:.2f}s/it"
    return f"{100 * frac:3.0f}%{bar} {n}/{total} [{mmss(elapsed)}<{mmss(remaining)}, {speed}]"


def pyfloat(v: float) -> str:
    return repr(float(v))


class HFTrainer(Printer):
    name = "hf_trainer"
    fp16 = True
    intervals = (1, 5, 10, 20, 50, 100)

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        return {"filter": bool(rng.random() < 0.7), "tqdm": bool(rng.random() < 0.75),
                "args": bool(rng.random() < 0.5), "extra_bars": int(rng.integers(0, 3))}

    def printed_step(self, tstep: int, traj: Trajectory, opts: dict) -> int:
        if opts["tqdm"]:
            return tstep
        return -(-tstep // opts["_interval"])  # the ordinal of the dict that covers the step

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        opts["_interval"] = interval
        clock = Clock(rng)
        spec = traj.spec
        spe = traj.steps_per_epoch
        total = spec.max_steps
        lines: list[Line] = []
        ordinal = 0
        if opts["args"]:
            lines.extend(Line(t) for t in _arguments(traj, interval, opts))
        for att in traj.attempts:
            if att.index:
                clock.gap()
            lines.extend(Line(t, attempt=att.index) for t in _banner(traj, att))
            c = Cols(att)
            tr, done, run_total, run_n = 0.0, 0, 0.0, 0
            for i in range(c.n):
                s = int(c.step[i])
                clock.advance()
                loss = float(c.loss[i])
                if math.isfinite(loss) or not opts["filter"]:
                    tr += loss
                else:
                    tr += tr / (1 + done)
                done += 1
                if opts["tqdm"] and opts["extra_bars"] and s % max(1, interval // (opts["extra_bars"] + 1)) == 0 \
                        and s % interval:
                    lines.append(Line(tqdm_bar(s, total, clock.elapsed()), step=s, exact=True, end="\r",
                                      rankable=False, tstep=s, attempt=att.index))
                if s % interval:
                    continue
                logged = round(tr / done, 4)
                run_total += tr
                run_n += done
                window = c.loss[i - done + 1:i + 1]
                grad = float(c.grad[i])
                # hidden: the filter replaced a non-finite loss and a symptom shows (nan grad norm, loss 0.0)
                hidden = bool(np.any(~np.isfinite(window))) and math.isfinite(logged) and (
                    logged == 0.0 or (bool(spec.clip) and not math.isfinite(grad)))
                ordinal += 1
                record = {"loss": logged, "grad_norm": grad, "learning_rate": float(c.lr[i]),
                          "epoch": round(s / spe, 2)}
                if not spec.clip:  # max_grad_norm=0: no clipping, so no grad norm is computed or logged
                    record.pop("grad_norm")
                    grad = 0.0
                text = "{" + ", ".join(f"'{k}': {pyfloat(v)}" for k, v in record.items()) + "}"
                bad = "loss" if not math.isfinite(logged) else ("grad" if not math.isfinite(grad) else "")
                kw = dict(tstep=s, attempt=att.index)
                if opts["tqdm"]:
                    lines.append(Line(tqdm_bar(s, total, clock.elapsed()), step=s, exact=True, end="\r",
                                      rankable=False, **kw))
                    lines.append(Line(" " * 100, end="\r", rankable=False, **kw))
                    lines.append(Line(text, bad=bad, hidden=hidden, rankable=False, value=logged, **kw))
                else:
                    lines.append(Line(text, step=ordinal, bad=bad, hidden=hidden, rankable=False, value=logged,
                                      **kw))
                tr, done = 0.0, 0
            if att.end == "max_steps":
                self._final(lines, c, run_total, run_n, clock, traj, att.index, opts)
        return lines

    def _final(self, lines: list[Line], c: Cols, run_total: float, run_n: int, clock: Clock, traj: Trajectory,
               attempt: int, opts: dict) -> None:
        total = traj.spec.max_steps
        if opts["tqdm"]:
            lines.append(Line(tqdm_bar(total, total, clock.elapsed()), step=total, exact=True, end="\r",
                              rankable=False, attempt=attempt))
        lines.append(Line("", attempt=attempt))
        lines.append(Line("", attempt=attempt))
        lines.append(Line("Training completed. Do not forget to share your model on huggingface.co/models =)",
                          attempt=attempt))
        lines.append(Line("", attempt=attempt))
        lines.append(Line("", attempt=attempt))
        rt = clock.elapsed()
        avg = run_total / run_n if run_n else math.nan
        text = (f"{{'train_runtime': {rt:.4f}, 'train_samples_per_second': {total * traj.spec.batch_size / rt:.3f}, "
                f"'train_steps_per_second': {total / rt:.3f}, 'train_loss': {pyfloat(avg)}, "
                f"'epoch': {round(total / traj.steps_per_epoch, 2)}}}")
        lines.append(Line(text, bad="" if math.isfinite(avg) else "loss", attempt=attempt))


def _banner(traj: Trajectory, att) -> list[str]:  # noqa: ANN001
    spec = traj.spec
    out = ["***** Running training *****", f"  Num examples = {spec.n_train:,}",
           f"  Num Epochs = {-(-spec.max_steps // traj.steps_per_epoch)}",
           f"  Instantaneous batch size per device = {spec.batch_size}",
           f"  Total train batch size (w. parallel, distributed & accumulation) = {spec.batch_size}",
           "  Gradient Accumulation steps = 1", f"  Total optimization steps = {spec.max_steps:,}",
           f"  Number of trainable parameters = {spec.hidden * 40:,}"]
    if att.resumed_from:
        out += ["  Continuing training from checkpoint, will skip to saved global_step",
                f"  Continuing training from epoch {(att.start - 1) // traj.steps_per_epoch}",
                f"  Continuing training from global step {att.resumed_from}"]
    return out


def _arguments(traj: Trajectory, interval: int, opts: dict) -> list[str]:
    spec = traj.spec
    fields = [("_n_gpu", 1), ("adam_beta1", 0.9), ("adam_beta2", 0.999), ("bf16", False),
              ("fp16", bool(spec.fp16)), ("gradient_accumulation_steps", 1), ("learning_rate", spec.lr),
              ("logging_nan_inf_filter", opts["filter"]), ("logging_steps", interval),
              ("lr_scheduler_type", "SchedulerType.LINEAR" if "warmup" in spec.schedule else "SchedulerType.CONSTANT"),
              ("max_grad_norm", spec.clip if spec.clip else 0.0), ("max_steps", spec.max_steps),
              ("output_dir", "out/run"), ("per_device_train_batch_size", spec.batch_size),
              ("seed", spec.seed % 100000), ("warmup_steps", spec.warmup if "warmup" in spec.schedule else 0),
              ("weight_decay", 0.0)]
    return ["TrainingArguments("] + [f"{k}={v}," for k, v in fields] + [")"]
