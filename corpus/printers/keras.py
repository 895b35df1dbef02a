"""Keras ``model.fit`` output.

``Epoch e/E`` then either verbose=1 progress bars (``c/T [====>....] - ETA: 1:02 - loss:
0.4012 - acc: 0.8125``; carriage-return updates, a running mean over the epoch; the last
update ``T/T [====] - 2s 8ms/step - loss: ...`` ends the line) or verbose=2 epoch lines
(``T/T - 2s - loss: 0.4012 - acc: 0.8125``). Values print as ``%.4f`` (``%.4e`` when
``abs(v) <= 1e-3``, so nan prints via ``%.4e``). ``TerminateOnNaN`` prints ``Batch b:
Invalid loss, terminating training`` (b 0-based within the epoch), glued to the bar, and
stops. The step convention (as logsleuth reads it) is ``(e - 1) * T + c``.
"""

from __future__ import annotations

import math

import numpy as np

from ..render import Clock, Cols, Line, Printer, hms
from ..runs import Trajectory


def kfmt(v: float) -> str:
    return f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.4e}"


def _bar(c: int, total: int, width: int = 30) -> str:
    digits = len(str(total))
    prog = int(width * c / total)
    bar = ("=" * (prog - 1) + (">" if c < total else "=")) if prog > 0 else ""
    return f"{c:>{digits}}/{total} [{bar}{'.' * (width - prog)}]"


class Keras(Printer):
    name = "keras"
    intervals = (1, 2, 5, 10, 20)

    def accepts(self, traj: Trajectory, meas) -> bool:  # noqa: ANN001
        spe = traj.steps_per_epoch
        return super().accepts(traj, meas) and all((a.start - 1) % spe == 0 for a in traj.attempts)

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        return {"verbose": int(rng.choice([1, 1, 2])), "terminate": bool(rng.random() < 0.5),
                "summary": bool(rng.random() < 0.5)}

    def pick_interval(self, rng: np.random.Generator, traj: Trajectory) -> int | None:
        spe = traj.steps_per_epoch
        ok = [k for k in self.intervals if spe / k <= 40] or [self.intervals[-1]]
        return int(ok[int(rng.integers(len(ok)))])

    def printed_step(self, tstep: int, traj: Trajectory, opts: dict) -> int:
        return tstep

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        clock = Clock(rng)
        lines: list[Line] = []
        spe = traj.steps_per_epoch
        epochs = -(-traj.spec.max_steps // spe)
        metric = "acc" if traj.spec.data in ("blobs", "images") else None
        for att in traj.attempts:
            if att.index:
                clock.gap()
            if opts["summary"]:
                lines.extend(Line(t, attempt=att.index) for t in _summary(traj))
            c = Cols(att)
            total = acc_total = 0.0
            count = 0
            for i in range(c.n):
                s, e, it = int(c.step[i]), int(c.epoch[i]), int(c.it[i])
                clock.advance()
                if it == 0:
                    lines.append(Line(f"Epoch {e + 1}/{epochs}", attempt=att.index))
                    total = acc_total = 0.0
                    count = 0
                    t0 = clock.elapsed()
                loss = float(c.loss[i])
                total += loss
                acc_total += float(c.acc[i]) if c.acc is not None else 0.0
                count += 1
                avg = total / count
                tail = f" - loss: {kfmt(avg)}" + (f" - {metric}: {kfmt(acc_total / count)}" if metric else "")
                bad = "" if math.isfinite(avg) else "loss"
                kw = dict(tstep=s, attempt=att.index)
                if opts["terminate"] and not math.isfinite(loss):
                    if opts["verbose"] == 1 and lines and lines[-1].end == "\r":
                        lines[-1].end = ""  # the message is glued to the bar
                    lines.append(Line(f"Batch {it}: Invalid loss, terminating training", step=e * spe + it,
                                      exact=True, bad="event", value=loss, **kw))
                    done = f"{_bar(it + 1, spe)} - ETA: {hms(clock.sps * (spe - it - 1))}" if opts["verbose"] == 1 \
                        else f"{it + 1}/{spe} - {clock.elapsed() - t0:.0f}s"
                    lines.append(Line(f"{done}{tail} ", step=s, exact=True, bad=bad, value=avg, **kw))
                    break
                if opts["verbose"] == 1 and (count % interval == 0 or it == spe - 1):
                    if it == spe - 1:
                        took = clock.elapsed() - t0
                        lines.append(Line(f"{_bar(spe, spe)} - {took:.0f}s {1000 * took / spe:.0f}ms/step{tail}",
                                          step=s, exact=True, bad=bad, value=avg, **kw))
                    else:
                        eta = clock.sps * (spe - it - 1)
                        eta_s = hms(eta) if eta >= 3600 else (f"{int(eta) // 60}:{int(eta) % 60:02d}" if eta >= 60
                                                              else f"{eta:.0f}s")
                        lines.append(Line(f"{_bar(it + 1, spe)} - ETA: {eta_s}{tail}", step=s, exact=True, bad=bad,
                                          end="\r", value=avg, **kw))
                elif opts["verbose"] == 2 and it == spe - 1:
                    lines.append(Line(f"{spe}/{spe} - {clock.elapsed() - t0:.0f}s{tail}", step=s, exact=True,
                                      bad=bad, value=avg, **kw))
            if lines and lines[-1].end == "\r":
                lines[-1].end = "\n"
        return lines


def _summary(traj: Trajectory) -> list[str]:
    spec = traj.spec
    d = spec.extra.get("dim", 10)
    out = spec.extra.get("classes", 1) if spec.loss != "mse" else 1
    h = spec.hidden
    rows = [("dense (Dense)", f"(None, {h})", d * h + h), ("dense_1 (Dense)", f"(None, {out})", h * out + out)]
    total = sum(r[2] for r in rows)
    text = ['Model: "sequential"', "_" * 65, f"{'Layer (type)':<29}{'Output Shape':<26}Param #   ", "=" * 65]
    for i, (name, shape, n) in enumerate(rows):
        text.append(f"{name:<29}{shape:<26}{n:<10}")
        text.append("=" * 65 if i == len(rows) - 1 else "_" * 65)
    text += [f"Total params: {total:,}", f"Trainable params: {total:,}", "Non-trainable params: 0", "_" * 65]
    return text
