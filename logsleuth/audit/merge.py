"""Several artefacts of one run (stdout log, event files, trainer_state) -> one RunSeries.

Why not ``diagnose([log, events, state])``? Several series passed to
:func:`logsleuth.api.diagnose` are *attempts* of one job: the same nan at the same step in
two of them is evidence of a nan at a fixed iteration (N202). Artefacts of one run are
not attempts but parallel *views* of one timeline, so they are merged instead:

* the **base** is the view with real steps (a console that prints none counts records,
  which would misplace everything else) and the most train-loss records (a text log wins
  a tie: it has real line numbers, events and hyperparameters);
* every other view adds the metrics the base lacks (``grad_norm`` from
  ``trainer_state.json``, eval curves from ``validation/`` event files), its events
  (tracebacks, overflow skips of the stdout log), hyperparameters, notes and unparsed
  counts. A metric the base already has is not added twice.
* added rows and events are placed on the base's timeline by step: each gets the line
  (and segment) of the last base record at or before its step, so "first non-finite by
  line" stays meaningful; their record text becomes the evidence text of that line.

The merged series takes the framework of the most specific view (a Hugging Face log's
``hf_trainer`` rather than ``tfevents``), so advice is given in that framework's terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ..catalog.frameworks import framework_for
from ..types import RunSeries, is_loss_metric

#: artefact formats -> the framework whose advice applies
ARTIFACT_FRAMEWORK = {"hf_trainer_state": "hf_trainer", "lightning_csv": "lightning", "keras_csv": "keras"}
_ARTIFACT_FORMATS = frozenset({"tfevents", "hf_trainer_state", "lightning_csv", "keras_csv", "csv_metrics", "mlflow"})


def framework_format(formats: Sequence[str]) -> str | None:
    """The first format (text logs first) that names a framework with its own advice."""
    ordered = [f for f in formats if f not in _ARTIFACT_FORMATS] + [f for f in formats if f in _ARTIFACT_FORMATS]
    for fmt in ordered:
        fmt = ARTIFACT_FRAMEWORK.get(fmt, fmt)
        if framework_for(fmt) != "generic":
            return fmt
    return None


def _train_loss_rows(series: RunSeries) -> int:
    f = series.frame
    if not len(f):
        return 0
    names = [m for m in f["metric"].cat.categories if is_loss_metric(str(m))]
    return int(((f["phase"] == "train") & f["metric"].isin(names)).sum())


def _steps_inferred(series: RunSeries) -> bool:
    """The log printed no step (a Hugging Face console without a bar): records were counted
    (the note :func:`logsleuth.features.steps_inferred` looks for)."""
    return any("no step" in note for note in series.notes)


def _base_index(views: Sequence[RunSeries]) -> int:
    scores = [(not _steps_inferred(v), _train_loss_rows(v), v.format not in _ARTIFACT_FORMATS, len(v.frame))
              for v in views]
    return max(range(len(views)), key=lambda i: scores[i])


class _Timeline:
    """The base's (step -> line, segment) map, for placing other views' records."""

    def __init__(self, base: pd.DataFrame) -> None:
        rows = base[base["step"].notna()]
        self.max_line = int(base["line"].max()) if len(base) else 0
        order = np.lexsort((rows["line"].to_numpy(), rows["step"].to_numpy(dtype="int64")))
        self.steps = rows["step"].to_numpy(dtype="int64")[order]
        self.lines = rows["line"].to_numpy(dtype="int64")[order]
        self.segments = rows["segment"].to_numpy(dtype="int64")[order]

    def place(self, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(line, segment) for each step (nan: after everything); before the first base
        step: the first base record."""
        steps = np.asarray(steps, dtype="float64")
        if not len(self.steps):
            return np.full(len(steps), self.max_line + 1, dtype="int64"), np.zeros(len(steps), dtype="int64")
        known = np.isfinite(steps)
        at = np.searchsorted(self.steps, np.where(known, steps, 0), side="right") - 1
        first = int(np.argmin(self.lines))
        at = np.where(at < 0, first, at)
        lines = np.where(known, self.lines[at], self.max_line + 1)
        segs = np.where(known, self.segments[at], self.segments.max())
        return lines.astype("int64"), segs.astype("int64")


def _event_steps(view: RunSeries) -> np.ndarray:
    """Each event's step, or the step of the view's last record at or before its line."""
    f = view.frame[view.frame["step"].notna()]
    lines, steps = f["line"].to_numpy(), f["step"].to_numpy(dtype="float64")
    out = []
    for e in view.events:
        if e.step is not None:
            out.append(float(e.step))
        elif not len(lines) or e.line > lines[-1]:
            out.append(np.nan)  # after the last record (a final traceback): after everything
        else:
            out.append(float(steps[max(int(np.searchsorted(lines, e.line, side="right")) - 1, 0)]))
    return np.asarray(out, dtype="float64")


def merge_views(views: Sequence[RunSeries], source: str) -> RunSeries:
    """One RunSeries from parallel views of one run (see the module docstring)."""
    views = list(views)
    if len(views) == 1:
        return _with_framework(views[0], [views[0].format], source)
    base = views[_base_index(views)]
    timeline = _Timeline(base.frame)
    frames, events, texts = [base.frame], list(base.events), dict(base.texts)
    hparams = dict(base.hparams)
    present = set(base.frame["metric"].astype(str).unique())
    for view in (v for v in views if v is not base):
        extra = view.frame[~view.frame["metric"].astype(str).isin(present)]
        if len(extra):
            present |= set(extra["metric"].astype(str).unique())
            lines, segs = timeline.place(extra["step"].to_numpy(dtype="float64", na_value=np.nan))
            for old, new in zip(extra["line"].to_numpy().tolist(), lines.tolist()):
                if old in view.texts:
                    texts[new] = texts[new] + "  |  " + view.texts[old] if new in texts else view.texts[old]
            frames.append(extra.assign(line=lines, segment=segs))
        if view.events:
            lines, segs = timeline.place(_event_steps(view))
            for e, line, seg in zip(view.events, lines.tolist(), segs.tolist()):
                events.append(replace(e, line=line, segment=seg))
                texts.setdefault(line, e.text)
        for key, value in view.hparams.items():
            hparams.setdefault(key, replace(value, line=0))
    frame = _concat(frames)
    merged = RunSeries(
        frame=frame, events=tuple(sorted(events, key=lambda e: e.line)), hparams=hparams, source=source,
        format=base.format, size=sum(v.size or 0 for v in views), compression=base.compression,
        encoding=base.encoding, unparsed=sum(v.unparsed for v in views),
        unparsed_examples=tuple(x for v in views for x in v.unparsed_examples)[:5], texts=texts,
        notes=tuple(n for v in views for n in v.notes if v is base or "no step" not in n))
    return _with_framework(merged, [v.format for v in views], source)


def _with_framework(series: RunSeries, formats: list[str], source: str) -> RunSeries:
    fmt = framework_format(formats)
    if fmt and framework_for(series.format) == "generic":
        series = replace(series, format=fmt)
    return series if series.source == source else replace(series, source=source)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of one run, in line order, with the series dtypes (categorical metric/phase)."""
    frames = [f for f in frames if len(f)] or frames[:1]
    if len(frames) == 1:
        return frames[0]
    metric = union_categoricals([f["metric"].astype("category") for f in frames])
    phase = union_categoricals([f["phase"].astype("category") for f in frames])
    frame = pd.concat([f.drop(columns=["metric", "phase"]) for f in frames], ignore_index=True)
    frame.insert(1, "metric", metric)
    frame.insert(3, "phase", phase)
    frame = frame[list(frames[0].columns)]
    return frame.sort_values("line", kind="stable").reset_index(drop=True)

