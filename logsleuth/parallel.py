"""Scan chunks, in this process or in a pool of processes for large plain files.

Chunks are independent (see :mod:`logsleuth.parsers._base`), so a regular, uncompressed
UTF-8 file can be cut at line boundaries into byte ranges that worker processes read,
scan and prepare on their own; results come back in file order for the sequential
:class:`~logsleuth.series.Assembler`. Compressed, transcoded, small or streamed inputs
take the single-process path, which produces identical output.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Iterator

from .io import CHUNK, LogInput, clean
from .parsers._base import Format
from .scan import scan_chunk
from .series import Prepared, prepare

#: below this size a pool costs more than it saves
PARALLEL_MIN_BYTES = 48 << 20
_PROBE = 1 << 20


def default_jobs() -> int:
    return min(4, os.cpu_count() or 1)


def _scan(fmt: Format, chunk: bytes) -> Prepared:
    return prepare(chunk, scan_chunk(fmt, chunk))


def _ranges(path: str, size: int, step: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``step`` bytes, each ending just after a newline."""
    bounds = [0]
    with open(path, "rb") as f:
        while bounds[-1] + step < size:
            at = bounds[-1] + step
            f.seek(at)
            probe = f.read(_PROBE)
            cut = probe.find(b"\n")
            bounds.append(at + cut + 1 if cut != -1 else at + len(probe))
    bounds.append(size)
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


_WORKER_FORMAT: Format | None = None
_WORKER_PATH = ""


def _init_worker(name: str, fmt: Format | None, path: str) -> None:
    """Built-in formats travel by name (their handlers are closures); user formats as is."""
    global _WORKER_FORMAT, _WORKER_PATH
    from .parsers import builtin_formats

    _WORKER_FORMAT = fmt or next(f for f in builtin_formats() if f.name == name)
    _WORKER_PATH = path


def _scan_range(span: tuple[int, int]) -> tuple[int, Prepared]:
    start, end = span
    with open(_WORKER_PATH, "rb") as f:
        f.seek(start)
        chunk = f.read(end - start)
    assert _WORKER_FORMAT is not None
    return len(chunk), _scan(_WORKER_FORMAT, clean(chunk))


def _parallel_ok(log: LogInput, jobs: int) -> bool:
    return (jobs > 1 and log.compression == "none" and log.encoding == "utf-8" and log.size is not None
            and log.size >= PARALLEL_MIN_BYTES and os.path.isfile(log.name) and not log.head.startswith(b"\xef\xbb\xbf"))


def prepared_chunks(log: LogInput, fmt: Format, jobs: int | None = None) -> Iterator[tuple[int, Prepared]]:
    """(bytes consumed, prepared chunk) in file order."""
    jobs = default_jobs() if jobs is None else jobs
    if not _parallel_ok(log, jobs):
        for chunk in log.chunks():
            yield len(chunk), _scan(fmt, chunk)
        return
    import multiprocessing

    from .parsers import builtin_formats

    ctx = _context(multiprocessing)
    builtin = any(f is fmt for f in builtin_formats())
    spans = _ranges(log.name, log.size or 0, CHUNK)
    with ctx.Pool(jobs, initializer=_init_worker, initargs=(fmt.name, None if builtin else fmt, log.name)) as pool:
        yield from _bounded(pool, spans, window=2 * jobs + 2)


def _context(multiprocessing):  # type: ignore[no-untyped-def]
    """fork when this process runs no other thread (cheapest: workers share the parent's
    pages); otherwise forkserver, because forking a process with threads (a hashing
    thread, a Dask client, a test runner) can deadlock. The server imports only the
    scanning modules, so its workers stay small."""
    import threading

    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _bounded(pool, spans: list[tuple[int, int]], window: int) -> Iterator[tuple[int, Prepared]]:
    """Results in order, with at most ``window`` chunks in flight: memory stays bounded
    even when writing the output is slower than scanning."""
    pending: deque = deque()
    for span in spans:
        pending.append(pool.apply_async(_scan_range, (span,)))
        if len(pending) >= window:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()
