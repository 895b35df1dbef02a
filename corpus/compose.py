"""Several rendered logs per trajectory: pick formats, intervals, variations; label each.

See :mod:`corpus.render` for the labelling rules. Formats are drawn without replacement
among the printers that accept the trajectory (held-out formats only for held-out
trajectories); a rejected rendering is retried with another interval / options, then
another format.
"""

from __future__ import annotations

import math

import numpy as np

from . import variations
from .label import Measurement
from .printers import PRINTERS
from .render import Line, Printer, Rendered
from .runs import Trajectory

#: variation -> probability it is applied to a log (ranks: printers without progress bars)
VARIATION_P = {"noise": 0.3, "ansi": 0.12, "ranks": 0.12, "truncate_head": 0.15, "truncate_tail": 0.15}
_BAR_PRINTERS = frozenset({"keras", "hf_trainer", "lightning", "deepspeed", "caffe"})


def fill_steps(lines: list[Line]) -> None:
    """A line that prints no step is attributed the last step printed before it."""
    last: int | None = None
    for ln in lines:
        if ln.exact:
            last = ln.step
        elif ln.step is None:
            ln.step = last


def _physical_line(lines: list[Line], index: int) -> int:
    return 1 + sum(ln.end.count("\n") for ln in lines[:index])


def label(lines: list[Line], meas: Measurement, traj: Trajectory, printer: Printer, opts: dict
          ) -> tuple[str, int | None, int | None, bool] | None:
    """(signature, first non-finite step, its physical line, exact?) or None to reject."""
    bad = [i for i, ln in enumerate(lines) if ln.bad]
    hidden = any(ln.hidden for ln in lines)
    went_bad = meas.first_nonfinite_step is not None
    if went_bad and not bad and not hidden:
        return None  # the log keeps no trace of the failure
    shows_loss = any(lines[i].bad in ("loss", "event") for i in bad)
    loss_failed = meas.fail_step is not None
    if loss_failed and hidden and not shows_loss:
        tstep = meas.first_nonfinite_step or meas.fail_step
        assert tstep is not None
        return "N203", printer.printed_step(tstep, traj, opts), None, False
    if meas.signature == "N202" and not _recurrence_visible(lines, bad, meas, traj):
        return None
    if loss_failed and not shows_loss:
        return None  # only a grad-norm / overflow trace of a loss failure: ambiguous, skip
    if not bad:
        return meas.signature, None, None, False
    first = lines[bad[0]]
    return meas.signature, first.step, _physical_line(lines, bad[0]), first.exact


def _recurrence_visible(lines: list[Line], bad: list[int], meas: Measurement, traj: Trajectory) -> bool:
    if "attempt_fail_steps" in meas.evidence and len(set(lines[i].attempt for i in bad)) >= 2:
        return True
    epochs = {((lines[i].tstep or 1) - 1) // traj.steps_per_epoch for i in bad if lines[i].tstep}
    return "recurring_steps" in meas.evidence and len(epochs) >= 2


def render_log(traj: Trajectory, meas: Measurement, printer: Printer, rng: np.random.Generator,
               kinds: list[str]) -> Rendered | None:
    """One rendering of ``traj`` by ``printer`` with variation ``kinds``, or None if rejected."""
    interval = printer.pick_interval(rng, traj)
    if interval is None:
        return None
    return render_with(traj, meas, printer, interval, printer.options(rng, traj), rng, kinds)


def render_with(traj: Trajectory, meas: Measurement, printer: Printer, interval: int, opts: dict,
                rng: np.random.Generator, kinds: list[str]) -> Rendered | None:
    """Render with explicit interval and printer options, apply variations, label."""
    lines = printer.render(traj, interval, opts, rng)
    if not lines:
        return None
    fill_steps(lines)
    epoch_of = {s: (s - 1) // traj.steps_per_epoch for s in {ln.tstep for ln in lines if ln.tstep}}
    variations.mark_keys(lines, epoch_of)
    lines = variations.apply(lines, rng, kinds)
    labelled = label(lines, meas, traj, printer, opts)
    if labelled is None:
        return None
    sig, step, line_no, exact = labelled
    names = (["restarts"] if len(traj.attempts) > 1 else []) + kinds
    public = {k: v for k, v in opts.items() if not k.startswith("_")}
    return Rendered(variations.text_of(lines), sig, step, line_no, exact, "+".join(names) or "plain", interval,
                    public)


def pick_kinds(rng: np.random.Generator, printer: Printer) -> list[str]:
    kinds = [k for k, p in VARIATION_P.items() if rng.random() < p]
    if printer.name in _BAR_PRINTERS and "ranks" in kinds:
        kinds.remove("ranks")
    return kinds


def renderings(traj: Trajectory, meas: Measurement, rng: np.random.Generator, n: int, heldout: bool
               ) -> list[tuple[Printer, Rendered]]:
    """Up to ``n`` logs of ``traj`` in distinct formats."""
    pool = [p for p in PRINTERS if (heldout or not p.heldout) and p.accepts(traj, meas)]
    order = [pool[i] for i in rng.permutation(len(pool))]
    order.sort(key=lambda p: not p.heldout)  # held-out runs try the held-out formats first
    out: list[tuple[Printer, Rendered]] = []
    for printer in order:
        if len(out) >= n:
            break
        for _ in range(3):
            done = render_log(traj, meas, printer, rng, pick_kinds(rng, printer))
            if done is not None:
                out.append((printer, done))
                break
    return out


def is_finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
