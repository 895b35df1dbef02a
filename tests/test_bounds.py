"""The input bounds (logsleuth.bounds): hostile lines are answered quickly, in bounded
memory, and every cut is said in the report's warnings."""

from __future__ import annotations

import math
import time

from logsleuth import api
from logsleuth.bounds import MAX_EVENTS, MAX_PAIRS, MAX_UPDATES, CarriageLimit
from logsleuth.detect import scores
from logsleuth.features import compute_features
from logsleuth.io import open_log

OVERFLOW = ("[2024-09-11 17:52:18,030] [INFO] [loss_scaler.py:183:update_scale] [deepspeed] OVERFLOW! Rank 0 "
            "Skipping step. Attempted loss scale: 4294967296, reducing to 2147483648\n")


def test_a_line_of_100k_pairs_is_read_up_to_the_cap(tmp_path):
    path = tmp_path / "pairs.log"
    path.write_text("step=1 " + " ".join(["loss=1"] * 100_000) + "\n")
    started = time.perf_counter()
    run = api.read_log(path)
    assert time.perf_counter() - started < 5
    assert 0 < len(run.frame) <= MAX_PAIRS
    assert run.capped.get("pairs") == 1
    report = api.diagnose(str(path))
    assert any("metric pairs" in w for w in report.warnings)


def test_64k_of_brackets_sniff_in_linear_time():
    started = time.perf_counter()
    for filler in (b"[", b"[a: 1 ", b"a", b"0", b"oss"):
        scores(b"[deepspeed]\n" + filler * (65536 // len(filler)) + b"\n")
    assert time.perf_counter() - started < 3


def test_brackets_log_parses_quickly(tmp_path):
    path = tmp_path / "brackets.log"
    path.write_bytes(b"[deepspeed] DeepSpeed info\n" + b"[" * 65536 + b"\n" + b"[a: 1 " * 10000 + b"\n")
    started = time.perf_counter()
    api.read_log(path)
    assert time.perf_counter() - started < 5


def test_many_overflows_keep_bounded_events_and_the_true_count(tmp_path):
    n = 3 * MAX_EVENTS + 7
    path = tmp_path / "overflow.log"
    path.write_text(OVERFLOW * n)
    run = api.read_log(path)
    kept = [e for e in run.events if e.kind == "overflow"]
    assert len(kept) == 2 * MAX_EVENTS
    assert run.count("overflow") == n
    assert kept[0].line == 1 and kept[-1].line == n  # the first and the last are kept
    assert run.capped.get("events") == n - 2 * MAX_EVENTS
    assert compute_features(run)["n_overflow_events"] == n


def test_carriage_return_updates_keep_both_ends_and_the_nonfinite(tmp_path):
    updates = [f"step={i} loss=0.5" for i in range(100_000)]
    updates[50_000] = "step=50000 loss=nan"
    path = tmp_path / "bar.log"
    path.write_text("\r".join(updates) + "\nstep=100001 loss=0.25\n")
    started = time.perf_counter()
    run = api.read_log(path)
    assert time.perf_counter() - started < 10
    steps = set(run.frame["step"].dropna().astype(int).tolist())
    assert {0, MAX_UPDATES - 1, 50_000, 99_999, 100_001} <= steps
    assert MAX_UPDATES * 2 < len(steps) < MAX_UPDATES * 2 + 10
    nan_rows = run.frame[run.frame["value"].map(math.isnan)]
    assert nan_rows["step"].tolist() == [50_000]
    assert set(run.frame["line"]) == {1, 2}  # line numbers hold
    assert run.capped.get("updates", 0) >= 100_000 - 2 * MAX_UPDATES - 1


def test_carriage_limit_passes_short_lines_unchanged():
    limit = CarriageLimit(keep=3)
    data = b"a\rb\rc\nd\n" * 10
    assert limit.feed(data) + limit.flush() == data
    assert limit.dropped == 0


def test_carriage_limit_across_chunks():
    limit = CarriageLimit(keep=2)
    pieces = [b"start\nu0\ru1\ru2\r", b"u3\ru4\r", b"nan5\ru6\ru7\nend\n"]
    out = b"".join(limit.feed(p) for p in pieces) + limit.flush()
    assert out == b"start\nu0\ru1\rnan5\ru6\ru7\nend\n"
    assert limit.dropped == 3


def test_the_carriage_limit_is_part_of_reading(tmp_path):
    path = tmp_path / "bar.log"
    path.write_text("\r".join(f"{i}" for i in range(10 * MAX_UPDATES)) + "\n")
    log = open_log(str(path))
    text = b"".join(log.chunks())
    log.close()
    assert text.count(b"\r") == 2 * MAX_UPDATES - 1
    assert log.capped == {"updates": 8 * MAX_UPDATES}
