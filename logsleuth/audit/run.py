"""The per-run function of the audit: a :class:`~.discover.Run` in, one flat row out.

It is what every engine runs (a local process, a pool worker, a Dask worker), so it takes
and returns plain picklable values and never raises: a broken file is a row whose
``error`` says what went wrong, never the end of the audit.

The row (:data:`ROW_COLUMNS`, then every feature of :data:`logsleuth.features.FEATURES`):

==================== ==========================================================
path                 the run: a directory or a single file (the row's key)
formats              formats read, ``+``-joined (``hf_trainer+tfevents``)
n_files, size        files that make up the run and their total size (bytes)
sha256               content hash of all of them (names, sizes and bytes)
verdict, slug        signature code (``N201``) and slug; empty when nothing was read
title                the verdict's title, filled from the evidence
confidence           0..1
failed               a failure was diagnosed (not healthy / benign / inconclusive)
nonfinite_step       first non-finite step (nan: none, or the log prints no step)
nonfinite_metric     its metric or event kind
cause, cause_slug    the most likely cause (``C01``), with its probability
n_warnings, warnings parse warnings (unparsed lines, truncated files, notes)
error                ``None``, or the one-line problem reading some artefact
seconds              time spent on the run
==================== ==========================================================
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from typing import Any

from ..errors import LogsleuthError
from ..types import RunSeries
from .discover import Artifact, Run, run_files

ROW_COLUMNS = ("path", "formats", "n_files", "size", "sha256", "verdict", "slug", "title", "confidence", "failed",
               "nonfinite_step", "nonfinite_metric", "cause", "cause_slug", "cause_probability", "n_warnings",
               "warnings", "error", "seconds")
#: a row's down-sampled train loss ``(steps, values)`` for the HTML page's sparklines; not a
#: column (the store keeps :func:`columns` only), so it lives as long as the audit process
SPARK_KEY = "_loss_spark"
#: the marker a worker returns for a run whose content hash is unchanged (``--resume``)
SKIPPED = "skipped"
_WARNINGS_MAX = 500


def columns() -> list[str]:
    """Every column of an audit row, in order (the row fields, then the features)."""
    from ..features import FEATURES

    return list(ROW_COLUMNS) + [f.name for f in FEATURES]


def content_hash(run: Run) -> str:
    """sha256 over every file of the run: relative name, size and bytes, in name order."""
    h = hashlib.sha256()
    root = run.path if os.path.isdir(run.path) else os.path.dirname(run.path)
    for path in run_files(run):
        h.update(os.path.relpath(path, root).encode("utf-8", "surrogateescape") + b"\0")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            h.update(size.to_bytes(8, "little"))
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _read_text_log(path: str) -> RunSeries:
    from ..api import start_parse

    parse = start_parse(path)
    return parse.series(list(parse.frames(jobs=1)))  # never a pool inside a pool worker


def read_view(artifact: Artifact, verify: bool = False) -> RunSeries | None:
    """One artefact as a RunSeries; None for a csv/json that is no metrics artefact."""
    from ..artifacts import artifact_kind, read_artifact

    if artifact.kind in ("mlflow", "tfevents"):
        return read_artifact(artifact.path, verify=verify)
    kind = artifact_kind(artifact.path)
    if kind is not None:
        return read_artifact(artifact.path)
    if artifact.kind == "log":
        return _read_text_log(artifact.path)
    return None


def _read_views(run: Run, verify: bool) -> tuple[list[RunSeries], list[str]]:
    """Every readable artefact of the run, and the one-line problems with the others."""
    from ..artifacts import read_tfevents

    views: list[RunSeries] = []
    problems: list[str] = []
    artifacts = [a for a in run.artifacts if a.size or len(run.artifacts) == 1]
    events = [a for a in artifacts if a.kind == "tfevents"]
    root = run.path if os.path.isdir(run.path) else None
    if events:  # one series for all event files of the run (train/ + validation/, restarts)
        try:
            views.append(read_tfevents([a.path for a in events], root=root, verify=verify, source=root))
        except (LogsleuthError, OSError) as exc:
            problems.append(_one_line(exc, ""))
        artifacts = [a for a in artifacts if a.kind != "tfevents"]
    for artifact in _latest_trainer_state(artifacts):
        try:
            view = read_view(artifact, verify)
        except (LogsleuthError, OSError, ValueError) as exc:
            problems.append(_one_line(exc, artifact.path))
            continue
        if view is not None:
            views.append(view)
        elif len(run.artifacts) == 1:  # the run's only file is no evidence: say why in its row
            problems.append(f"{artifact.path}: not a training log or metrics artefact logsleuth knows")
    return views, problems


def read_folder(path: str, verify: bool = False) -> RunSeries:
    """A run folder (``runs/run_x/`` holding ``train.log``, an HF output dir, ...) read as
    the audit reads one run: every artefact found, merged as views of one run. A folder of
    several runs, or of none, is an :class:`InputError` that says what to do instead."""
    from ..errors import InputError
    from .discover import discover
    from .merge import merge_views

    runs = discover(path)
    if len(runs) != 1:
        raise InputError(f"{path}: {len(runs)} runs in this folder; `logsleuth audit {path}` judges each, "
                         f"or pass one run's files" if runs else f"{path}: no training log or run artefact here")
    views, problems = _read_views(runs[0], verify)
    if not views:
        raise InputError(problems[0] if problems else f"{path}: no readable training log or artefact")
    return merge_views(views, runs[0].path)


def _latest_trainer_state(artifacts: list[Artifact]) -> list[Artifact]:
    """Checkpoints repeat ``trainer_state.json`` with a growing history: keep the one at the
    top of the run, else the highest ``checkpoint-N`` (the others hold nothing more)."""
    states = [a for a in artifacts if a.kind == "json"]
    if len(states) <= 1:
        return artifacts

    def rank(a: Artifact) -> tuple[int, int]:
        parent = os.path.basename(os.path.dirname(a.path))
        number = parent.split("-")[-1]
        return (0 if not parent.startswith("checkpoint-") else 1, -int(number) if number.isdigit() else 0)

    keep = min(states, key=rank)
    return [a for a in artifacts if a.kind != "json" or a is keep]


def _one_line(exc: BaseException, path: str) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename or path}: {exc.strerror}"
    elif not isinstance(exc, LogsleuthError):
        text = f"internal error ({type(exc).__name__}: {text})"
    return text if not path or path in text else f"{path}: {text}"


def _empty_row(run: Run) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in ROW_COLUMNS}
    row.update(path=run.path, formats="", n_files=len(run_files(run)) if os.path.exists(run.path) else 0,
               size=run.size, n_warnings=0, warnings="", failed=False)
    return row


def audit_run(run: Run, known_sha256: str | None = None, verify: bool = False) -> dict[str, Any]:
    """Audit one run: read every artefact, diagnose them as one run, flatten to a row.

    Returns ``{"path", "sha256", "status": "skipped"}`` instead when ``known_sha256`` equals
    the run's content hash (``--resume``). Never raises.
    """
    from ..api import diagnose
    from .merge import merge_views

    start = time.perf_counter()
    row = _empty_row(run)
    try:
        row["sha256"] = content_hash(run)
    except OSError as exc:
        row["error"] = _one_line(exc, run.path)
    if known_sha256 is not None and row["sha256"] == known_sha256:
        return {"path": run.path, "sha256": row["sha256"], "status": SKIPPED}
    try:
        views, problems = _read_views(run, verify)
        if problems:
            row["error"] = problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        if views:
            series = merge_views(views, run.path)
            row["formats"] = "+".join(sorted({v.format for v in views}))
            _fill(row, diagnose([series]))
            row[SPARK_KEY] = loss_spark(series)
        elif not problems:
            row["error"] = f"{run.path}: no readable training log or artefact"
    except Exception as exc:  # one odd run must never stop the audit: say so in its row
        row["error"] = _one_line(exc, run.path)
    row["seconds"] = round(time.perf_counter() - start, 4)
    return row


def loss_spark(series: RunSeries) -> tuple[list[float], list[float]]:
    """The run's loss for a sparkline (about 120 points); never fails the row."""
    from ..html import loss_spark as spark

    try:
        return spark(series)
    except Exception:  # a picture is never worth a lost row
        return [], []


def spark_for(run: Run, verify: bool = False) -> tuple[list[float], list[float]]:
    """Read a run again for its sparkline: one skipped by ``--resume`` carries none."""
    from .merge import merge_views

    try:
        views, _ = _read_views(run, verify)
        return loss_spark(merge_views(views, run.path)) if views else ([], [])
    except Exception:
        return [], []


def _fill(row: dict[str, Any], d: Any) -> None:
    v = d.verdict
    row.update(verdict=v.code, slug=v.slug, title=v.title, confidence=round(float(v.confidence), 4),
               failed=bool(d.failed), n_warnings=len(d.warnings))
    row["warnings"] = " | ".join(d.warnings)[:_WARNINGS_MAX]
    if d.first_nonfinite is not None:
        row["nonfinite_step"] = d.first_nonfinite.step
        row["nonfinite_metric"] = d.first_nonfinite.metric
    if d.causes:
        top = d.causes[0]
        row.update(cause=top.code, cause_slug=top.slug, cause_probability=round(float(top.probability), 4))
    for name, value in d.features.items():
        row[name] = float(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) \
            else math.nan
