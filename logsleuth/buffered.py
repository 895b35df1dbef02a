"""Steps of records that buffered stdout printed away from their progress bar.

A job started as ``python train.py >> job.log 2>&1`` writes tqdm bars to stderr as they
happen, while Python block-buffers stdout into the file: the Hugging Face Trainer's
logged dicts (stdout) then land in blocks, long after the bar updates (stderr) of the
steps they were logged at. Taking each dict's step from the bar just before it gives
every dict of a block the same step -- the bar count at the flush, which is the step of
the block's *last* dict.

So a block (consecutive record lines that share one step, in a format whose steps come
from bars) is spread over the steps it covers: from the previous block's step to the
bar count at its flush, in proportion to the dicts' printed ``epoch`` where it rises
through the block (HF prints ``global_step / steps_per_epoch``), else evenly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: below this share of record lines in stacked blocks, the log was not buffered
_MIN_STACKED = 0.3
#: a block of one flush holds at least this many record lines
_MIN_RUN = 3
NOTE = ("stdout was buffered (dict lines printed in blocks, away from their progress bar): the steps of "
        "each block are spread between the bar counts around it, so they are approximate")


def spread_stacked_steps(frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """``frame`` with the steps of stacked blocks spread out, and whether any were."""
    lines = frame[frame["phase"] == "train"].drop_duplicates("line")[["line", "step", "epoch", "segment"]]
    step = lines["step"].to_numpy(dtype=np.float64, na_value=np.nan)
    if len(step) < 3:
        return frame, False
    if _stacked_share(step) < _MIN_STACKED:
        return frame, False
    new = _spread(step, lines["epoch"].to_numpy(dtype=np.float64, na_value=np.nan), lines["segment"].to_numpy())
    out = frame.copy()
    out["step"] = _restepped(out, lines["line"].to_numpy(), step, new)
    return out, True


def _stacked_share(step: np.ndarray) -> float:
    """Share of lines in runs of at least :data:`_MIN_RUN` lines with one step (a flush
    holds many dicts; an eval or a summary dict at a logging step makes a pair, no more)."""
    bounds = np.flatnonzero(np.r_[True, step[1:] != step[:-1], True])
    lengths = np.diff(bounds)
    starts = bounds[:-1]
    stacked = lengths[(lengths >= _MIN_RUN) & ~np.isnan(step[starts])].sum()
    return float(stacked) / len(step)


def _restepped(frame: pd.DataFrame, train_lines: np.ndarray, old: np.ndarray, new: np.ndarray) -> pd.Series:
    """New steps for every row: a train line's own; an eval line (HF evaluates at a logging
    step) takes the new step of the train line before it when they had the same step."""
    import pandas as pd

    lines = frame["line"].to_numpy()
    at = np.searchsorted(train_lines, lines, side="right") - 1
    steps = frame["step"].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = at >= 0
    same = np.zeros(len(lines), dtype=bool)
    same[ok] = old[at[ok]] == steps[ok]
    steps = np.where(same, new[np.maximum(at, 0)], steps)
    return pd.Series(np.round(steps), index=frame.index).astype("Int64")


def _spread(step: np.ndarray, epoch: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Each run of equal steps ends at its step and starts after the previous run's."""
    new = step.copy()
    start = 0
    while start < len(step):
        end = start
        while end + 1 < len(step) and step[end + 1] == step[start] and segment[end + 1] == segment[start]:
            end += 1
        if end > start and not np.isnan(step[start]):
            before = new[start - 1] if start and segment[start - 1] == segment[start] else 0.0
            new[start:end + 1] = before + (step[start] - before) * _weights(epoch[start:end + 1],
                                                                                epoch[start - 1] if start else np.nan)
        start = end + 1
    return new


def _weights(epoch: np.ndarray, epoch_before: float) -> np.ndarray:
    """Where each record of a block falls between the previous block (0) and the flush (1)."""
    n = len(epoch)
    even = np.arange(1, n + 1) / n
    e = np.r_[epoch_before if not np.isnan(epoch_before) else 0.0, epoch]
    if np.isnan(e).any() or not np.all(np.diff(e) > 0):
        return even
    return (e[1:] - e[0]) / (e[-1] - e[0])


__all__ = ["spread_stacked_steps", "NOTE"]
