"""Several rendered logs per trajectory: pick formats, intervals, variations; label each.

See :mod:`corpus.render` for the labelling rules. Formats are drawn without replacement
among the printers that accept the trajectory (held-out formats only for held-out
trajectories); a rejected rendering is retried with another interval / options, then
another format.

A log is labelled after its variations, from its final lines: the signature is measured
on the loss values those lines print (:func:`printed_columns`), so an excerpt that cut the
growth before a nan, or a coarse interval that never printed a spike, is labelled for what
it shows. The full-resolution signature (the ``trajectory_signature`` column) stays where
the printed values cannot judge it (see :func:`visible_signature`).
"""

from __future__ import annotations

import math

import numpy as np

from . import variations
from .label import EARLY, Measurement, measure_signature
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
    if not bad and not any(ln.value is not None for ln in lines):
        return None  # no training value printed at all (e.g. a logging interval longer than the epoch)
    sig = visible_signature(lines, meas, traj)
    if not bad:
        return sig, None, None, False
    first = lines[bad[0]]
    return sig, first.step, _physical_line(lines, bad[0]), first.exact


#: full-resolution signatures the printed loss values cannot judge: fp16 overflows are
#: events, not values; an N202 recurrence is checked on the log by ``_recurrence_visible``
_KEEP = frozenset({"N202", "F501", "F502"})


def printed_columns(lines: list[Line]) -> dict[str, list]:
    """The training loss as the log prints it: ``step`` (trajectory step) and ``loss`` columns.

    One point per attempt and step (the last line wins: ``\\r`` updates, rank copies),
    attempts stitched like :func:`corpus.label.history` -- a later attempt replaces the
    earlier one's points from its first printed step on, and the history ends with the
    first attempt whose printed points include a non-finite one.
    """
    by_attempt: dict[int, dict[int, float]] = {}
    for ln in lines:
        if ln.value is not None and ln.tstep is not None:
            by_attempt.setdefault(ln.attempt, {})[ln.tstep] = ln.value
    steps: list[int] = []
    loss: list[float] = []
    for attempt in sorted(by_attempt):
        points = sorted(by_attempt[attempt].items())
        keep = sum(1 for s in steps if s < points[0][0])
        steps = steps[:keep] + [s for s, _ in points]
        loss = loss[:keep] + [v for _, v in points]
        if not all(math.isfinite(v) for _, v in points):
            break
    return {"step": steps, "loss": loss}


def visible_signature(lines: list[Line], meas: Measurement, traj: Trajectory) -> str:
    """The signature measured on the printed loss values, by the rules of :mod:`corpus.label`.

    ``meas.signature`` (full resolution) is kept for the signatures in ``_KEEP``, for an
    ``L301`` by a non-finite loss within the first steps (the log shows it; the few values
    printed before it are no history to judge), when the printed values alone look like
    ``N202`` (a recurrence is judged at full resolution), and when fewer than 3 finite
    values are printed. The initial loss is the median of the prints covering the first
    ~5 steps (one print at an interval of 5 or more), as at full resolution.
    """
    early_nonfinite = meas.signature == "L301" and meas.fail_step is not None and meas.fail_step <= EARLY
    if meas.signature in _KEEP or early_nonfinite:
        return meas.signature
    cols = printed_columns(lines)
    if sum(1 for v in cols["loss"] if math.isfinite(v)) < 3:
        return meas.signature
    gaps = np.diff(cols["step"])
    interval = float(np.median(gaps)) if len(gaps) else 1.0
    initial_points = max(1, round(5 / max(interval, 1.0)))  # the first ~5 steps, as printed
    sig = measure_signature(cols, steps_per_epoch=traj.steps_per_epoch, initial_points=initial_points).signature
    return meas.signature if sig == "N202" else sig


def _recurrence_visible(lines: list[Line], bad: list[int], meas: Measurement, traj: Trajectory) -> bool:
    """Failing attempts, or bad prints in two epochs with a finite print between them (a
    logging interval longer than the period shows a dead run, not a recurrence)."""
    if "attempt_fail_steps" in meas.evidence and len(set(lines[i].attempt for i in bad)) >= 2:
        return True
    epochs = {((lines[i].tstep or 1) - 1) // traj.steps_per_epoch for i in bad if lines[i].tstep}
    if "recurring_steps" not in meas.evidence or len(epochs) < 2:
        return False
    values = [ln.value for ln in lines[bad[0]:] if ln.value is not None]
    recovered = [i for i, v in enumerate(values) if math.isfinite(v)]
    return bool(recovered) and any(not math.isfinite(v) for v in values[recovered[0]:])


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
