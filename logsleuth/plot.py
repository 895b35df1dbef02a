"""``logsleuth diagnose --plot loss.png``: the report's curves as a plain picture.

Why a picture beside the HTML page: it pastes into a chat, a ticket or a slide. The data
are the HTML report's (:func:`logsleuth.html.run_curves`: one curve per attempt, thinned
for drawing with the failure's neighbourhood kept; a log y axis where
:func:`logsleuth.charts.use_log_axis` says the values span decades); only the drawing
differs. A nan leaves a gap in a line, so the first non-finite step is drawn explicitly:
a red vertical line with its label in every panel, and red ticks along the top where a
value was non-finite.

matplotlib is the ``[plot]`` extra, imported only here, drawing with its Agg canvas (no
display, no pyplot state).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from .charts import NONFINITE_COLOUR, PALETTE, Curve, Marker, use_log_axis
from .errors import InputError
from .html import CHART_METRICS, _loss_name, _marker, run_curves
from .types import Diagnosis, RunSeries

PLOT_HINT = "--plot needs matplotlib: pip install 'logsleuth[plot]'"
#: inches per panel, and the picture's width (at :data:`DPI`)
PANEL_HEIGHT, WIDTH, DPI = 2.4, 9.0, 110


def require_matplotlib() -> None:
    """Fail before the diagnosis runs (exit code 2 in the CLI) when the extra is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(PLOT_HINT) from None


def _panels(d: Diagnosis, runs: Sequence[RunSeries], keep: float | None) -> list[tuple[str, list[Curve]]]:
    """(title, curves) of each metric the run printed: loss, grad norm, lr, loss scale."""
    panels = []
    for metric, title in CHART_METRICS:
        name = _loss_name(runs) if metric == "loss" else metric
        curves = run_curves(runs, name, keep) if name else []
        if any(len(c.steps) for c in curves):
            panels.append((title if name == metric else f"{title} ({name})", curves))
    return panels


def _draw(ax: Any, title: str, curves: Sequence[Curve], marker: Marker | None, several: bool,
          label: bool) -> None:
    """One panel; ``label``: write the marker's words at its line (the top panel)."""
    values = np.concatenate([c.values for c in curves])
    log = use_log_axis(values)
    for c in curves:
        colour = PALETTE[c.attempt % len(PALETTE)]
        finite = np.where(np.isfinite(c.values), c.values, np.nan)  # a gap where the log printed nan/inf
        ax.plot(c.steps, finite, color=colour, lw=1.1, label=f"attempt {c.attempt + 1}" if several else None)
        if c.attempt and len(c.steps):
            ax.axvline(float(c.steps[0]), color=colour, ls="--", lw=0.9)
        bad = c.steps[~np.isfinite(c.values)]
        if len(bad):
            ax.plot(bad, np.full(len(bad), 0.97), "|", color=NONFINITE_COLOUR, ms=7,
                    transform=ax.get_xaxis_transform())
    if log:
        ax.set_yscale("log")
    if marker is not None:
        ax.axvline(marker.step, color=NONFINITE_COLOUR, lw=1.6)
        if label:
            ax.annotate(marker.label, (marker.step, 1.0), xycoords=("data", "axes fraction"), xytext=(-4, -12),
                        textcoords="offset points", ha="right", color=NONFINITE_COLOUR, fontsize=8)
    ax.set_title(title + (" (log scale)" if log else ""), loc="left", fontsize=10)
    ax.grid(True, alpha=0.3)
    if several:
        ax.legend(loc="best", fontsize=8)


def diagnosis_png(d: Diagnosis, runs: Sequence[RunSeries]) -> bytes:
    """The curves of ``runs`` (as the diagnosis read them) with the verdict, as PNG bytes."""
    out = io.BytesIO()
    diagnosis_figure(d, runs).savefig(out, format="png")
    return out.getvalue()


def diagnosis_figure(d: Diagnosis, runs: Sequence[RunSeries]) -> Any:
    """The matplotlib ``Figure`` (on an Agg canvas): one panel per metric, the verdict above."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    marker = _marker(d)
    panels = _panels(d, runs, marker.step if marker else None)
    fig = Figure(figsize=(WIDTH, PANEL_HEIGHT * max(len(panels), 1) + 0.9), dpi=DPI)
    FigureCanvasAgg(fig)
    v = d.verdict
    fig.suptitle(f"{v.code} {v.slug}: {v.title}  ({v.confidence:.2f})"[:120], fontsize=11, x=0.01, ha="left")
    axes = fig.subplots(max(len(panels), 1), 1, sharex=True, squeeze=False)[:, 0]
    several = any(c.attempt for _, curves in panels for c in curves)
    for n, (ax, (title, curves)) in enumerate(zip(axes, panels)):
        _draw(ax, title, curves, marker, several, label=n == 0)
    if not panels:
        axes[0].text(0.5, 0.5, "no training curve in the log", ha="center", va="center", transform=axes[0].transAxes)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    return fig
