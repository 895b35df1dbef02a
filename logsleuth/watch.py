"""``logsleuth watch``: follow a log while it is written; warn before the nan, report it, diagnose at the end.

Three parts, so that the evaluation runs without a clock or a file:

* :class:`LiveLog` -- the incremental parse. Appended bytes (whole lines, or whole
  progress-bar updates) go through the same scanner, :class:`~logsleuth.series.Assembler`
  and :class:`~logsleuth.sample.RowSample` as ``diagnose``, so each poll costs what its new
  bytes cost and memory stays bounded however long the log; the records and events feed
  a :class:`~logsleuth.forecast.Forecaster`. :meth:`LiveLog.diagnose` hands the sampled
  series to :func:`logsleuth.api.diagnose`: the final verdict is diagnose's own, without
  reading the file again.
* :class:`Follower` -- ``tail -F``: reads what was appended; when the path names a new
  file (rotation) it drains the old one first, then starts on the new one; when the file
  shrank (truncation) it starts again at byte 0. Each new file is a new *generation*: a
  fresh parse (line numbers restart), diagnosed at the end together with the earlier ones
  as attempts of one job (a truncated log is usually a re-queued job writing it anew).
* :func:`watch` -- the loop: poll every ``interval`` seconds, print alerts, run the
  ``--on-alert`` command, and stop when the log has not grown for ``idle`` seconds or the
  writer ``pid`` is gone (then one last read, the final verdict, diagnose's exit code).

The format is detected from the head like ``diagnose`` does; while the log is shorter
than the detection head it is detected again each time it doubles, and a different
answer re-reads the (short) log with the new format. Compressed logs cannot be followed.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from .detect import detect
from .engine import Format
from .errors import InputError
from .forecast import Alert, Forecaster, Thresholds
from .io import CHUNK, HEAD, LogInput, clean, sniff_compression
from .sample import RowSample
from .scan import scan_chunk
from .series import Assembler, prepare
from .types import NONFINITE_EVENTS, RunSeries

if TYPE_CHECKING:
    import pyarrow as pa

    from .types import Diagnosis

#: generations (rotated or truncated files) kept for the final diagnosis: the latest ones
MAX_GENERATIONS = 8


@dataclass
class _Generation:
    """One file's parse: format, assembler, row sample, what was read of it."""

    name: str
    fmt: Format
    assembler: Assembler
    sample: RowSample
    head: bytes = b""
    size: int = 0

    def series(self) -> RunSeries:
        """The generation as diagnose would have read it (the bounded row sample)."""
        from .api import Parse

        log = LogInput(self.name, "none", "utf-8", self.head, self.size, io.BytesIO(), None, b"")
        series = Parse(log, self.fmt, self.assembler).series(self.sample.tables())
        return replace(series, notes=(*series.notes, self.sample.note())) if self.sample.dropped else series


class LiveLog:
    """The watcher's evaluation: :meth:`feed` appended bytes, get the alerts they raise.

    Parameters
    ----------
    name : str
        The log's path (shown in the verdict).
    format : str, optional
        Force the format, as ``diagnose --log-format`` does.
    thresholds : Thresholds, optional
        When warnings fire (see :mod:`logsleuth.forecast`).
    """

    def __init__(self, name: str, format: str | None = None, thresholds: Thresholds | None = None) -> None:
        self.name, self.format = name, format
        self.forecaster = Forecaster(thresholds)
        self.done: list[_Generation] = []
        self.gen: _Generation | None = None
        self.pending = b""  # an unfinished line, held until its end arrives
        self.bytes = 0
        self._detected_at = 0
        self._reported: set[tuple[str, int | None]] = set()

    def feed(self, data: bytes) -> list[Alert]:
        """Appended bytes (any split); returns the alerts raised by the complete lines."""
        data = self.pending + data
        cut = _complete(data)
        self.pending = data[cut:]
        return self._parse(data[:cut]) if cut else []

    def new_generation(self) -> list[Alert]:
        """The path names a new file, or the file was truncated: what is left is read, the
        next bytes start a new parse."""
        alerts = self._parse(self.pending, final=True) if self.pending else []
        self.pending = b""
        if self.gen is not None:
            self.done = (self.done + [self.gen])[-(MAX_GENERATIONS - 1):]
        self.gen, self._detected_at = None, 0
        return alerts

    def finish(self) -> list[Alert]:
        """The writer has stopped: parse the unfinished last line too."""
        data, self.pending = self.pending, b""
        return self._parse(data, final=True) if data else []

    def diagnose(self) -> Diagnosis:
        """diagnose's verdict on everything read (each generation an attempt)."""
        from .api import diagnose

        runs = [g.series() for g in [*self.done, *([self.gen] if self.gen else [])]]
        if not runs:
            raise InputError(f"{self.name}: empty input (no log lines to read)")
        return diagnose(runs)

    # ---- parsing ------------------------------------------------------------------

    def _parse(self, chunk: bytes, final: bool = False) -> list[Alert]:
        chunk = clean(chunk)
        if not chunk.strip():
            return []
        if self.gen is None:
            self.gen = self._start(chunk)
        elif self.format is None and len(self.gen.head) < HEAD and self.gen.size + len(chunk) >= 2 * self._detected_at:
            head = (self.gen.head + chunk)[:HEAD]
            self._detected_at = len(head)
            if detect(head).name != self.gen.fmt.name:
                return self._restart(head, chunk)
        g = self.gen
        if len(g.head) < HEAD:
            g.head = (g.head + chunk)[:HEAD]
        g.size += len(chunk)
        alerts: list[Alert] = []
        for piece in _pieces(chunk):  # a backlog of GBs goes through in bounded steps
            alerts += self._assemble(piece)
        return alerts

    def _start(self, chunk: bytes) -> _Generation:
        head = chunk[:HEAD]
        fmt = detect(head, self.format)
        self._detected_at = len(chunk)
        return _Generation(self.name, fmt, Assembler(fmt), RowSample())

    def _restart(self, head: bytes, chunk: bytes) -> list[Alert]:
        """A longer head names another format: read the short log again with it (the
        alerts already printed are not printed twice)."""
        old = self.gen.head[: self.gen.size] if self.gen else b""  # type: ignore[union-attr]
        self.gen, self.forecaster = None, Forecaster(self.forecaster.t)
        alerts = self._parse(old + chunk)
        self._detected_at = max(self._detected_at, len(head))
        return alerts

    def _assemble(self, piece: bytes) -> list[Alert]:
        g = self.gen
        assert g is not None
        table = g.assembler.feed(prepare(piece, scan_chunk(g.fmt, piece, g.head)))
        new_events = g.assembler.fresh_events
        g.sample.add(table, any(e.kind in NONFINITE_EVENTS for e in new_events))
        self.bytes += len(piece)
        alerts = _records(self.forecaster, table, new_events)
        alerts = [replace(a, text=g.assembler.texts.get(a.line, "")) if not a.text and a.line else a
                  for a in alerts]  # the line's text, from the parse's evidence texts
        fresh = [a for a in alerts if (a.kind, a.step) not in self._reported]
        self._reported.update((a.kind, a.step) for a in fresh)
        return fresh


def _complete(data: bytes) -> int:
    """Where the complete part of ``data`` ends: after its last newline, or after the last
    carriage return of a progress bar still being redrawn (each update is a record)."""
    nl = data.rfind(b"\n") + 1
    cr = data.rfind(b"\r", nl) + 1
    return max(nl, cr)


def _pieces(chunk: bytes) -> Iterator[bytes]:
    """``chunk`` in pieces of about :data:`~logsleuth.io.CHUNK` bytes ending at line ends
    (a line longer than that is cut, as :mod:`logsleuth.io` cuts it)."""
    start = 0
    while start < len(chunk):
        end = start + CHUNK
        if end < len(chunk):
            nl = chunk.rfind(b"\n", start, end) + 1
            end = nl if nl > start else end
        yield chunk[start:end]
        start = end


#: at most this many records of one chunk are evaluated one by one (a backlog of GBs is
#: caught up quickly; its failure is still found, by a vectorised check of every row)
MAX_EVALUATED = 4096


def _records(fc: Forecaster, table: pa.Table, events: list) -> list[Alert]:
    """Feed one chunk's rows and events to the forecaster, in line order."""
    if not table.num_rows and not events:
        return []
    cols = {name: table.column(name) for name in ("step", "metric", "value", "phase", "line")}
    line = cols["line"].to_numpy()
    keep = np.arange(len(line))
    if len(keep) > MAX_EVALUATED:
        bad = np.flatnonzero(~np.isfinite(cols["value"].to_numpy(zero_copy_only=False)))
        keep = np.union1d(keep[-MAX_EVALUATED:], bad[:1])
    steps = cols["step"].to_pylist()
    metrics, values, phases = cols["metric"].to_pylist(), cols["value"].to_numpy(zero_copy_only=False), cols["phase"].to_pylist()
    items = [(int(line[i]), 0, i) for i in keep] + [(e.line, -1, j) for j, e in enumerate(events)]
    alerts: list[Alert] = []
    for at, is_event, i in sorted(items):  # an event wins a tie (it was printed first on a bar line)
        if is_event:
            e = events[i]
            alerts += fc.observe_event(e.kind, e.step, e.line, e.text, e.fields)
        else:
            alerts += fc.observe(metrics[i], steps[i], float(values[i]), at, phases[i])
    return alerts


@dataclass
class Follower:
    """``tail -F`` on one path: :meth:`read` returns (bytes appended, what happened)."""

    path: str
    handle: io.BufferedReader | None = None
    ident: tuple[int, int] | None = None
    offset: int = 0
    note: list[str] = field(default_factory=list)

    def open(self) -> bool:
        """Open the path if it names a file; False while it does not exist."""
        try:
            if os.path.isdir(self.path):
                raise InputError(f"{self.path}: is a directory, not a log file")
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise InputError(f"{self.path}: cannot open ({exc.strerror})") from None
        st = os.fstat(handle.fileno())
        head = handle.read(8)
        if sniff_compression(head) != "none":
            handle.close()
            raise InputError(f"{self.path}: compressed ({sniff_compression(head)}); a compressed log cannot be "
                             "followed: use logsleuth diagnose")
        handle.seek(0)
        self.handle, self.ident, self.offset = handle, (st.st_dev, st.st_ino), 0
        return True

    def read(self, limit: int = 64 << 20) -> tuple[bytes, str | None]:
        """New bytes (at most ``limit``), and "rotated" or "truncated" when the bytes
        that follow belong to a new file (the caller starts a new generation first)."""
        if self.handle is None:  # the path was replaced by nothing yet, or never opened
            seen = self.ident is not None
            return b"", (("rotated" if seen else "opened") if self.open() else None)
        data = self.handle.read(limit) or b""
        self.offset += len(data)
        if data:
            return data, None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return b"", None  # moved away, not yet replaced: keep the old file
        if (st.st_dev, st.st_ino) != self.ident:
            self.handle.close()
            self.handle = None
            return b"", ("rotated" if self.open() else None)
        if st.st_size < self.offset:
            self.handle.seek(0)
            self.offset = 0
            return b"", "truncated"
        return b"", None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still exists (signal 0 only checks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Options:
    """What ``logsleuth watch`` was asked for (times in seconds)."""

    path: str
    interval: float = 1.0
    idle: float | None = None
    pid: int | None = None
    wait: float = 0.0
    format: str | None = None


Emit = Callable[[str, "Alert | None", "Diagnosis | None"], None]


def watch(opts: Options, emit: Emit, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Diagnosis:
    """Follow ``opts.path`` until it ends (``idle`` seconds without growth, the ``pid``
    gone, or Ctrl-C); ``emit(event, alert, diagnosis)`` for every warning, every failure
    (with the diagnosis so far) and, last, the final verdict. Returns the final diagnosis."""
    follower = Follower(opts.path)
    live = LiveLog(opts.path, opts.format)
    _wait_for(follower, opts, clock, sleep)
    last_growth = clock()
    try:
        while True:
            if _poll(follower, live, emit):
                last_growth = clock()
                continue  # catch up before sleeping
            writer_gone = opts.pid is not None and not pid_alive(opts.pid)
            if writer_gone or (opts.idle is not None and clock() - last_growth >= opts.idle):
                while _poll(follower, live, emit):  # what the writer flushed as it exited
                    pass
                break
            sleep(opts.interval)
    except KeyboardInterrupt:
        pass  # stopping by hand still prints the verdict on what was read
    finally:
        follower.close()
    _emit_all(live, live.finish(), emit)
    result = live.diagnose()
    emit("final", None, result)
    return result


def _wait_for(follower: Follower, opts: Options, clock: Callable[[], float],
              sleep: Callable[[float], None]) -> None:
    """Open the log, waiting up to ``opts.wait`` seconds for it to appear."""
    started = clock()
    while not follower.open():
        left = opts.wait - (clock() - started)
        if left <= 0:
            waited = f" (waited {opts.wait:g} s for it to appear)" if opts.wait else ""
            raise InputError(f"{opts.path}: no such file{waited}")
        sleep(min(opts.interval, left))


def _poll(follower: Follower, live: LiveLog, emit: Emit) -> bool:
    """Read once; feed the bytes; emit what they raise. True when the log grew."""
    data, happened = follower.read()
    alerts: list[Alert] = []
    if happened in ("rotated", "truncated"):
        alerts += live.new_generation()
    if data:
        alerts += live.feed(data)
    _emit_all(live, alerts, emit)
    return bool(data) or happened is not None


def _emit_all(live: LiveLog, alerts: list[Alert], emit: Emit) -> None:
    """A failure goes out with diagnose's verdict on the log so far (its code, its causes)."""
    for alert in alerts:
        emit(alert.event, alert, live.diagnose() if alert.event == "failure" else None)
