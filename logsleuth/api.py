"""What the CLI, the service and notebooks call: one place, so every surface agrees."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pyarrow as pa

from .bounds import cap_warnings
from .detect import detect
from .engine import Format
from .engine.schema import from_arrow
from .errors import InputError
from .io import LogInput, open_log
from .parallel import prepared_chunks
from .series import Assembler
from .types import RunSeries

if TYPE_CHECKING:

    from .types import Diagnosis, Verdict

Progress = Callable[[int], None]


@dataclass
class Parse:
    """A log being parsed: iterate :meth:`frames` (Arrow tables, chunk by chunk, bounded
    memory), then call :meth:`series`. pandas is imported only by :meth:`series`."""

    log: LogInput
    fmt: Format
    assembler: Assembler

    def frames(self, progress: Progress | None = None, jobs: int | None = None) -> Iterator[pa.Table]:
        """Finished rows chunk by chunk; ``jobs`` threads scan a large log in parallel.
        ``progress`` gets the bytes of the input consumed (compressed bytes when it is)."""
        reported = 0
        try:
            for nbytes, prep in prepared_chunks(self.log, self.fmt, jobs):
                frame = self.assembler.feed(prep)
                if progress:
                    at = self.log.consumed()
                    progress(nbytes if at is None else max(at - reported, 0))
                    reported = reported if at is None else max(at, reported)
                if frame.num_rows:
                    yield frame
        finally:
            self.log.close()

    def warnings(self, label: str) -> list[str]:
        """What a finished parse reports beside its rows (``logsleuth parse`` prints them on
        stderr): metric-looking lines it could not read, and what the input bounds cut."""
        a = self.assembler  # its counts, without building the series (and importing pandas)
        out = [f"{label}: {a.unparsed} metric-looking line(s) could not be parsed "
               f"(first at line {a.unparsed_examples[0][0]})"] if a.unparsed else []
        return out + cap_warnings(label, {**a.capped, **self.log.capped})

    def series(self, frames: list[pa.Table] | None = None) -> RunSeries:
        """The finished :class:`RunSeries` (pass the collected frames, or none for metadata only)."""
        from .buffered import NOTE, spread_stacked_steps

        a = self.assembler
        frame = from_arrow(frames or [])
        notes = []
        if a.inferred:
            notes.append(self.fmt.step_note or "the log prints no step: steps are counted logging records")
        elif self.fmt.bar_steps and a.bars_seen and len(frame):  # printed steps only: nothing stacked
            frame, spread = spread_stacked_steps(frame)
            notes += [NOTE] if spread else []
        return RunSeries(
            frame=frame, events=tuple(a.kept_events()), hparams=dict(a.hparams), source=self.log.name,
            format=self.fmt.name, size=self.log.size, compression=self.log.compression,
            encoding=self.log.encoding, unparsed=a.unparsed, unparsed_examples=tuple(a.unparsed_examples),
            texts=dict(a.texts), notes=tuple(notes), event_counts=dict(a.event_counts),
            capped={**a.capped, **self.log.capped},
        )


def start_parse(source: object, format: str | None = None) -> Parse:
    """Open ``source``, pick its format (or use ``format``), ready to stream."""
    log = open_log(source)
    try:
        fmt = detect(log.head, format)
    except Exception:
        log.close()
        raise
    return Parse(log, fmt, Assembler(fmt))


def read_log(source: object, format: str | None = None, progress: Progress | None = None) -> RunSeries:
    """Read a whole training log into a :class:`RunSeries`.

    Parameters
    ----------
    source : path, ``"-"`` or binary/text stream
        Plain or gzip/bz2/xz/zstd-compressed; any encoding.
    format : str, optional
        A format name from ``logsleuth formats``; detected from the head when omitted.

    Returns
    -------
    RunSeries
        ``.frame`` is the long pandas frame, ``.wide()`` the pivoted view.
    """
    parse = start_parse(source, format)
    return parse.series(list(parse.frames(progress)))


def _read_sampled(source: object, format: str | None, progress: Progress | None) -> RunSeries:
    """:func:`read_log` for diagnosis: a long log keeps a bounded sample of its rows (see
    :mod:`logsleuth.sample`), every non-finite value and the failure's surroundings in full."""
    from .sample import RowSample
    from .types import NONFINITE_EVENTS

    parse = start_parse(source, format)
    sample = RowSample()
    counts = parse.assembler.event_counts
    seen = 0
    for frame in parse.frames(progress):
        failures = sum(counts.get(kind, 0) for kind in NONFINITE_EVENTS)
        sample.add(frame, failures > seen)
        seen = failures
    series = parse.series(sample.tables())
    return replace(series, notes=(*series.notes, sample.note())) if sample.dropped else series



class _Sha256:
    """Hash a regular file in a thread (hashlib releases the GIL) while it is parsed."""

    def __init__(self, path: str) -> None:
        import threading

        self.path = path
        self.hex: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import hashlib

        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(4 << 20), b""):
                h.update(block)
        self.hex = h.hexdigest()

    def start(self) -> None:
        if self.thread.ident is None:
            self.thread.start()

    def wait(self) -> str | None:
        self.start()
        self.thread.join()
        return self.hex


def diagnose(sources: object | Sequence[object], format: str | None = None,
             progress: Callable[[str, int | None], Progress | None] | None = None) -> Diagnosis:
    """Diagnose one run from its log(s): several logs are attempts of the same job.

    Parameters
    ----------
    sources : path, stream, RunSeries, or a list of them
        Text logs, or run artefacts (TensorBoard event files or log dirs,
        ``trainer_state.json``, Lightning/Keras metrics CSVs, MLflow runs).
    format : str, optional
        Force the log format (detected otherwise).
    progress : callable, optional
        ``progress(path, size)`` returns a per-chunk callback (bytes read) or None.

    Returns
    -------
    Diagnosis
        Verdict (signature code, confidence), first non-finite moment, ranked causes with
        fixes for the framework that wrote the log, evidence lines, bad-sample location.
    """
    from .types import InputInfo

    items = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    runs, inputs = [], []
    for item in items:
        if isinstance(item, RunSeries):
            runs.append(item)
            inputs.append(InputInfo(item.source, item.format, item.size, None, item.compression))
            continue
        hasher = _Sha256(str(item)) if _is_file(item) else None
        if hasher:
            hasher.start()
        size = os.path.getsize(str(item)) if _is_file(item) else None
        run = read_run(item, format, progress(str(item), size) if progress else None)
        runs.append(run)
        sha256 = hasher.wait() if hasher else None
        inputs.append(InputInfo(run.source, run.format, run.size, sha256 if run.source == str(item) else None,
                                run.compression))
    runs, inputs, duplicates = _distinct(runs, inputs)
    # imported once the logs are read: pandas and the model are not held while scanning
    from .classify import classify
    from .explain import bad_sample, evidence, rank_causes
    from .features import compute_features
    from .types import Diagnosis

    features = compute_features(runs)
    verdict = classify(features)
    first = next((r.first_nonfinite() for r in runs if r.first_nonfinite()), None)
    framework = runs[0].format
    causes = rank_causes(verdict, features, framework) if not verdict.benign and verdict.code != "I000" else ()
    title = load_title(verdict, first, features, _last_train_step(runs))
    verdict = replace(verdict, title=title)
    return Diagnosis(
        verdict=verdict, first_nonfinite=first, causes=causes, evidence=evidence(runs, features, verdict),
        features=features, inputs=tuple(inputs), warnings=_warnings(runs) + duplicates,
        bad_sample=bad_sample(runs, features) if verdict.code == "N202" else None,
        next_steps=_next_steps(verdict, framework),
    )


def read_run(item: object, format: str | None = None, progress: Progress | None = None) -> RunSeries:
    """One input read as :func:`diagnose` reads it: a run artefact by its reader; a text
    log with a bounded sample of its rows (:func:`_read_sampled`), or, when it kept too
    little of the run to judge, the run's own metrics file beside it
    (:mod:`logsleuth.companion`). Training and the accuracy benchmark read logs this way."""
    if format is None and _is_artifact(item):
        from .artifacts import read_artifact

        try:
            return read_artifact(item)  # type: ignore[arg-type]
        except InputError:
            if not os.path.isdir(item):  # type: ignore[arg-type]
                raise
        from .audit.run import read_folder  # a run folder of text logs: as audit reads it

        return read_folder(str(item))
    return _or_its_companion(item, _read_sampled(item, format, progress))


def _or_its_companion(item: object, run: RunSeries) -> RunSeries:
    """The run's own metrics file (:mod:`logsleuth.companion`) when the text log kept too
    little of the run to judge, with a note naming it; else the log's series."""
    from . import companion

    if not _is_file(item) or not companion.needs_companion(run):
        return run
    path = companion.companion_of(str(item))
    if path is None:
        return run
    from .artifacts import read_artifact

    try:
        other = read_artifact(path)
    except InputError:
        return run
    kept = companion.records(run)
    if companion.records(other) <= kept:
        return run
    note = (f"read in place of {os.path.basename(str(item))}, which holds only {kept} training "
            f"record(s) (a progress bar's final state?): this is the same run's metrics file, beside it")
    return replace(other, notes=(note, *other.notes))


def _distinct(runs: list[RunSeries], inputs: list) -> tuple[list[RunSeries], list, tuple[str, ...]]:
    """One attempt per distinct content: the same file given twice is not two attempts
    (a recurrence across them would be no evidence at all)."""
    seen: dict[str, str] = {}
    kept_runs, kept_inputs, notes = [], [], []
    for run, info in zip(runs, inputs):
        if info.sha256 and info.sha256 in seen:
            notes.append(f"{info.path}: the same content as {seen[info.sha256]}; read once")
            continue
        if info.sha256:
            seen[info.sha256] = info.path
        kept_runs.append(run)
        kept_inputs.append(info)
    return kept_runs, kept_inputs, tuple(notes)


def _is_file(item: object) -> bool:
    return isinstance(item, (str, os.PathLike)) and os.path.isfile(item)


def _is_artifact(item: object) -> bool:
    """A run artefact rather than a text log: an event file, ``trainer_state.json``, a
    metrics CSV, or a directory (a TensorBoard log dir or an MLflow run)."""
    if not isinstance(item, (str, os.PathLike)) or not (os.path.isfile(item) or os.path.isdir(item)):
        return False  # a FIFO or a device is read as a log: sniffing it would consume it
    from .artifacts import artifact_kind

    return os.path.isdir(item) or artifact_kind(str(item)) is not None


def load_title(verdict: Verdict, first: object, features: Mapping[str, float] | None = None,
               last_step: float | None = None) -> str:
    """The signature's title filled from the evidence: the first non-finite moment for a
    failure; the last step for a healthy or stalled run; the overflow count."""
    from .catalog import load_catalog
    from .types import nonfinite_words

    f = features or {}
    metric, step = getattr(first, "metric", None), getattr(first, "step", None)
    if first is None or verdict.code in ("H001", "S401", "R601", "F501"):
        metric, step = "the loss", last_step if verdict.code in ("H001", "S401") else None
    sig = load_catalog().signature(verdict.code)
    return sig.format_title(step=step, metric=nonfinite_words(metric) if metric else None,
                            count=f.get("n_overflow_events") or None)


def _last_train_step(runs: list[RunSeries]) -> float | None:
    steps = [r.frame["step"][r.frame["phase"] == "train"].astype("float64").max() for r in runs if len(r.frame)]
    steps = [float(s) for s in steps if not math.isnan(s)]
    return max(steps) if steps else None


def _warnings(runs: list[RunSeries]) -> tuple[str, ...]:
    out = []
    for r in runs:
        if r.unparsed:
            out.append(f"{r.source}: {r.unparsed} metric-looking line(s) could not be parsed "
                       f"(first at line {r.unparsed_examples[0][0]})")
        out += [f"{r.source}: {note}" for note in r.notes]
        out += cap_warnings(r.source, r.capped)
        if r.frame.empty and not r.events:
            out.append(f"{r.source}: no training metrics found (format {r.format}); try --log-format")
    return tuple(out)


#: run artefacts written by PyTorch jobs (text formats say so themselves: ``Format.replayable``)
_REPLAYABLE_ARTIFACTS = frozenset({"hf_trainer_state"})


def _replayable(format_name: str) -> bool:
    """Whether ``logsleuth replay`` can re-run the failing step of a job that wrote this."""
    from .registry import find_format

    fmt = find_format(format_name)
    return fmt.replayable if fmt is not None else format_name in _REPLAYABLE_ARTIFACTS


def _next_steps(verdict: Verdict, framework: str) -> tuple[str, ...]:
    if verdict.code == "I000":
        return ("the log is too short or ambiguous: pass more of it (or every attempt of the job)",)
    if verdict.benign:
        return ()
    steps = [f"logsleuth explain {verdict.code}"]
    if _replayable(framework):  # the log narrows the causes; re-running the step confirms one
        steps.append("confirm the cause: logsleuth replay --adapter ADAPTER --checkpoint CKPT "
                     "--from-diagnosis REPORT.json (logsleuth replay --help)")
    return tuple(steps)
