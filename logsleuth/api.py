"""What the CLI, the service and notebooks call: one place, so every surface agrees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import pandas as pd
from pandas.api.types import union_categoricals

from .parsers._base import Format

from .detect import detect
from .io import LogInput, open_log
from .parallel import prepared_chunks
from .series import Assembler
from .types import COLUMNS, RunSeries

Progress = Callable[[int], None]


@dataclass
class Parse:
    """A log being parsed: iterate :meth:`frames` (bounded memory), then call :meth:`series`."""

    log: LogInput
    fmt: Format
    assembler: Assembler

    def frames(self, progress: Progress | None = None, jobs: int | None = None) -> Iterator[pd.DataFrame]:
        """Finished rows chunk by chunk; ``jobs`` processes scan a large plain file in parallel."""
        try:
            for nbytes, prep in prepared_chunks(self.log, self.fmt, jobs):
                frame = self.assembler.feed(prep)
                if progress:
                    progress(nbytes)
                if len(frame):
                    yield frame
        finally:
            self.log.close()

    def series(self, frames: list[pd.DataFrame] | None = None) -> RunSeries:
        """The finished :class:`RunSeries` (pass the collected frames, or none for metadata only)."""
        a = self.assembler
        frame = _concat(frames or [])
        notes = []
        if a.inferred:
            notes.append(self.fmt.step_note or "the log prints no step: steps are counted logging records")
        return RunSeries(
            frame=frame, events=tuple(a.events), hparams=dict(a.hparams), source=self.log.name,
            format=self.fmt.name, size=self.log.size, compression=self.log.compression,
            encoding=self.log.encoding, unparsed=a.unparsed, unparsed_examples=tuple(a.unparsed_examples),
            texts=dict(a.texts), notes=tuple(notes),
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


def read_log(source: object, format: str | None = None) -> RunSeries:
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
    return parse.series(list(parse.frames()))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        empty = pd.DataFrame({c: [] for c in COLUMNS})
        return empty.astype({"step": "Int64", "value": "float64", "segment": "int64", "rank": "Int64",
                             "epoch": "float64", "line": "int64", "metric": "category", "phase": "category"})
    metric = union_categoricals([f["metric"] for f in frames])
    frame = pd.concat([f.drop(columns="metric") for f in frames], ignore_index=True)
    frame.insert(1, "metric", metric)
    return frame.astype({"phase": "category"})
