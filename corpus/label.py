"""Labels by measurement: the signature of a trajectory, from its full-resolution numbers.

The injected cause is never consulted. :func:`measure_signature` reads the per-step
columns (``step``, ``loss``, optional ``grad_norm``, ``scale``, ``overflow``) and, when a
run was restarted, every attempt. Definitions:

* a step is *non-finite* when its loss is nan/inf, or its grad norm is nan/inf on a step
  that was not an fp16 overflow skip; ``fail`` is the first such step;
* ``first_nonfinite_step`` is the first step where the loss *or* the grad norm was
  non-finite, overflow skips included (what the run actually did first);
* *initial loss*: median of the first 5 finite losses; *running minimum*: minimum of the
  rolling median (9 steps) of the finite losses before ``fail``.

Rules, in order of precedence (the first that holds wins):

1. ``N202`` nan at a fixed iteration: at least two attempts (restarts) and every one went
   non-finite at the same step; or the loss was non-finite at >= 2 isolated places (each
   at most 3 steps long, finite again after -- or the run ends there), all at the same
   position of the epoch
   (same ``(step - 1) % steps_per_epoch``; without the epoch length: equal gaps).
2. ``L301`` early blowup: ``fail <= 100``, or a finite loss in the first 100 steps above
   1e4 x the initial loss.
3. ``X101`` exploding loss (``fail > 100``): over the last stretch before ``fail`` (W =
   clip(n/5, 10, 50) finite steps) the largest loss is > 10x the running minimum and the
   least-squares slope of log-loss over the stretch is positive; or it is 3-10x and at
   least 60% of the stretch's log-loss increments (3-step smoothed) are positive; in both
   cases the stretch's largest loss must reach half the initial loss (a loss near zero
   that moves by 10x is noise, not an explosion).
4. ``N201`` sudden nan: ``fail > 100`` and not X101 (little growth before it).
5. ``F502`` loss-scale collapse (no non-finite loss): >= 80% of the last 20 steps were
   overflow skips and the scale stayed pinned at its floor (the last 10 steps all at the
   lowest scale of the run).
6. ``F501`` benign overflow: overflow skips happened, the loss stayed finite and the
   scale settled (< 20% skips over the last 20 steps).
7. ``X101`` (finite) the run ended while exploding: the last stretch's largest loss is
   > 10x the running minimum and above the initial loss, with a positive log-slope.
8. ``R601`` recovered spike: a step whose loss is > 3x the rolling median of the 20 steps
   before it, exceeds that median by > 10 rolling MADs and by > 20% of the initial loss,
   and within 50 steps the loss is back below 1.5x that median.
9. ``S401`` stalled: final loss (median of the last 10%, >= 5 steps: one late spike is no
   stall) >= 0.95 x the initial.
10. ``H001`` healthy: finite and decreasing.

``N203`` (nan hidden by the logger) is a *rendering* label, decided in
:mod:`corpus.render` from what a printer showed, never here. A rendered log's
``signature`` applies these same rules to the loss values the log prints
(:func:`corpus.compose.visible_signature`); this module's full-resolution result is its
``trajectory_signature``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EARLY = 100
ABSURD = 1e4


@dataclass(frozen=True)
class Measurement:
    """The measured signature with the numbers that decided it."""

    signature: str
    rule: str
    first_nonfinite_step: int | None
    fail_step: int | None
    evidence: Mapping[str, Any] = field(default_factory=dict)


def _columns(records: Any) -> dict[str, np.ndarray]:
    """Accept a mapping of columns, a list of row dicts, or an object with ``rows``."""
    if hasattr(records, "rows"):
        records = records.rows
    if isinstance(records, Mapping):
        cols = {k: v for k, v in records.items() if k in ("step", "loss", "grad_norm", "scale", "overflow")}
    else:
        rows = list(records)
        keys = ("step", "loss", "grad_norm", "scale", "overflow")
        cols = {k: [r.get(k) for r in rows] for k in keys if any(k in r for r in rows)}
    out = {k: np.array([np.nan if v is None else v for v in vals], dtype=float) for k, vals in cols.items()}
    n = len(out["loss"])
    out.setdefault("grad_norm", np.full(n, 1.0))
    out.setdefault("overflow", np.zeros(n))
    out["overflow"] = np.nan_to_num(out["overflow"]).astype(bool)
    return out


def _steps(cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, bad: non-finite loss or non-overflow grad, any: loss or grad incl. overflow)."""
    loss, grad, over = cols["loss"], cols["grad_norm"], cols["overflow"]
    bad = ~np.isfinite(loss) | (~np.isfinite(grad) & ~over)
    anybad = ~np.isfinite(loss) | ~np.isfinite(grad)
    return cols["step"].astype(int), bad, anybad


def _first(steps: np.ndarray, mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(steps[idx[0]]) if len(idx) else None


def _rolling_median(x: np.ndarray, w: int) -> np.ndarray:
    if len(x) < w:
        return np.array([np.median(x)]) if len(x) else x
    win = np.lib.stride_tricks.sliding_window_view(x, w)
    return np.median(win, axis=1)


def _isolated_recurrence(steps: np.ndarray, loss: np.ndarray, spe: int | None) -> dict | None:
    """Runs of non-finite loss that are short, finite again after, at a fixed epoch position."""
    bad = ~np.isfinite(loss)
    if bad.sum() < 2:
        return None
    starts = np.flatnonzero(bad & ~np.r_[False, bad[:-1]])
    ends = np.flatnonzero(bad & ~np.r_[bad[1:], False])
    if len(starts) < 2 or np.any(ends - starts >= 3):
        return None  # a short run at the very end is the run stopping on the bad sample again
    at = steps[starts]
    if spe:
        positions = set(((at - 1) % spe).tolist())
        if len(positions) != 1:
            return None
    elif len(set(np.diff(at).tolist())) != 1:
        return None
    return {"recurring_steps": at.tolist(), "position_in_epoch": int((at[0] - 1) % spe) if spe else None}


def _growth(loss: np.ndarray) -> dict:
    """Growth of the finite loss over the last stretch (before failure or at the end)."""
    fin = loss[np.isfinite(loss)]
    if len(fin) < 5:
        return {"growth": 1.0, "slope": 0.0, "rising": 0.0}
    smooth = _rolling_median(fin, 9)
    running_min = float(max(np.min(smooth), 1e-30))
    w = int(np.clip(len(fin) // 5, 10, 50))
    last = fin[-w:]
    logs = np.log(np.maximum(last, 1e-30))
    slope = float(np.polyfit(np.arange(len(logs)), logs, 1)[0]) if len(logs) >= 3 else 0.0
    sm = np.convolve(logs, np.ones(3) / 3, mode="valid")
    rising = float(np.mean(np.diff(sm) > 0)) if len(sm) > 1 else 0.0
    return {"growth": float(np.max(last) / running_min), "slope": slope, "rising": rising,
            "running_min": running_min, "last_max": float(np.max(last))}


def _exploding(g: dict, initial: float) -> bool:
    if g.get("last_max", 0.0) < 0.5 * abs(initial):  # noise on a loss near zero is no explosion
        return False
    return (g["growth"] > 10 and g["slope"] > 0) or (3 <= g["growth"] <= 10 and g["rising"] >= 0.6)


def _spike(loss: np.ndarray, initial: float) -> dict | None:
    """The first recovered spike: > 3x the rolling median of the 20 steps before it."""
    fin = loss[np.isfinite(loss)]
    for t in range(20, len(fin)):
        window = fin[t - 20:t]
        med = float(np.median(window))
        mad = float(np.median(np.abs(window - med))) + 1e-12
        v = fin[t]
        if v > 3 * med and v - med > 10 * mad and v > 0.5 * abs(initial):
            after = fin[t + 1:t + 51]
            if len(after) and np.any(after < 1.5 * med):
                return {"spike_index": t, "spike_loss": float(v), "median_before": med}
    return None


def _overflow_state(cols: dict[str, np.ndarray]) -> dict:
    over = cols["overflow"]
    if not over.any():
        return {"overflows": 0}
    tail = slice(-20, None)
    scale = cols.get("scale", np.full(len(over), np.nan))
    floor = np.nanmin(scale) if np.isfinite(scale).any() else np.nan
    pinned = bool(np.all(scale[-10:] == floor))  # the last 10 steps all at the lowest scale seen
    return {"overflows": int(over.sum()), "tail_skip_rate": float(over[tail].mean()), "pinned": pinned,
            "min_scale_seen": float(np.nanmin(scale)) if np.isfinite(scale).any() else None}


def measure_signature(trajectory: Any, attempts: Sequence[Any] | None = None,
                      steps_per_epoch: int | None = None, initial_points: int = 5) -> Measurement:
    """The signature of a run, measured (see the module docstring for the rules).

    Parameters
    ----------
    trajectory : mapping of columns, list of row dicts, or an attempt
        The run's history up to and including its first failing attempt (``step``,
        ``loss``; optional ``grad_norm``, ``scale``, ``overflow``).
    attempts : sequence of the same, optional
        Every attempt of the job (restarts), each with its own steps.
    steps_per_epoch : int, optional
        Epoch length, for the fixed-position-in-epoch rule.
    initial_points : int
        Finite values whose median is the initial loss: 5 at full resolution; fewer when
        the values are a log's prints, each covering several steps.
    """
    cols = _columns(trajectory)
    steps, bad, anybad = _steps(cols)
    loss = cols["loss"]
    first_any, fail = _first(steps, anybad), _first(steps, bad)
    ev: dict[str, Any] = {}
    if attempts and len(attempts) >= 2:
        fails = [_first(*_steps(_columns(a))[:2]) for a in attempts]
        ev["attempt_fail_steps"] = fails
        if all(f is not None for f in fails) and len(set(fails)) == 1:
            return Measurement("N202", "same failing step in every attempt", first_any, fail, ev)
    rec = _isolated_recurrence(steps, loss, steps_per_epoch)
    if rec:
        return Measurement("N202", "isolated non-finite steps at a fixed epoch position", first_any, fail, {**ev, **rec})
    fin = loss[np.isfinite(loss)]
    initial = float(np.median(fin[:initial_points])) if len(fin) else float("nan")
    ev["initial_loss"] = initial
    early = np.isfinite(loss) & (steps <= EARLY)
    if fail is not None and fail <= EARLY:
        return Measurement("L301", f"non-finite at step {fail} <= {EARLY}", first_any, fail, ev)
    if len(fin) and np.any(loss[early] > ABSURD * abs(initial)):
        return Measurement("L301", f"loss > {ABSURD:g} x initial within {EARLY} steps", first_any, fail, ev)
    if fail is not None:
        g = _growth(loss[steps < fail])
        ev.update(g)
        if _exploding(g, initial):
            return Measurement("X101", "geometric growth before the first non-finite step", first_any, fail, ev)
        return Measurement("N201", "non-finite after step 100 without growth before it", first_any, fail, ev)
    ov = _overflow_state(cols)
    ev.update(ov)
    if ov["overflows"] and ov["tail_skip_rate"] >= 0.8 and ov["pinned"]:
        return Measurement("F502", "loss scale pinned at its floor, overflows persist", first_any, fail, ev)
    if ov["overflows"] and ov["tail_skip_rate"] < 0.2:
        return Measurement("F501", "overflow skips, then the scale settled", first_any, fail, ev)
    g = _growth(loss)
    ev.update(g)
    if g["growth"] > 10 and g["slope"] > 0 and g["last_max"] > initial:
        return Measurement("X101", "finite run ending in geometric growth", first_any, fail, ev)
    spike = _spike(loss, initial)
    if spike:
        ev.update(spike)
        return Measurement("R601", "spike > 3x rolling median that returned to trend", first_any, fail, ev)
    k = max(5, len(fin) // 10)
    final = float(np.median(fin[-k:])) if len(fin) else float("nan")  # a late spike is no stall
    ev["final_loss"] = final
    if final >= 0.95 * initial:
        return Measurement("S401", "final loss >= 0.95 x initial", first_any, fail, ev)
    return Measurement("H001", "finite and decreasing", first_any, fail, ev)


def history(traj: Any) -> tuple[dict[str, list], list[dict[str, list]]]:
    """(stitched history up to the first failing attempt, every attempt's rows).

    A later attempt replaces the earlier one's steps from its own first step on (resume).
    """
    attempts = [a.rows for a in traj.attempts]
    keys = ("step", "loss", "grad_norm", "scale", "overflow")
    stitched: dict[str, list] = {k: [] for k in keys}
    for rows in attempts:
        start = rows["step"][0]
        keep = sum(1 for s in stitched["step"] if s < start)
        for k in keys:
            stitched[k] = stitched[k][:keep] + list(rows.get(k, [None] * len(rows["step"])))
        _, bad, _ = _steps(_columns(rows))
        if bad.any():
            break
    return stitched, attempts


def measure_trajectory(traj: Any) -> Measurement:
    """:func:`measure_signature` of a :class:`corpus.runs.Trajectory` (restarts included)."""
    stitched, attempts = history(traj)
    return measure_signature(stitched, attempts if len(attempts) > 1 else None, traj.steps_per_epoch)
