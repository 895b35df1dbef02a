"""Metrics tables written as CSV: PyTorch Lightning's ``metrics.csv`` and Keras' ``CSVLogger``.

* Lightning (``CSVLogger``): ``epoch,step,train_loss_step,val_loss,...``; each row holds the
  metrics of one ``log_metrics`` call and leaves the others empty. ``X_step``/``X_epoch``
  pairs (``self.log(..., on_step=True, on_epoch=True)``) become ``X`` and ``X_epoch_avg``
  (a running average, not a second loss); a lone ``X_epoch`` is ``X``. ``lr-Adam`` (the
  ``LearningRateMonitor``) is ``lr``.
* Keras (``CSVLogger``): ``epoch,accuracy,loss,val_accuracy,val_loss``, one row per epoch;
  the epoch is the step. ``append=True`` after a restart sends the epoch back: a new segment.
* Anything else with a header and a ``step``/``iteration``/``epoch`` column reads the same
  way (format ``csv_metrics``); with none of those, steps count data rows (and a note says so).

An empty cell is an absent value; ``nan``, ``inf``, ``-nan``, ``1.#QNAN`` ... are non-finite
values, kept. A cell that is no number at all is counted as unparsed (a column that is
mostly text, such as a timestamp, is not a metric and is skipped).

``line`` is the physical line of the row in the file (the header is line 1); the evidence
text is the row itself.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..types import RunSeries

if TYPE_CHECKING:
    import pandas as pd
from ._frame import build_series, metric_name, parse_floats
from ._sniff import STEP_COLUMNS as _STEP_COLUMNS
from ._sniff import delimiter as _delimiter
from ._sniff import sniff_csv

__all__ = ["read_csv_metrics", "sniff_csv"]

def _names(columns: list[str], kind: str) -> dict[str, str]:
    """Column -> canonical metric name (step/epoch columns excluded)."""
    lowered = {c.lower() for c in columns}
    out = {}
    for col in columns:
        key = col.strip()
        low = key.lower()
        if low in _STEP_COLUMNS or low == "epoch":
            continue
        if low.startswith("lr-") or low.startswith("lr_"):
            key = "lr"
        elif kind == "lightning_csv" and low.endswith("_step") and len(low) > 5:
            key = key[:-5]
        elif kind == "lightning_csv" and low.endswith("_epoch") and len(low) > 6:
            base = key[:-6]
            key = base + "_epoch_avg" if (low[:-6] + "_step") in lowered else base
        out[col] = metric_name(key)[0]
    return out


def read_csv_metrics(path: str, data: bytes | None = None, kind: str | None = None) -> RunSeries:
    """Read a Lightning ``metrics.csv`` / Keras ``CSVLogger`` file into a RunSeries."""
    import pandas as pd  # here: discovery sniffs CSV heads without pandas

    if data is None:
        from . import _read

        data = _read(path)[0]
    kind = kind or sniff_csv(data) or "csv_metrics"
    text = data.decode("utf-8", "replace").lstrip("\ufeff")
    first = text.split("\n", 1)[0]
    header = [c.strip() for c in first.rstrip("\r").split(_delimiter(first))]
    kept = _kept_columns(header)
    try:
        table = pd.read_csv(io.StringIO(text), sep=_delimiter(first), dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=False, engine="c", quoting=csv.QUOTE_MINIMAL,
                            usecols=kept if len(kept) < len(header) else None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"{path}: not a readable CSV metrics table ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    lines = np.arange(2, len(table) + 2)
    notes: list[str] = []
    if len(kept) < len(header):
        notes.append(f"{len(header)} columns: {len(header) - len(kept)} past the first {MAX_COLUMNS} "
                     f"metric columns (losses, learning rate and gradient norm first) were not read")
    step_col = next((c for c in table.columns if c.lower() in _STEP_COLUMNS), None)
    epoch_col = next((c for c in table.columns if c.lower() == "epoch"), None)
    epoch, _ = parse_floats(_fill(table[epoch_col])) if epoch_col else (np.full(len(table), np.nan), None)
    if step_col is not None:
        step, _ = parse_floats(_fill(table[step_col]))
    elif epoch_col is not None:
        step = epoch.copy()
    else:
        step = np.arange(len(table), dtype="float64")
        notes.append("the table has no step or epoch column: steps are counted rows")
    cols: dict[str, list[np.ndarray]] = {"step": [], "metric": [], "value": [], "line": [], "epoch": []}
    unparsed: list[tuple[int, str]] = []
    for col, name in _names(list(table.columns), kind).items():
        cells = table[col].to_numpy(dtype=object)
        present = np.flatnonzero(cells != "")
        if not len(present):
            continue
        values, ok = parse_floats(cells[present].tolist())
        if ok.mean() < 0.5:
            continue  # a text column (timestamps, names): not a metric
        unparsed += [(int(lines[i]), f"{col}={cells[i]!r}: not a number") for i in present[~ok]]
        present, values = present[ok], values[ok]
        cols["step"].append(step[present])
        cols["metric"].append(np.full(len(present), name, dtype=object))
        cols["value"].append(values)
        cols["line"].append(lines[present])
        cols["epoch"].append(epoch[present])
    merged = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}
    order = np.argsort(merged["line"], kind="stable")
    merged = {k: v[order] for k, v in merged.items()}
    raw_lines = text.split("\n")
    bad_lines = np.unique(merged["line"][~np.isfinite(merged["value"].astype(float))]).astype(int).tolist()
    texts = {ln: raw_lines[ln - 1].rstrip("\r") for ln in bad_lines if ln - 1 < len(raw_lines)}
    return build_series(step=merged["step"], metric=merged["metric"].astype(object), value=merged["value"],
                        line=merged["line"].astype("int64"), epoch=merged["epoch"], source=path, format=kind,
                        size=len(data), texts=texts, notes=notes, unparsed=len(unparsed),
                        unparsed_examples=unparsed[:5])


#: metric columns read from one table (a real one has tens; 100 k would be 100 k series)
MAX_COLUMNS = 1000
_FIRST = ("loss", "lr", "learning_rate", "grad", "norm", "scale")


def _kept_columns(header: list[str]) -> list[int]:
    """Positions of the columns to read: the step and epoch, then up to
    :data:`MAX_COLUMNS` others, loss-, lr- and grad-like names first, in table order."""
    if len(header) <= MAX_COLUMNS + 2:
        return list(range(len(header)))
    low = [c.lower() for c in header]
    position = [i for i, c in enumerate(low) if c in _STEP_COLUMNS or c == "epoch"]
    first = [i for i, c in enumerate(low) if i not in position and any(k in c for k in _FIRST)]
    taken = set(position) | set(first)
    rest = [i for i in range(len(header)) if i not in taken]
    return sorted(position + (first + rest)[:MAX_COLUMNS])


def _fill(column: pd.Series) -> list[str]:
    """Cells of a position column, empty ones as ``nan`` (a missing step, not a value)."""
    return [c if c != "" else "nan" for c in column.tolist()]
