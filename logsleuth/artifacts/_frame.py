"""Columns -> :class:`~logsleuth.types.RunSeries`: what every artefact reader shares.

Artefacts are not text logs, so two words of the series change meaning (and the readers
say so in their docstrings):

* ``line`` is the 1-based index of the *record* that carried the value, in the order the
  run wrote it (an event-file record, a ``log_history`` entry, a CSV data row's physical
  line, an MLflow metric line in time order). Evidence shows the record as ``texts[line]``.
* ``segment`` starts at 0 and goes up by one wherever the main train metric's step goes
  back (a resumed or re-queued job appending to the same artefact), or at a restart
  record (an event file's ``SessionLog START`` after training began).

Metric names are the text parsers' canonical names (:func:`logsleuth.engine.canonical`),
with namespaces read the TensorBoard way: ``train/loss``, ``Loss/train`` -> ``loss``;
``eval/loss``, ``Loss/val``, ``validation/epoch_loss`` -> ``eval_loss``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..engine import canonical, phase_of
from ..types import Event, Hparam, RunSeries, is_loss_metric

#: namespace words that say the phase rather than the metric
EVAL_WORDS = frozenset({"eval", "evaluation", "val", "valid", "validation", "test", "dev"})
TRAIN_WORDS = frozenset({"train", "training"})
#: names that position a record (they become the ``step``/``epoch`` columns, not metrics)
POSITION_NAMES = frozenset({"step", "global_step", "epoch", "steps", "iteration", "iter"})

_SPLIT = re.compile(r"[/\\]+")
_NAME_CACHE: dict[tuple[str, str | None], tuple[str, str]] = {}


def metric_name(key: str, phase_hint: str | None = None) -> tuple[str, str]:
    """``(canonical metric, phase)`` for an artefact key such as ``Loss/train``.

    Namespace parts that name a phase are dropped and decide the phase; the other parts
    are joined with ``_`` (``Loss/cls`` -> ``loss_cls``). ``phase_hint`` ("eval" for an
    event file under ``validation/``) applies when the key itself does not say.
    """
    hit = _NAME_CACHE.get((key, phase_hint))
    if hit is not None:
        return hit
    phase = None
    kept = []
    for part in _SPLIT.split(key.strip()):
        low = part.strip().lower()
        if low in EVAL_WORDS:
            phase = "eval"
        elif low in TRAIN_WORDS:
            phase = phase or "train"
        elif low:
            kept.append(part)
    name = canonical("_".join(kept) or key)
    if (phase or phase_hint) == "eval" and not name.startswith("eval_"):
        name = "eval_" + name
    out = (name, phase_of(name))
    if len(_NAME_CACHE) < 50_000:
        _NAME_CACHE[(key, phase_hint)] = out
    return out


def _int_steps(step: Sequence[object] | np.ndarray) -> pd.arrays.IntegerArray:
    arr = np.asarray(step, dtype=object) if not isinstance(step, np.ndarray) else step
    if arr.dtype.kind in "iu":
        return pd.arrays.IntegerArray(arr.astype("int64"), np.zeros(len(arr), dtype=bool))
    if arr.dtype.kind == "f":
        floats = arr.astype("float64")
    else:
        floats = pd.to_numeric(pd.Series(arr, dtype=object), errors="coerce").to_numpy(dtype="float64")
    ok = np.isfinite(floats)
    out = np.zeros(len(floats), dtype="int64")
    out[ok] = floats[ok].astype("int64")
    return pd.arrays.IntegerArray(out, ~ok)


def _main_metric(frame: pd.DataFrame, train: np.ndarray) -> int | None:
    """Category code of the metric whose steps decide restarts: ``loss`` if printed, else the
    most frequent train loss-like metric, else the most frequent train metric."""
    cats = frame["metric"].cat.categories
    counts = np.bincount(frame["metric"].cat.codes.to_numpy()[train], minlength=len(cats))
    if not counts.any():
        return None
    names = [str(c) for c in cats]
    if "loss" in names and counts[names.index("loss")]:
        return names.index("loss")
    lossy = [i for i, n in enumerate(names) if counts[i] and is_loss_metric(n)]
    if lossy:
        return max(lossy, key=lambda i: counts[i])
    return int(np.argmax(counts))


def segments(frame: pd.DataFrame, restart_lines: Iterable[int] = ()) -> np.ndarray:
    """Segment per row (``frame`` sorted by line): +1 where the main train metric's step
    goes back, and at every restart line that comes after the first train record."""
    lines = frame["line"].to_numpy()
    bounds: set[int] = set()
    train = ((frame["phase"] == "train") & frame["step"].notna()).to_numpy()
    main = _main_metric(frame, train) if train.any() else None
    if main is not None:
        rows = train & (frame["metric"].cat.codes.to_numpy() == main)
        steps = frame["step"].to_numpy(dtype="float64", na_value=np.nan)[rows]
        back = np.flatnonzero(steps[1:] < steps[:-1]) + 1
        bounds.update(lines[rows][back].tolist())
        first = int(lines[train].min())
        bounds.update(line for line in restart_lines if line > first)
    if not bounds:
        return np.zeros(len(frame), dtype="int64")
    return np.searchsorted(np.sort(np.fromiter(bounds, dtype="int64")), lines, side="right").astype("int64")


def _categorical(metric: object) -> pd.Categorical:
    if isinstance(metric, pd.Categorical):
        return metric.remove_unused_categories()
    return pd.Categorical(np.asarray(metric, dtype=object))


def _phases(metric: pd.Categorical, phase: Sequence[str] | np.ndarray | None) -> pd.Categorical:
    if phase is not None:
        return pd.Categorical(np.asarray(phase, dtype=object))
    is_eval = np.asarray([phase_of(str(c)) == "eval" for c in metric.categories] or [False])
    codes = is_eval[np.maximum(metric.codes, 0)].astype("int8")
    return pd.Categorical.from_codes(codes, categories=["train", "eval"]).remove_unused_categories()


def build_series(*, step: Sequence[object] | np.ndarray, metric: Sequence[str] | pd.Categorical,
                 value: Sequence[float] | np.ndarray, line: Sequence[int] | np.ndarray, source: str, format: str,
                 phase: Sequence[str] | np.ndarray | None = None, epoch: Sequence[float] | np.ndarray | None = None,
                 size: int | None = None, texts: Mapping[int, str] | None = None, notes: Sequence[str] = (),
                 events: Sequence[Event] = (), hparams: Mapping[str, Hparam] | None = None, unparsed: int = 0,
                 unparsed_examples: Sequence[tuple[int, str]] = (), restart_lines: Iterable[int] = (),
                 compression: str = "none") -> RunSeries:
    """A RunSeries whose frame has exactly the dtypes :func:`logsleuth.api.read_log` gives.

    ``metric`` may be a ``pandas.Categorical`` (cheapest); ``phase`` defaults to what the
    metric name says (``eval_*`` is eval). ``texts`` should hold at least the record text of
    every non-finite value (the evidence); events get their segment from their line.
    """
    cat = _categorical(metric)
    n = len(cat)
    frame = pd.DataFrame({
        "step": _int_steps(step) if n else pd.array([], dtype="Int64"),
        "metric": cat,
        "value": np.asarray(value, dtype="float64"),
        "phase": _phases(cat, phase),
        "segment": np.zeros(n, dtype="int64"),
        "rank": pd.arrays.IntegerArray(np.zeros(n, dtype="int64"), np.ones(n, dtype=bool)),
        "epoch": np.asarray(epoch, dtype="float64") if epoch is not None else np.full(n, np.nan),
        "line": np.asarray(line, dtype="int64"),
    })
    if n and not (np.diff(frame["line"].to_numpy()) >= 0).all():
        frame = frame.sort_values("line", kind="stable").reset_index(drop=True)
    restart_lines = list(restart_lines)
    if n:
        frame["segment"] = segments(frame, restart_lines)
    events = list(events)
    if events and n:
        lines, segs = frame["line"].to_numpy(), frame["segment"].to_numpy()
        pos = np.searchsorted(lines, [e.line for e in events], side="right") - 1
        ev_segs = np.where(pos >= 0, segs[np.maximum(pos, 0)], 0)
        events = [Event(e.kind, e.step, e.line, e.text, e.fields, int(s)) for e, s in zip(events, ev_segs)]
    return RunSeries(frame=frame, events=tuple(events), hparams=dict(hparams or {}), source=source, format=format,
                     size=size, compression=compression, unparsed=unparsed,
                     unparsed_examples=tuple(unparsed_examples), texts=dict(texts or {}), notes=tuple(notes))


def nonfinite_lines(value: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distinct lines holding a non-finite value (the ones whose text is evidence)."""
    value = np.asarray(value, dtype="float64")
    return np.unique(np.asarray(line)[~np.isfinite(value)])


def parse_floats(cells: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Floats from text cells in every spelling of nan/inf; ``(values, ok)``.

    The vectorised path takes what Python's ``float`` reads (``nan``, ``inf``,
    ``Infinity``); the rare rest goes through :func:`logsleuth.engine.to_float`
    (``-nan``, ``1.#QNAN``, ``nan(ind)``). ``ok`` is False for a cell that is no number.
    """
    from ..engine import to_float

    cells = list(cells)
    try:
        return np.asarray(cells, dtype="float64"), np.ones(len(cells), dtype=bool)
    except ValueError:
        pass
    out = np.full(len(cells), np.nan)
    ok = np.ones(len(cells), dtype=bool)
    for i, cell in enumerate(cells):
        try:
            out[i] = float(cell)
        except ValueError:
            try:
                out[i] = to_float(cell.strip())
            except (ValueError, TypeError):
                ok[i] = False
    return out, ok
