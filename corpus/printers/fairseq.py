"""fairseq ``train_inner`` / epoch summaries, old (<= 0.9) and new (>= 0.10) styles.

Every ``log_interval`` updates: ``epoch 003:    5 / 356 loss=9.44, nll_loss=..., ppl=...,
wps=..., ups=..., wpb=..., bsz=..., num_updates=700, lr=0.000175, gnorm=156.036,
loss_scale=0, train_wall=..., wall=...`` -- losses averaged over the interval in base 2,
overflowed updates left out. fp16: ``NOTE: overflow detected, setting loss scale to: 64.0``
(0.10.0-0.10.1; later ``NOTE: gradient overflow detected, ignoring gradient, setting loss
scale to: 64.0``; old ``| WARNING: overflow detected, ...``); when the scale would go
below ``min_loss_scale`` training stops with ``FloatingPointError: Minimum loss scale
reached``. New fairseq in fp32 stops at the first non-finite gradient (NanDetector
warnings, then ``FloatingPointError: gradients are Nan/Inf``); old fairseq printed nan.

Each epoch ends with its summary and a ``valid on 'valid' subset`` line (an eval loss: the
epoch's train loss plus a small gap, no label value). ``json`` is old fairseq's
``--log-format json``: one JSON object per record, losses as quoted strings
(``{"epoch": 25, "loss": "3.097", ..., "num_updates": 53749, "lr": 0.000190960...}``) and
valid records with raw floats (``{"epoch": 25, "valid_loss": 3.1106..., ...}``).
"""

from __future__ import annotations

import json
import math

import numpy as np

from ..render import Clock, Cols, Line, Printer, continues_after_nan, window_point
from ..runs import Trajectory

LN2 = math.log(2)


def r3(v: float, digits: int = 3) -> str:
    return str(round(v, digits)) if math.isfinite(v) else str(v)


def _ppl(bits: float) -> str:
    try:
        return r3(2 ** bits, 2)
    except OverflowError:
        return "inf"


def _bad(p) -> str:  # noqa: ANN001
    return "loss" if not math.isfinite(p.loss) else ("grad" if not math.isfinite(p.grad_mean) else "")


def _clipped(p, spec) -> float:  # noqa: ANN001
    """The share of the interval's updates clipped, as fairseq's ``clip`` prints it (0 or 1 here)."""
    return float(bool(spec.clip) and p.grad_mean > spec.clip)


def _min_scale_row(c: Cols, min_scale: float) -> int | None:
    for i in range(c.n):
        if c.overflow[i] and c.scale is not None and c.scale[i] / 2 <= min_scale:
            return i
    return None


class Fairseq(Printer):
    name = "fairseq"
    fp16 = True

    def accepts(self, traj: Trajectory, meas) -> bool:  # noqa: ANN001
        if not super().accepts(traj, meas):
            return False
        if traj.spec.fp16 and meas.signature != "F502":  # would have raised at the minimum scale
            return all(_min_scale_row(Cols(a), traj.spec.fp16["min_scale"]) is None for a in traj.attempts)
        return True

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        style = str(rng.choice(["new", "new", "old", "json"]))
        if continues_after_nan(traj) and not traj.spec.fp16 and style == "new":
            style = str(rng.choice(["old", "json"]))
        return {"style": style, "note": str(rng.choice(["overflow detected", "gradient overflow detected, "
                                                                               "ignoring gradient"]))}

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        out = _Out(Clock(rng), opts["style"])
        spec = traj.spec
        spe = traj.steps_per_epoch
        for att in traj.attempts:
            if att.index:
                out.clock.gap()
            self._header(out, traj, att, interval)
            c = Cols(att)
            lo, ep_lo = 0, 0
            stop = _min_scale_row(c, spec.fp16["min_scale"]) if spec.fp16 else None
            for i in range(c.n):
                s, e, it = int(c.step[i]), int(c.epoch[i]), int(c.it[i])
                out.clock.advance()
                kw = dict(tstep=s, attempt=att.index)
                if stop is not None and i == stop:
                    out.trace("Minimum loss scale reached ({:g}). Your loss is probably exploding. Try lowering the "
                              "learning rate, using gradient clipping or increasing the batch size."
                              .format(spec.fp16["min_scale"]), kw)
                    break
                if c.overflow[i]:
                    scale = max(float(c.scale[i]) / 2, spec.fp16["min_scale"])
                    if out.new:
                        out.log("fairseq.trainer", f"NOTE: {opts['note']}, setting loss scale to: {scale:g}",
                                bad="overflow", **kw)
                    else:
                        out.lines.append(Line(f"| WARNING: overflow detected, setting loss scale to: {scale:g}",
                                              bad="overflow", **kw))
                elif out.new and not spec.fp16 and not math.isfinite(float(c.grad[i])):
                    # the step's output was nan: both messages count as a printed nan loss at this step
                    out.log("fairseq.nan_detector", "NaN detected in output of decoder.output_projection, shape: "
                            f"torch.Size([{spec.batch_size}, 16]), forward", "WARNING", bad="event", value=math.nan,
                            **kw)
                    out.trace("gradients are Nan/Inf", kw, math.nan)
                    break
                if s % interval == 0:
                    p = window_point(c, lo, i, "mean", skip_overflow=True)
                    lo = i + 1
                    if p.n == p.skipped:  # no update since the last line: fairseq logs nothing
                        continue
                    text = (self._json_record(p, e, out.clock, spec, e + (it + 1) / spe) if out.style == "json"
                            else self._inner(p, e, it, spe, out.clock, spec, out.style))
                    out.log("train_inner", text, step=s, exact=True, bad=_bad(p), value=p.loss / LN2, **kw)
                if it == spe - 1:
                    p = window_point(c, ep_lo, i, "mean", skip_overflow=True)
                    ep_lo = i + 1
                    if p.n == p.skipped:
                        continue
                    text = (self._json_record(p, e, out.clock, spec) if out.style == "json"
                            else self._summary(p, e, out.clock, spec, out.style))
                    out.log("train", text, step=s, exact=True, bad=_bad(p), value=p.loss / LN2, **kw)
                    out.log("valid", self._valid(p, e, out.style, spec), attempt=att.index)
                    out.log("fairseq.checkpoint_utils", f"saved checkpoint checkpoints/checkpoint{e + 1}.pt "
                            f"(epoch {e + 1} @ {s} updates, score None) (writing took 0.41 seconds)",
                            attempt=att.index)
        return out.lines

    def _header(self, out: _Out, traj: Trajectory, att, interval: int) -> None:  # noqa: ANN001
        spec = traj.spec
        fp = spec.fp16 or {}
        kw = dict(attempt=att.index)
        out.log("fairseq_cli.train", f"Namespace(arch='mlp', batch_size={spec.batch_size}, "
                f"clip_norm={spec.clip or 0.0}, criterion='cross_entropy', fp16={bool(fp)}, "
                f"fp16_init_scale={int(fp.get('init_scale', 128))}, fp16_scale_window={fp.get('growth_interval')}, "
                f"log_interval={interval}, lr=[{spec.lr:g}], max_update={spec.max_steps}, "
                f"min_loss_scale={fp.get('min_scale', 0.0001)}, optimizer='sgd', seed={spec.seed % 1000})", **kw)
        out.log("fairseq_cli.train", f"num. model params: {spec.hidden * 40} (num. trained: {spec.hidden * 40})",
                **kw)
        epoch = (att.start - 1) // traj.steps_per_epoch + 1
        if att.resumed_from:
            out.log("fairseq.trainer", f"loaded checkpoint checkpoints/checkpoint_last.pt (epoch {epoch} @ "
                    f"{att.resumed_from} updates)", **kw)
        out.log("fairseq.trainer", f"begin training epoch {epoch}", **kw)

    def _fields(self, p, clock: Clock, spec, style: str) -> list[tuple[str, str]]:  # noqa: ANN001
        """The stats of a train record, in fairseq's order (old fairseq adds clip, oom)."""
        bits = p.loss / LN2
        clipped = _clipped(p, spec)
        fields = [("loss", r3(bits)), ("nll_loss", r3(bits)), ("ppl", _ppl(bits)),
                  ("wps", f"{spec.batch_size * 30 / clock.sps:.1f}"), ("ups", f"{1 / clock.sps:.2f}"),
                  ("wpb", f"{spec.batch_size * 30}"), ("bsz", f"{spec.batch_size}"), ("num_updates", f"{p.step}"),
                  ("lr", f"{p.lr:g}"), ("gnorm", r3(p.grad_mean))]
        if style == "old":
            fields += [("clip", f"{clipped:.3f}"), ("oom", "0.000")]
        if p.scale is not None:
            fields.append(("loss_scale", f"{round(p.scale, 4):g}"))
        walls = [("train_wall", f"{int(clock.elapsed() * 0.9)}"), ("wall", f"{int(clock.elapsed())}")]
        return fields + (walls[::-1] if style == "old" else walls)

    def _inner(self, p, e: int, it: int, spe: int, clock: Clock, spec, style: str) -> str:  # noqa: ANN001
        return f"epoch {e + 1:03d}: {it + 1:>6} / {spe} " + ", ".join(
            f"{k}={v}" for k, v in self._fields(p, clock, spec, style))

    def _summary(self, p, e: int, clock: Clock, spec, style: str) -> str:  # noqa: ANN001
        return " | ".join([f"epoch {e + 1:03d}"] + [f"{k} {v}" for k, v in self._fields(p, clock, spec, style)])

    def _valid(self, p, e: int, style: str, spec) -> str:  # noqa: ANN001
        """The epoch's valid line: an eval loss a little above the epoch's train loss."""
        bits = p.loss / LN2 * 1.04 + 0.05
        if style == "json":
            return json.dumps({"epoch": e + 1, "valid_loss": bits, "valid_nll_loss": bits * 0.98,
                               "valid_ppl": _ppl(bits)})
        extra = [f"wps {spec.batch_size * 90:.1f}", f"wpb {spec.batch_size * 30}", f"bsz {spec.batch_size}"]
        parts = ([f"epoch {e + 1:03d}", "valid on 'valid' subset", f"loss {r3(bits)}", f"nll_loss {r3(bits)}",
                  f"ppl {_ppl(bits)}"] + (extra if style == "new" else []) + [f"num_updates {p.step}",
                                                                             f"best_loss {r3(bits)}"])
        return " | ".join(parts)

    def _json_record(self, p, e: int, clock: Clock, spec, update: float | None = None) -> str:  # noqa: ANN001
        """Old fairseq's JSON progress record (``update``: the fractional epoch of an inner
        record): meters as quoted strings, lr and counts raw."""
        bits = p.loss / LN2
        clipped = _clipped(p, spec)
        record: dict = {"epoch": e + 1} | ({} if update is None else {"update": round(update, 3)})
        record.update({"loss": f"{bits:.3f}", "nll_loss": f"{bits:.3f}", "ppl": _ppl(bits),
                       "wps": round(spec.batch_size * 30 / clock.sps), "ups": f"{1 / clock.sps:.1f}",
                       "wpb": spec.batch_size * 30, "bsz": spec.batch_size, "num_updates": p.step,
                       "lr": p.lr, "gnorm": f"{p.grad_mean:.3f}", "clip": f"{clipped:.0%}", "oom": 0.0})
        if p.scale is not None:
            record["loss_scale"] = f"{p.scale:.3f}"
        record["wall"] = int(clock.elapsed())
        return json.dumps(record)


class _Out:
    """Lines being written, with fairseq's logger prefix (new style) or ``| `` (old style)."""

    def __init__(self, clock: Clock, style: str) -> None:
        self.clock, self.style, self.new, self.lines = clock, style, style == "new", []

    def log(self, where: str, text: str, level: str = "INFO", **kw: object) -> None:
        if self.new:
            prefix = f"{self.clock.now:%Y-%m-%d %H:%M:%S} | {level} | {where} | "
        else:
            prefix = "" if self.style == "json" and text.startswith("{") else "| "
        self.lines.append(Line(prefix + text, **kw))  # type: ignore[arg-type]

    def trace(self, message: str, kw: dict, value: float | None = None) -> None:
        """A raised FloatingPointError: the traceback is printed raw (``value``: the loss it reports)."""
        for t in ("Traceback (most recent call last):",
                  '  File "/opt/conda/bin/fairseq-train", line 33, in <module>',
                  "    sys.exit(load_entry_point('fairseq', 'console_scripts', 'fairseq-train')())",
                  '  File "/workspace/fairseq/fairseq_cli/train.py", line 352, in train',
                  "    log_output = trainer.train_step(samples)",
                  '  File "/workspace/fairseq/fairseq/trainer.py", line 875, in train_step'):
            self.lines.append(Line(t, **kw))
        self.lines.append(Line(f"FloatingPointError: {message}", bad="event", value=value, **kw))
