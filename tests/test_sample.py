"""The bounded row sample diagnosis uses on long logs (logsleuth/sample.py)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from logsleuth import io as io_mod
from logsleuth import parallel as parallel_mod
from logsleuth import sample as sample_mod
from logsleuth.api import diagnose, read_log
from logsleuth.sample import RowSample

from .test_diagnose import caffe, descending


def chunk(first_line: int, n: int, values: list[float] | None = None) -> pa.Table:
    """``n`` rows, one per line and step, metric ``loss``."""
    lines = np.arange(first_line, first_line + n, dtype=np.int64)
    vals = np.full(n, 1.0) if values is None else np.asarray(values, dtype=float)
    return pa.table({"step": pa.array(lines * 10), "metric": pa.array(["loss"] * n).dictionary_encode(),
                     "value": pa.array(vals), "line": pa.array(lines)})


def lines_of(s: RowSample) -> np.ndarray:
    return np.concatenate([t.column("line").to_numpy() for t in s.tables()])


def test_short_logs_are_kept_whole() -> None:
    s = RowSample(window=100)
    for k in range(3):
        s.add(chunk(k * 50, 50))
    assert s.dropped == 0 and len(lines_of(s)) == 150


def test_long_logs_keep_start_failure_end_and_every_nonfinite_row() -> None:
    s = RowSample(window=100)
    bad_at = 5_000
    for first in range(0, 20_000, 50):
        values = [math.nan if line in (bad_at, 12_345) else 1.0 for line in range(first, first + 50)]
        s.add(chunk(first, 50, values))
    kept = lines_of(s)
    assert s.dropped > 0 and len(kept) < 1_000
    assert np.all(np.diff(kept) > 0)  # line order, no duplicates
    assert set(range(0, 100)) <= set(kept)  # the start
    assert set(range(bad_at - 100, bad_at + 100)) <= set(kept)  # around the first failure
    assert set(range(20_000 - 100, 20_000)) <= set(kept)  # the end
    assert 12_345 in kept  # a later non-finite row, though in the sampled stretch
    assert "every" in s.note()


def test_a_failure_event_keeps_its_lead_up() -> None:
    s = RowSample(window=100)
    for first in range(0, 10_000, 50):
        s.add(chunk(first, 50), failure_event=(first == 6_000))
    assert set(range(5_900, 6_150)) <= set(lines_of(s))


def test_sampled_diagnosis_matches_the_full_one(write, monkeypatch) -> None:
    """A log far over the (shrunk) budget gets the verdict and first step of the full read."""
    losses = descending(3_000, every=10) + [(30_000, "nan"), (30_010, "nan")]
    path = write("long.log", caffe(losses))
    full = read_log(path)
    monkeypatch.setattr(sample_mod, "WINDOW", 300)
    monkeypatch.setattr(io_mod, "CHUNK", 16_384)  # many small chunks, as a multi-GB log has
    monkeypatch.setattr(parallel_mod, "CHUNK", 16_384)
    d = diagnose(path)
    assert any("diagnosed on" in w for w in d.warnings)
    assert d.first_nonfinite.step == full.first_nonfinite().step == 30_000
    assert d.verdict.code == "N201"


def test_the_even_sample_keeps_multiples_of_the_stride_and_rows_without_a_step_by_line() -> None:
    lines = np.arange(1, 65, dtype=np.int64)
    steps = pa.array([None if i % 3 == 0 else int(i) * 5 - 40 for i in lines.tolist()], pa.int64())  # negatives too
    table = pa.table({"step": steps, "line": pa.array(lines)})
    for stride in (1, 2, 8, 32):
        kept = sample_mod._every(table, stride)
        expect = [ln for ln, st in zip(lines.tolist(), steps.to_pylist()) if (ln if st is None else st) % stride == 0]
        assert kept.column("line").to_pylist() == expect


def test_each_kept_part_is_cut_to_its_window_whatever_the_chunk_size() -> None:
    """Chunks ten times the window: the start, the lead-up, the failure's after-window and
    the end are each ``window`` rows, not whole chunks."""
    s = RowSample(window=100)
    bad_at = 5_432
    for first in range(0, 20_000, 1_000):
        values = [math.nan if line == bad_at else 1.0 for line in range(first, first + 1_000)]
        s.add(chunk(first, 1_000, values))
    kept = set(lines_of(s).tolist())
    full = set(range(0, 100)) | set(range(bad_at - 100, bad_at + 100)) | set(range(19_900, 20_000))
    assert full <= kept
    assert len(kept - full) <= 2 * 100  # the even sample's budget, nothing more
    assert set(range(100, 2_000)) - kept  # the rest of the first chunk was sampled, not kept whole
