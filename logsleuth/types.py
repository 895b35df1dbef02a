"""The central types: :class:`RunSeries` and the evidence it carries.

A printed ``nan`` is a NaN value; a value the log did not print is an absent row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from .engine.schema import COLUMNS as COLUMNS  # the long frame, defined once (re-exported)
from .engine.schema import validate

#: event kinds that mean "a non-finite number happened here" even without a nan value
NONFINITE_EVENTS = frozenset({"overflow", "nonfinite", "loss_missing", "terminate_on_nan", "min_loss_scale"})
#: how a report names a non-finite moment that is an event, not a printed value
_EVENT_WORDS = {"nonfinite": "the loss (reported)", "terminate_on_nan": "the loss (TerminateOnNaN)",
                "loss_missing": "the loss (left out of the line)", "overflow": "the fp16 gradients (overflow skip)",
                "min_loss_scale": "the fp16 loss scale (at its minimum)"}


def nonfinite_words(metric: str) -> str:
    """What went non-finite, in a reader's words: the metric as printed (``loss``,
    ``grad_norm``), or for an event what the log reported."""
    return _EVENT_WORDS.get(metric, metric)


#: metric names whose non-finite value counts as the run going non-finite
GRAD_METRICS = frozenset({"grad_norm"})


def is_loss_metric(name: str) -> bool:
    """Loss-like metrics: ``loss``, ``eval_loss``, components like ``loss_cls``, ``rpn_bbox_loss``."""
    return "loss" in name and not name.startswith("loss_scale") and not name.endswith("loss_scale")


@dataclass(frozen=True)
class Event:
    """Something the log says happened: an overflow skip, a traceback, a restart, a checkpoint.

    ``fields`` holds what the message printed (e.g. ``loss_scale``); ``text`` the line.
    """

    kind: str
    step: int | None
    line: int
    text: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    segment: int = 0


@dataclass(frozen=True)
class Hparam:
    """A hyperparameter echoed in the log header, with the line that printed it."""

    value: Any
    line: int


@dataclass(frozen=True)
class NonFinite:
    """The first non-finite moment of a run: the most important line in the file."""

    step: int | None
    line: int
    metric: str
    text: str
    source: str  # "value" or "event"

    def described(self) -> str:
        """``loss at step 220, line 7`` (what went non-finite in words; no step when none)."""
        at = f" at step {self.step}" if self.step is not None else ""
        return f"{nonfinite_words(self.metric)}{at}, line {self.line}"


@dataclass(frozen=True)
class RunSeries:
    """A training log, normalised: a long frame plus events, hyperparameters and metadata.

    Attributes
    ----------
    frame : pandas.DataFrame
        Long format, one row per printed value: ``step`` (nullable int), ``metric``,
        ``value`` (float, nan/inf kept), ``phase`` (train/eval), ``segment`` (0, then +1
        at every restart), ``rank`` (nullable), ``epoch`` (float, nullable), ``line``
        (1-based physical line).
    events : tuple of Event
    hparams : mapping of name to Hparam
    source, format : str
        Where the log came from and the format that read it.
    unparsed : int
        Lines that looked like metrics but could not be read (never silently dropped).
    texts : mapping of line number to line text
        Text of every line holding a non-finite value (the evidence), and of events.
    notes : tuple of str
        Caveats, e.g. that steps were inferred because the log prints none.
    event_counts : mapping of event kind to count
        How many events of each kind the log printed: ``events`` keeps the first and last
        few thousand of a kind (a log printing an overflow per line would hold millions);
        empty when ``events`` is complete.
    capped : mapping of cap name to count
        What the input bounds (:mod:`logsleuth.bounds`) cut: lines whose pairs or bytes
        were not all read, progress-bar updates dropped; each one is a warning.
    """

    frame: pd.DataFrame
    events: tuple[Event, ...]
    hparams: Mapping[str, Hparam]
    source: str
    format: str
    size: int | None = None
    compression: str = "none"
    encoding: str = "utf-8"
    unparsed: int = 0
    unparsed_examples: tuple[tuple[int, str], ...] = ()
    texts: Mapping[int, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    event_counts: Mapping[str, int] = field(default_factory=dict)
    capped: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self.frame)  # every producer hands over the one frame schema

    def count(self, kind: str) -> int:
        """Events of ``kind`` the log printed, those not kept in ``events`` included."""
        return max(self.event_counts.get(kind, 0), sum(e.kind == kind for e in self.events))

    def wide(self) -> pd.DataFrame:
        """One row per (segment, rank, phase, step), one column per metric (last value wins)."""
        index = ["segment", "rank", "phase", "step"]
        frame = self.frame.assign(rank=self.frame["rank"].fillna(-1))
        wide = frame.pivot_table(index=index, columns="metric", values="value", aggfunc="last",
                                 dropna=False, observed=True)
        wide.columns.name = None
        return wide.reset_index()

    def metrics(self) -> list[str]:
        return sorted(self.frame["metric"].unique().tolist())

    def first_nonfinite(self) -> NonFinite | None:
        """The first non-finite loss / grad-norm value or non-finite event, by line (an event
        wins a tie: on a progress-bar line it was printed before the value went non-finite)."""
        import numpy as np
        import pandas as pd

        f = self.frame
        watched = f["metric"].map(lambda m: is_loss_metric(m) or m in GRAD_METRICS).astype(bool).to_numpy()
        bad = f[watched & ~np.isfinite(f["value"].to_numpy(dtype=float))]
        best: NonFinite | None = None
        if len(bad):
            row = bad.iloc[0]
            line = int(row["line"])
            step = None if pd.isna(row["step"]) else int(row["step"])
            best = NonFinite(step, line, str(row["metric"]), self.texts.get(line, ""), "value")
        for ev in self.events:
            if ev.kind in NONFINITE_EVENTS and (best is None or ev.line <= best.line):
                best = NonFinite(ev.step, ev.line, ev.kind, ev.text, "event")
                break
        return best


# ---- diagnosis ----------------------------------------------------------------------

DIAGNOSIS_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Evidence:
    """One line of the log that supports the verdict, and why it matters."""

    step: int | None
    line: int | None
    text: str
    why: str
    source: str = ""


@dataclass(frozen=True)
class RankedCause:
    """A likely cause with its probability, the evidence that moved it, and fixes in the
    terms of the framework that wrote the log."""

    code: str
    slug: str
    title: str
    probability: float
    fixes: tuple[str, ...]
    because: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """The failure signature: catalog code, how sure, and what decided it."""

    code: str
    slug: str
    title: str
    confidence: float
    benign: bool
    decided_by: str
    probabilities: Mapping[str, float] = field(default_factory=dict)
    #: for N203 (non-finite hidden by the logger): the curve signature underneath
    shape: str | None = None
    #: how it was reached (``guard:<rule>:<code>``, ``model:<rule>:<code>``, ``inconclusive``):
    #: the key under which its confidence is calibrated
    basis: str = ""


@dataclass(frozen=True)
class InputInfo:
    path: str
    format: str
    size: int | None
    sha256: str | None
    compression: str


@dataclass(frozen=True)
class Diagnosis:
    """Everything ``logsleuth diagnose`` reports; rendered by :mod:`logsleuth.report`."""

    verdict: Verdict
    first_nonfinite: NonFinite | None
    causes: tuple[RankedCause, ...]
    evidence: tuple[Evidence, ...]
    features: Mapping[str, float]
    inputs: tuple[InputInfo, ...]
    warnings: tuple[str, ...] = ()
    bad_sample: Mapping[str, Any] | None = None
    next_steps: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """A failure was diagnosed (exit code 1), as opposed to healthy/benign/inconclusive."""
        return not self.verdict.benign and self.verdict.code != "I000"

    @property
    def attempts(self) -> int:
        """Attempts the diagnosis saw (segments: restarts, re-queued runs, files)."""
        return int(self.features.get("n_segments", 1) or 1)
