"""Curves for the visual report: what to draw (down-sampled, attempts apart) and inline SVG.

Why a module of its own: :mod:`logsleuth.html` lays out a page, this one turns numbers into
``<svg>`` markup; both are pure (values in, text out), so the tests read coordinates back.

Down-sampling is for drawing only: a curve keeps at most ``max_points`` points, and in each
bucket the first, last, lowest, highest and first non-finite point survive, so a spike or
a nan is never averaged away. The rows around the first non-finite step (the failure
neighbourhood) are always kept in full. A non-finite value breaks the line (a gap);
the first non-finite step gets a vertical marker whose ``data-step`` the tests check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

#: a series spanning more than this ratio (max / min of its positive values) is drawn on a log axis
LOG_SPAN = 100.0
MAX_POINTS = 2000
#: rows kept in full on each side of the first non-finite point
NEIGHBOURHOOD = 50
#: one colour per attempt (segment), cycling
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
NONFINITE_COLOUR = "#d62728"


@dataclass(frozen=True)
class Curve:
    """One attempt's points of one metric, in step order (values may be nan/inf)."""

    attempt: int
    steps: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Marker:
    """The first non-finite moment: a vertical line at ``step`` with the evidence text."""

    step: float
    label: str
    text: str
    line: int | None = None


def downsample(steps: np.ndarray, values: np.ndarray, max_points: int = MAX_POINTS,
               keep_step: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` (about) of the points, min/max per bucket, non-finite kept.

    ``keep_step`` is the first non-finite step: its point and :data:`NEIGHBOURHOOD` rows on
    each side are kept whatever the budget, so the failure is never thinned out.
    """
    n = len(values)
    if n <= max_points:
        return steps, values
    keep = np.zeros(n, dtype=bool)
    keep[[0, n - 1]] = True
    if keep_step is not None:
        at = int(np.searchsorted(steps, keep_step))
        keep[max(at - NEIGHBOURHOOD, 0): min(at + NEIGHBOURHOOD + 1, n)] = True
    buckets = max(max_points // 5, 1)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    finite = np.isfinite(values)
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        keep[[lo, hi - 1]] = True
        part = finite[lo:hi]
        if part.any():
            masked = np.where(part, values[lo:hi], np.nan)
            keep[lo + int(np.nanargmin(masked))] = keep[lo + int(np.nanargmax(masked))] = True
        if not part.all():
            keep[lo + int(np.argmin(part))] = True  # the bucket's first non-finite point: a gap survives
    return steps[keep], values[keep]


def use_log_axis(values: np.ndarray) -> bool:
    """Log y when every finite value is positive and they span more than two decades."""
    finite = values[np.isfinite(values)]
    if not len(finite) or finite.min() <= 0:
        return False
    return float(finite.max() / finite.min()) > LOG_SPAN


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 x 10^k apart) covering ``lo``..``hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(count, 1)
    base = 10 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 5, 10) if m * base >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten between ``lo`` and ``hi`` (thinned to at most ~6 labels)."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    every = max(1, math.ceil((b - a + 1) / 6))
    return [10.0 ** e for e in range(a, b + 1, every) if lo <= 10.0 ** e <= hi * 1.0000001]


def fmt(value: float) -> str:
    """A short tick or tooltip label: ``0.01``, ``2.5``, ``1e+06``, ``3.2e-05``."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.2g}".replace("e+0", "e+").replace("e-0", "e-")
    return f"{value:.4g}"


@dataclass(frozen=True)
class _Frame:
    """The plot area and the two axis mappings (data -> pixels)."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x0: float
    x1: float
    y0: float
    y1: float
    log: bool

    def x(self, step: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (step - self.x0) / span * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        v, lo, hi = (math.log10(value), math.log10(self.y0), math.log10(self.y1)) if self.log else \
            (value, self.y0, self.y1)
        span = (hi - lo) or 1.0
        return self.height - self.bottom - (v - lo) / span * (self.height - self.top - self.bottom)


def _frame_for(curves: Sequence[Curve], marker: Marker | None, width: int, height: int) -> _Frame:
    steps = np.concatenate([c.steps for c in curves]) if curves else np.array([0.0])
    values = np.concatenate([c.values for c in curves]) if curves else np.array([])
    finite = values[np.isfinite(values)]
    log = use_log_axis(values)
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    if hi == lo:  # a constant (an lr of 0.01 throughout): centre it
        pad = abs(lo) * 0.5 or 1.0
        lo, hi = lo - pad, hi + pad
    elif not log:
        pad = (hi - lo) * 0.05
        lo, hi = lo - pad, hi + pad
    x0, x1 = float(np.nanmin(steps)), float(np.nanmax(steps))
    if marker is not None:
        x0, x1 = min(x0, marker.step), max(x1, marker.step)
    return _Frame(width, height, 58, 12, 22, 30, x0, x1 if x1 > x0 else x0 + 1, lo, hi, log)


def _path(f: _Frame, steps: np.ndarray, values: np.ndarray) -> str:
    """An SVG path that lifts the pen at every non-finite value (a gap, as in the log)."""
    parts: list[str] = []
    pen_down = False
    for s, v in zip(steps.tolist(), values.tolist()):
        if not math.isfinite(v) or (f.log and v <= 0):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{f.x(s):.1f},{f.y(v):.1f}")
        pen_down = True
    return "".join(parts)


def _axes(f: _Frame) -> list[str]:
    out = [f'<line class="axis" x1="{f.left}" y1="{f.height - f.bottom}" x2="{f.width - f.right}" '
           f'y2="{f.height - f.bottom}"/>',
           f'<line class="axis" x1="{f.left}" y1="{f.top}" x2="{f.left}" y2="{f.height - f.bottom}"/>']
    yticks = log_ticks(f.y0, f.y1) if f.log else nice_ticks(f.y0, f.y1)
    for t in yticks:
        y = f.y(t)
        out.append(f'<line class="grid" x1="{f.left}" y1="{y:.1f}" x2="{f.width - f.right}" y2="{y:.1f}"/>'
                   f'<text class="tick" x="{f.left - 4}" y="{y + 3:.1f}" text-anchor="end">{fmt(t)}</text>')
    for t in nice_ticks(f.x0, f.x1, 6):
        x = f.x(t)
        out.append(f'<line class="axis" x1="{x:.1f}" y1="{f.height - f.bottom}" x2="{x:.1f}" '
                   f'y2="{f.height - f.bottom + 4}"/><text class="tick" x="{x:.1f}" y="{f.height - f.bottom + 15}" '
                   f'text-anchor="middle">{fmt(t)}</text>')
    out.append(f'<text class="axis-label" x="{f.width - f.right}" y="{f.height - 3}" text-anchor="end">step</text>')
    return out


def _marker(f: _Frame, m: Marker) -> str:
    x = f.x(m.step)
    line = f' data-line="{m.line}"' if m.line is not None else ""
    anchor = "end" if x > f.width * 0.7 else "start"
    dx = -4 if anchor == "end" else 4
    return (f'<g class="nonfinite-marker" data-step="{fmt_step(m.step)}"{line}><title>{escape(m.text)}</title>'
            f'<line x1="{x:.1f}" y1="{f.top - 8}" x2="{x:.1f}" y2="{f.height - f.bottom}" '
            f'stroke="{NONFINITE_COLOUR}" stroke-width="1.5"/>'
            f'<text x="{x + dx:.1f}" y="{f.top - 10}" text-anchor="{anchor}" fill="{NONFINITE_COLOUR}">'
            f'{escape(m.label)}</text></g>')


def fmt_step(step: float) -> str:
    """A step as the log prints it: an integer when it is one."""
    return str(int(step)) if float(step).is_integer() else f"{step:g}"


def _attempt_lines(f: _Frame, curves: Sequence[Curve]) -> list[str]:
    """A dashed vertical line where each later attempt starts."""
    out = []
    for c in curves:
        if c.attempt and len(c.steps):
            x = f.x(float(c.steps[0]))
            out.append(f'<g class="attempt-start" data-attempt="{c.attempt + 1}"><line x1="{x:.1f}" y1="{f.top}" '
                       f'x2="{x:.1f}" y2="{f.height - f.bottom}" stroke="{_colour(c.attempt)}" '
                       f'stroke-dasharray="4 3"/><text class="tick" x="{x + 3:.1f}" y="{f.top + 9}" '
                       f'fill="{_colour(c.attempt)}">attempt {c.attempt + 1}</text></g>')
    return out


def _colour(attempt: int) -> str:
    return PALETTE[attempt % len(PALETTE)]


def _nonfinite_ticks(f: _Frame, curves: Sequence[Curve]) -> list[str]:
    """Small red ticks along the top edge where the value was nan/inf (the line has a gap)."""
    out = []
    for c in curves:
        bad = c.steps[~np.isfinite(c.values)]
        for s in bad[:: max(1, len(bad) // 200)].tolist():
            out.append(f'<line class="nonfinite" x1="{f.x(s):.1f}" y1="{f.top}" x2="{f.x(s):.1f}" y2="{f.top + 5}"/>')
    return out


def line_chart(title: str, curves: Sequence[Curve], marker: Marker | None = None,
               width: int = 560, height: int = 230) -> str:
    """One metric as an inline ``<svg>``: axes with ticks, one colour per attempt, log y when
    the values span more than two decades, the first non-finite step marked."""
    f = _frame_for(curves, marker, width, height)
    scale = " (log scale)" if f.log else ""
    body = [f'<svg class="chart" data-metric="{escape(title)}" data-log="{str(f.log).lower()}" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">',
            f'<text class="chart-title" x="{f.left}" y="12">{escape(title)}{scale}</text>', *_axes(f),
            *_attempt_lines(f, curves)]
    for c in curves:
        d = _path(f, c.steps, c.values)
        if d:
            body.append(f'<path class="curve" data-attempt="{c.attempt + 1}" d="{d}" stroke="{_colour(c.attempt)}"/>')
    body += _nonfinite_ticks(f, curves)
    if marker is not None:
        body.append(_marker(f, marker))
    body.append("</svg>")
    return "\n".join(body)


def sparkline(steps: Sequence[float], values: Sequence[float], marker_step: float | None = None,
              width: int = 140, height: int = 28) -> str:
    """A tiny loss curve for a table cell (log y over two decades; the failure step in red)."""
    s, v = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    if not len(s):
        return '<span class="muted">no loss</span>'
    curve = Curve(0, s, v)
    f = _frame_for([curve], Marker(marker_step, "", "") if marker_step is not None else None, width, height)
    f = _Frame(width, height, 2, 2, 2, 2, f.x0, f.x1, f.y0, f.y1, f.log)
    out = [f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'xmlns="http://www.w3.org/2000/svg"><path d="{_path(f, s, v)}" stroke="{PALETTE[0]}"/>']
    if marker_step is not None:
        x = f.x(marker_step)
        out.append(f'<line data-step="{fmt_step(marker_step)}" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" '
                   f'stroke="{NONFINITE_COLOUR}"/>')
    return "".join(out) + "</svg>"
