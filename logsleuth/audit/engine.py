"""Run the per-run function over many runs: in this process, a local process pool, or Dask.

Every engine yields rows as they finish (not in input order), so the store can append them
at once and a killed audit loses at most the runs in flight.

* ``local`` with ``jobs == 1``: in this process (no pool to start, easiest to debug).
* ``local`` with ``jobs > 1``: a :class:`~concurrent.futures.ProcessPoolExecutor` (forkserver)
  after the catalog and model are loaded so workers start warm; at most ``4 * jobs`` runs
  in flight (memory stays bounded on huge fleets). A worker that dies (out of memory, a
  segfault) breaks the pool: it is rebuilt and the runs in flight retried once, then
  reported as error rows.
* ``dask``: the same function on a Dask cluster (``scheduler`` address, or a
  ``LocalCluster`` of ``jobs`` single-threaded worker processes). Workers must see the
  paths (a shared file system). Needs the ``[dask]`` extra; the import is lazy.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import InputError
from .discover import Run
from .run import _empty_row, audit_run

ENGINES = ("local", "dask")
_RETRIES = 1
DASK_HINT = "the dask engine needs the [dask] extra: pip install 'logsleuth[dask]' (dask[distributed])"


def default_jobs() -> int:
    """The CPU count this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def warm() -> None:
    """Load what every run needs (catalog, model) once per process."""
    from .. import api, features  # noqa: F401
    from ..catalog import load_catalog
    from ..classify import load_model

    load_catalog()
    try:
        load_model()
    except Exception:  # a missing or stale model is each run's business (it reports it)
        pass


def execute(runs: Iterable[Run], engine: str = "local", jobs: int | None = None,
            known: Mapping[str, str] | None = None, verify: bool = False,
            scheduler: str | None = None) -> Iterator[dict[str, Any]]:
    """Rows (or ``skipped`` markers) for ``runs``, as they finish.

    ``known`` maps a run path to the content hash of its existing row: a run whose hash is
    unchanged comes back as ``{"path", "sha256", "status": "skipped"}`` without being parsed.
    """
    known = dict(known or {})
    jobs = default_jobs() if jobs is None else max(1, int(jobs))
    if engine == "local":
        return _local(list(runs), jobs, known, verify)
    if engine == "dask":
        return _dask(list(runs), jobs, known, verify, scheduler)
    raise InputError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")


def _local(runs: list[Run], jobs: int, known: dict[str, str], verify: bool) -> Iterator[dict[str, Any]]:
    warm()
    if jobs == 1 or len(runs) <= 1:
        for run in runs:
            yield audit_run(run, known.get(run.path), verify)
        return
    methods = multiprocessing.get_all_start_methods()
    # forkserver, not fork: the caller may run threads (a Dask client, a test runner, the
    # hashing thread of diagnose), and forking a process with threads can deadlock
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else None)
    if "forkserver" in methods:
        ctx.set_forkserver_preload([__name__.rsplit(".", 1)[0] + ".run", "logsleuth.classify"])
    queue = list(reversed(runs))
    attempts: dict[str, int] = {}
    while queue:
        failed: list[Run] = []
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(queue)), mp_context=ctx)
        try:
            yield from _drain(pool, queue, jobs * 4, known, verify, failed)
        finally:  # also when the consumer stops early (Ctrl-C): drop what has not started
            pool.shutdown(wait=True, cancel_futures=True)
        for run in failed:
            attempts[run.path] = attempts.get(run.path, 0) + 1
            if attempts[run.path] > _RETRIES:
                row = _empty_row(run)
                row["error"] = f"{run.path}: the worker process died while auditing it (out of memory?)"
                yield row
            else:
                queue.append(run)


def _drain(pool: ProcessPoolExecutor, queue: list[Run], window: int, known: dict[str, str], verify: bool,
           failed: list[Run]) -> Iterator[dict[str, Any]]:
    """Keep ``window`` runs in flight; on a broken pool, hand back what was in flight."""
    inflight: dict[Future, Run] = {}
    while queue or inflight:
        while queue and len(inflight) < window:
            run = queue.pop()
            try:
                inflight[pool.submit(audit_run, run, known.get(run.path), verify)] = run
            except BrokenProcessPool:
                queue.append(run)
                failed += inflight.values()
                return
        done, _ = wait(inflight, return_when=FIRST_COMPLETED)
        for future in done:
            run = inflight.pop(future)
            try:
                yield future.result()
            except BrokenProcessPool:
                failed.append(run)
        if failed:  # the pool is gone: everything still in flight is retried
            failed += inflight.values()
            return


def _dask(runs: list[Run], jobs: int, known: dict[str, str], verify: bool,
          scheduler: str | None) -> Iterator[dict[str, Any]]:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise InputError(DASK_HINT) from exc
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        pending = list(reversed(runs))
        inflight: dict[Any, Run] = {}
        futures = as_completed()

        def submit() -> None:
            run = pending.pop()
            future = client.submit(audit_run, run, known.get(run.path), verify, pure=False)
            inflight[future.key] = run
            futures.add(future)

        for _ in range(min(max(8, jobs * 8), len(pending))):
            submit()
        for future in futures:
            run = inflight.pop(future.key)
            try:
                yield future.result()
            except Exception as exc:  # a worker lost with the task (KilledWorker): the row says so
                row = _empty_row(run)
                row["error"] = f"{run.path}: the dask task failed ({type(exc).__name__}: {exc})"
                yield row
            future.release()
            if pending:
                submit()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
