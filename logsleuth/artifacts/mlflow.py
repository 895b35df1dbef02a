"""MLflow file-store runs: ``mlruns/<experiment>/<run>/metrics/<key>`` (one file per metric).

Each metric file has one line per ``log_metric`` call: ``<timestamp ms> <value> <step>``
(files from MLflow before 1.0 have no step: the step is then the index of the line). A
key with ``/`` (``train/loss``) is a nested path under ``metrics/``. ``params/<key>``
files are hyperparameters; a run whose ``meta.yaml`` status is FAILED (4) gets an
``error`` event, which is evidence that the job died.

Records of all metrics are put in time order (timestamp, then step, then key), and
``line`` is the 1-based index in that order; the evidence text names the metric file and
the line of it.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from ..errors import InputError
from ..types import Event, Hparam, RunSeries
from ._frame import build_series, metric_name
from ._sniff import run_dir_of

__all__ = ["read_mlflow", "run_dir_of", "metric_files", "FORMAT"]

FORMAT = "mlflow"
_STATUS = re.compile(rb"^status:\s*(\d+)", re.M)
_FAILED = 4


def metric_files(run_dir: str) -> list[tuple[str, str]]:
    """(key, path) of every metric file of a run, keys with ``/`` for nested paths."""
    root = os.path.join(run_dir, "metrics")
    out = []
    for here, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(here, name)
            out.append((os.path.relpath(path, root).replace(os.sep, "/"), path))
    return out


def _params(run_dir: str) -> dict[str, Hparam]:
    out: dict[str, Hparam] = {}
    root = os.path.join(run_dir, "params")
    for here, _, files in os.walk(root):
        for name in files:
            key = os.path.relpath(os.path.join(here, name), root).replace(os.sep, ".")
            try:
                with open(os.path.join(here, name), encoding="utf-8", errors="replace") as f:
                    text = f.read().strip()
            except OSError:
                continue
            try:
                value: object = float(text) if any(ch.isdigit() for ch in text) else text
            except ValueError:
                value = text
            out[key] = Hparam(value, 0)
    return out


def _read_metric(key: str, path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], int]:
    """(timestamp, value, step, line in file) of one metric file, raw lines, unparsed count."""
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8", "replace").splitlines()
    table = [line.split() for line in raw]
    good = [i for i, parts in enumerate(table) if len(parts) in (2, 3)]
    ts: list = []
    val: list = []
    step: list = []
    idx: list = []
    bad = len(raw) - len(good) - sum(1 for line in raw if not line.strip())
    for i in good:
        parts = table[i]
        try:
            t, v = float(parts[0]), float(parts[1])
            s = int(parts[2]) if len(parts) == 3 else len(idx)
        except ValueError:
            bad += 1
            continue
        ts.append(t)
        val.append(v)
        step.append(s)
        idx.append(i + 1)
    return np.asarray(ts), np.asarray(val, dtype="float64"), np.asarray(step, dtype="int64"), np.asarray(idx), raw, bad


def read_mlflow(path: str) -> RunSeries:
    """Read an MLflow file-store run directory (or any path inside it) into a RunSeries."""
    run_dir = run_dir_of(path)
    if run_dir is None:
        raise InputError(f"{path}: not inside an MLflow run directory (metrics/ and meta.yaml)")
    files = metric_files(run_dir)
    keys, parts, raws, unparsed, size = [], [], {}, 0, 0
    for k, (key, file) in enumerate(files):
        ts, val, step, idx, raw, bad = _read_metric(key, file)
        size += os.path.getsize(file)
        unparsed += bad
        keys.append(metric_name(key)[0])
        raws[k] = raw
        parts.append(pd.DataFrame({"ts": ts, "step": step, "key": k, "value": val, "idx": idx}))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"ts": [], "step": [], "key": [], "value": [], "idx": []})
    frame = frame.sort_values(["ts", "step", "key"], kind="stable").reset_index(drop=True)
    frame["line"] = np.arange(1, len(frame) + 1)
    texts = {int(r.line): f"metrics/{files[int(r.key)][0]} line {int(r.idx)}: {raws[int(r.key)][int(r.idx) - 1]}"
             for r in frame[~np.isfinite(frame["value"].to_numpy(dtype=float))].itertuples()}
    events = _status_events(run_dir, len(frame) + 1)
    metric: object = []
    if keys:
        codes, names = _unique(keys)
        metric = pd.Categorical.from_codes(codes[frame["key"].to_numpy(dtype="int64")], categories=names)
    examples = [(0, f"{unparsed} line(s) of metric files are not '<timestamp> <value> [<step>]'")] if unparsed else []
    return build_series(step=frame["step"].to_numpy(dtype="int64"), metric=metric,
                        value=frame["value"].to_numpy(dtype="float64"), line=frame["line"].to_numpy(), source=run_dir,
                        format=FORMAT, size=size, texts=texts, events=events, hparams=_params(run_dir),
                        unparsed=unparsed, unparsed_examples=examples)


def _unique(keys: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes into the distinct names (two files may map to one canonical name)."""
    names = list(dict.fromkeys(keys))
    return np.asarray([names.index(k) for k in keys], dtype="int64"), names


def _status_events(run_dir: str, line: int) -> list[Event]:
    try:
        with open(os.path.join(run_dir, "meta.yaml"), "rb") as f:
            m = _STATUS.search(f.read())
    except OSError:
        return []
    if m and int(m.group(1)) == _FAILED:
        return [Event("error", None, line, "MLflow run status: FAILED (meta.yaml)")]
    return []
