"""A run's own metrics file beside a log that kept almost nothing of the run.

Some captured logs keep only a progress bar's final state: Lightning's RichProgressBar
written to a file (``>> job.log``, no terminal) leaves one line for the whole run,
``Epoch 12/-2 ━━━ 10/10 ... train_loss: 1.615``. The same run wrote every logged value
to its logger's file under the working directory, which is where schedulers put the job
log too: ``lightning_logs/version_N/metrics.csv`` (CSVLogger) or
``lightning_logs/version_N/events.out.tfevents.*`` (TensorBoardLogger), possibly one
level deeper (``save_dir/name/version_N``).

When a text log holds at most :data:`MAX_RECORDS` training records and no non-finite
value or event, :func:`companion_of` finds such a file beside it, written at about the
same time as the log (:data:`WINDOW_S`), and the diagnosis reads that file instead, with
a note saying so. The newest candidate wins; among files written at the same moment
(copied together), the highest version.
"""

from __future__ import annotations

import glob
import os
import re

from .types import RunSeries, is_loss_metric

#: a text log with at most this many training loss records may be a bar's final state
MAX_RECORDS = 2
#: a companion written more than this before the log's last write is another run's
WINDOW_S = 6 * 3600
#: nor one written well after the log ended
AFTER_S = 600
#: where a logger's version folders lie, relative to the log's folder
_PATTERNS = ("*/version_*/metrics.csv", "*/*/version_*/metrics.csv",
             "*/version_*/events.out.tfevents.*", "*/*/version_*/events.out.tfevents.*")
_MAX_CANDIDATES = 200


def needs_companion(run: RunSeries) -> bool:
    """True when the log kept too little of the run to judge and shows no failure."""
    return run.first_nonfinite() is None and records(run) <= MAX_RECORDS


def companion_of(log_path: str) -> str | None:
    """The metrics file of the run that wrote ``log_path``, or None."""
    folder = os.path.dirname(os.path.abspath(log_path))
    try:
        log_mtime = os.stat(log_path).st_mtime
    except OSError:
        return None
    found: list[tuple[int, int, bool, str]] = []
    for pattern in _PATTERNS:
        for path in glob.iglob(os.path.join(glob.escape(folder), pattern)):
            if len(found) >= _MAX_CANDIDATES:
                break
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            if os.path.isfile(path) and log_mtime - WINDOW_S <= mtime <= log_mtime + AFTER_S:
                found.append((round(mtime), _version(path), path.endswith("metrics.csv"), path))
    return max(found)[3] if found else None


def _version(path: str) -> int:
    match = re.search(r"version_(\d+)", path)
    return int(match.group(1)) if match else -1


def records(run: RunSeries) -> int:
    """Training loss records of a run (what a companion must have more of)."""
    f = run.frame
    if f.empty:
        return 0
    return int(((f["phase"] == "train") & f["metric"].map(is_loss_metric).astype(bool)).sum())
