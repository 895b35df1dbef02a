"""Audit whole fleets of runs: one row per run (verdict, step, cause, features).

>>> import logsleuth.audit
>>> table = logsleuth.audit("runs/", jobs=2)            # doctest: +SKIP
>>> table[table.failed][["path", "verdict", "nonfinite_step", "cause"]]  # doctest: +SKIP

Pipeline: :mod:`.discover` (which files make a run) -> :mod:`.engine` (local processes or
Dask) running :func:`.run.audit_run` on each run (artefacts read, merged by
:mod:`.merge`, diagnosed by :func:`logsleuth.api.diagnose`) -> :mod:`.store` (rows
appended as they come; ``resume``). The CLI is :mod:`.cli`.

This package is callable: ``logsleuth.audit(paths)`` is :func:`audit` (the module's class is
swapped for a callable one), so the issue's spelling works while ``logsleuth.audit.store``
and friends stay importable as modules.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .discover import GROUPS, Run, discover
from .engine import ENGINES, default_jobs, execute
from .run import SKIPPED, audit_run, columns

if TYPE_CHECKING:
    import pandas as pd

    from .store import ResultStore, rows_to_frame

__all__ = ["audit", "discover", "audit_run", "execute", "ResultStore", "rows_to_frame", "columns", "Run", "GROUPS",
           "ENGINES", "default_jobs"]

#: ``progress(done, total, row)`` after every run
Progress = Callable[[int, int, dict], None]


def audit(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], jobs: int | None = None,
          engine: str = "local", output: str | None = None, resume: bool = False, force: bool = False,
          scheduler: str | None = None, group: str = "auto", verify: bool = False,
          progress: Progress | None = None) -> pd.DataFrame:
    """Audit every run under ``paths``; one row per run.

    Parameters
    ----------
    paths : path or list of paths
        Directories (searched for runs, see :mod:`logsleuth.audit.discover`) and files (each
        one run).
    jobs : int, optional
        Worker processes (default: the CPU count).
    engine : {"local", "dask"}
        ``dask`` runs on ``scheduler`` (an address) or a local cluster of ``jobs`` workers.
    output : str, optional
        Also append rows to this ``.jsonl``/``.csv``/``.parquet`` file as they come.
    resume : bool
        Continue the audit in ``output``: runs whose content hash is unchanged are skipped.
    force : bool
        Overwrite an existing ``output``.
    group : {"auto", "dir", "file"}
        How files are grouped into runs.
    verify : bool
        Check the CRCs of event-file records.

    Returns
    -------
    pandas.DataFrame
        One row per run (previous rows of a resumed ``output`` included): the columns of
        :func:`logsleuth.audit.run.columns`; a run that could not be read has ``error`` set.
    """
    from .store import ResultStore

    runs = discover(paths, group)
    store = ResultStore(output, resume=resume, force=force) if output else ResultStore(None, kind="memory")
    with store:
        for done, row in enumerate(execute(runs, engine, jobs, store.known_hashes(), verify, scheduler), 1):
            if row.get("status") != SKIPPED:
                store.add(row)
            if progress is not None:
                progress(done, len(runs), row)
        return store.frame()


def __getattr__(name: str) -> Any:
    """``ResultStore`` and ``rows_to_frame`` on first use: importing this package (done by
    ``logsleuth``'s CLI to register the command) must not import pandas."""
    if name in ("ResultStore", "rows_to_frame"):
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """``logsleuth.audit(...)`` calls :func:`audit`."""

    def __call__(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
