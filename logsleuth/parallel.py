"""Scan chunks in a pool of threads while this thread reads the next ones.

Chunks are independent (see :mod:`logsleuth.engine.format`), so they can be scanned and
prepared in any order; the results come back in file order for the sequential
:class:`~logsleuth.series.Assembler`. Threads rather than processes: the work that
dominates -- the compiled scanners (:mod:`logsleuth._native`), the Aho-Corasick gate,
numpy, reading and decompressing -- runs without the GIL, and threads need no pickling,
no fork and no second copy of the data. On two cores a 500 MB Caffe log parses in about
two thirds of the time a process pool took (``bench/README.md``). Any input can take
this path, compressed or streamed too; small files are scanned in this thread.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from .engine import Format
from .io import CHUNK, LogInput
from .scan import scan_chunk
from .series import Prepared, prepare

#: below this size a pool costs more than it saves
PARALLEL_MIN_BYTES = 4 * CHUNK


def default_jobs() -> int:
    return min(4, os.cpu_count() or 1)


def _scan(fmt: Format, chunk: bytes, head: bytes) -> Prepared:
    return prepare(chunk, scan_chunk(fmt, chunk, head))


def prepared_chunks(log: LogInput, fmt: Format, jobs: int | None = None) -> Iterator[tuple[int, Prepared]]:
    """(bytes consumed, prepared chunk) in file order, scanned by ``jobs`` threads."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs <= 1 or (log.size is not None and log.compression == "none" and log.size < PARALLEL_MIN_BYTES):
        for chunk in log.chunks():
            yield len(chunk), _scan(fmt, chunk, log.head)
        return
    pool = ThreadPoolExecutor(jobs, thread_name_prefix="logsleuth-scan")
    try:
        yield from _in_order(pool, fmt, log.chunks(), log.head, window=2 * jobs)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _in_order(pool: ThreadPoolExecutor, fmt: Format, chunks: Iterable[bytes], head: bytes,
              window: int) -> Iterator[tuple[int, Prepared]]:
    """Results in order, with at most ``window`` chunks in flight: memory stays bounded
    even when writing the output is slower than scanning."""
    pending: deque[tuple[int, Future]] = deque()
    for chunk in chunks:
        pending.append((len(chunk), pool.submit(_scan, fmt, chunk, head)))
        if len(pending) >= window:
            size, done = pending.popleft()
            yield size, done.result()
    while pending:
        size, done = pending.popleft()
        yield size, done.result()
