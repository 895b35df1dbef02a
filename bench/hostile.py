"""Hostile inputs: can any log hang ``logsleuth diagnose`` or run away with memory?

Each case is generated into ``--workdir`` (deleted after it), then ``logsleuth diagnose
CASE --format json`` runs as a subprocess under a time limit (``--limit``, 30 s) while
the peak tree PSS of the process and its children is sampled (``throughput.py``'s
sampler). One table: case, seconds, peak MiB, outcome -- ``ok`` (exit 0 or 1, a
verdict), ``error exit 2`` (an input error said in one line), ``hang`` (killed at the
limit), ``crash`` (anything else: a traceback, a signal).

Cases (full sizes; ``--scale 0.1`` for a quick look): a 200 MB single line, 10 M
carriage-return updates on one line, a line of 100 k ``loss=1`` pairs, a Caffe log of 5 M
``loss = nan`` lines, 1 M DeepSpeed ``OVERFLOW`` lines, 64 ranks interleaved, endless
input (``/dev/zero`` and ``yes`` on stdin, where the limit is the expected end), a
FIFO fed by a writer, a gzip bomb named ``trainer_state.json.gz`` (2 GB of JSON), a
``trainer_state.json`` nested 100 k deep, an event file whose record 51 has a damaged
length field (a nan at step 150 after it), a zstd log cut in half, and a ``metrics.csv``
of 100 k columns. An ``ok`` outcome names the verdict.

Usage: ``python bench/hostile.py [--scale F] [--limit S] [--only a,b] [--workdir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import TreeMemorySampler  # noqa: E402

LOGSLEUTH = str(Path(sys.executable).with_name("logsleuth"))
OVERFLOW = (b"[2024-09-11 17:52:18,030] [INFO] [loss_scaler.py:183:update_scale] [deepspeed] OVERFLOW! Rank 0 "
            b"Skipping step. Attempted loss scale: 4294967296, reducing to 2147483648\n")
CAFFE = "I0425 10:13:21.206111  9167 solver.cpp:228] Iteration {}, loss = nan\n"


def _write_lines(path: Path, make, n: int, block: int = 100_000) -> None:
    """``make(i)`` for i < n, written in blocks (bytes)."""
    with open(path, "wb") as f:
        for lo in range(0, n, block):
            f.write(b"".join(make(i) for i in range(lo, min(n, lo + block))))


def gen_single_line(path: Path, scale: float) -> None:
    unit = b"step 1 loss 0.5 lr 0.01 " * 4096
    with open(path, "wb") as f:
        for _ in range(int(200 * (1 << 20) * scale) // len(unit)):
            f.write(unit)


def gen_cr(path: Path, scale: float) -> None:
    n = int(10_000_000 * scale)
    _write_lines(path, lambda i: b"\r%d/%d [00:01<00:02, 9.9it/s, loss=0.5]" % (i, n), n)
    with open(path, "ab") as f:
        f.write(b"\n")


def gen_pairs(path: Path, scale: float) -> None:
    path.write_bytes(b"step=1 " + b" ".join([b"loss=1"] * max(1000, int(100_000 * scale))) + b"\n")


def gen_caffe_nan(path: Path, scale: float) -> None:
    _write_lines(path, lambda i: CAFFE.format(i).encode(), int(5_000_000 * scale))


def gen_overflow(path: Path, scale: float) -> None:
    _write_lines(path, lambda i: OVERFLOW, int(1_000_000 * scale))


def gen_ranks(path: Path, scale: float) -> None:
    _write_lines(path, lambda i: b"[rank%d]: step=%d loss=%.4f lr=0.001\n" % (i % 64, i // 64, 2.0 / (1 + i / 6400)),
                 int(2_000_000 * scale))


def gen_fifo(path: Path, scale: float) -> None:
    os.mkfifo(path)

    def writer() -> None:
        with open(path, "wb") as f:  # blocks until the reader opens it
            for i in range(int(200_000 * scale)):
                f.write(b"step=%d loss=%.4f\n" % (i, 1.0 / (1 + i)))

    threading.Thread(target=writer, daemon=True).start()


def gen_state_bomb(path: Path, scale: float) -> Path:
    """A gzip bomb named trainer_state.json.gz: 2 GB of log_history entries, 2 MB on disk."""
    import gzip

    target = path.with_name("trainer_state.json.gz")
    entry = b'{"loss": 0.5, "learning_rate": 5e-05, "epoch": 0.1, "step": 1},'
    block = entry * (1 << 14)
    with gzip.open(target, "wb", compresslevel=9) as g:
        g.write(b'{"global_step": 1, "log_history": [')
        for _ in range(int((2 << 30) * scale) // len(block)):
            g.write(block)
        g.write(entry[:-1] + b"]}")
    return target


def gen_deep_json(path: Path, scale: float) -> Path:
    target = path.with_name("trainer_state.json")
    depth = max(1000, int(100_000 * scale))
    target.write_text('{"log_history": ' + "[" * depth + "]" * depth + "}")
    return target


def gen_damaged_events(path: Path, scale: float) -> Path:
    """201 records (the version, then a loss per step, nan at step 150), record 51's length
    field overwritten: what TensorBoard's reader stops at."""
    import struct

    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(path.parent), max_queue_size=300, flush_secs=3600)
    for step in range(200):
        value = float("nan") if step == 150 else 2.0 * 0.99 ** step
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="loss", simple_value=value)])
        writer.add_event(event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary))
    writer.close()
    (target,) = [p for p in path.parent.iterdir() if "tfevents" in p.name]
    data = bytearray(target.read_bytes())
    off = 0
    for _ in range(51):
        off += 16 + struct.unpack_from("<Q", data, off)[0]
    struct.pack_into("<Q", data, off, 1 << 60)
    target.write_bytes(bytes(data))
    return target


def gen_cut_zstd(path: Path, scale: float) -> Path:
    import zstandard

    target = path.with_name("case.log.zst")
    n = int(4_000_000 * scale)
    data = b"".join(b"step=%d loss=%.5f\n" % (i, 1.0 / (1 + i)) for i in range(n))
    whole = zstandard.ZstdCompressor().compress(data)
    target.write_bytes(whole[: len(whole) // 2])
    return target


def gen_wide_csv(path: Path, scale: float) -> Path:
    target = path.with_name("metrics.csv")
    columns = [f"c{i}" for i in range(max(1000, int(100_000 * scale)))]
    rows = [",".join(["epoch", "step", "train_loss", *columns])]
    rows += [",".join([str(e), str(10 * e), f"{2.0 - 0.1 * e:.2f}", *["1"] * len(columns)]) for e in range(10)]
    target.write_text("\n".join(rows) + "\n")
    return target


#: name -> (generator, command after ``logsleuth``, stdin source)
CASES = {
    "200 MB single line": (gen_single_line, None),
    "10 M \\r updates on a line": (gen_cr, None),
    "100 k pairs on a line": (gen_pairs, None),
    "5 M-line Caffe nan log": (gen_caffe_nan, None),
    "1 M DeepSpeed OVERFLOW lines": (gen_overflow, None),
    "64 ranks interleaved (2 M lines)": (gen_ranks, None),
    "/dev/zero": (None, "/dev/zero"),
    "endless stdin (yes)": (None, "-yes"),
    "FIFO": (gen_fifo, None),
    "trainer_state.json.gz bomb (2 GB of JSON)": (gen_state_bomb, None),
    "trainer_state.json nested 100 k deep": (gen_deep_json, None),
    "event file, record 51's length damaged": (gen_damaged_events, None),
    "zstd log cut in half (4 M lines)": (gen_cut_zstd, None),
    "metrics.csv of 100 k columns": (gen_wide_csv, None),
}


def run_case(target: str, limit: float, stdin_yes: bool = False) -> tuple[float, float, str]:
    """(seconds, peak tree PSS MiB, outcome) of ``diagnose target`` under ``limit``."""
    yes = subprocess.Popen(["yes", "step=1 loss=0.5"], stdout=subprocess.PIPE) if stdin_yes else None
    cmd = [LOGSLEUTH, "diagnose", target, "--format", "json"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=yes.stdout if yes else subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    sampler = TreeMemorySampler(proc.pid)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=limit)
        outcome = {0: "ok", 1: "ok", 2: "error exit 2"}.get(proc.returncode, f"crash (exit {proc.returncode})")
        if proc.returncode in (0, 1):
            outcome += f" ({json.loads(out)['verdict']['code']})"
        if proc.returncode == 2:
            message = err.decode("utf-8", "replace").strip().splitlines()[-1].removeprefix("logsleuth: error: ")
            folder = os.path.dirname(target)
            outcome += ": " + (message.replace(folder + "/", "") if folder != "/dev" else message)[:90]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        outcome = "hang (killed at the limit)"
    seconds = time.perf_counter() - t0
    sampler.done.set()
    sampler.join()
    if yes:
        yes.kill()
        yes.wait()
    return seconds, sampler.peak_kb / 1024, outcome


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="size factor (1 = the full sizes)")
    ap.add_argument("--limit", type=float, default=30.0, help="seconds per case")
    ap.add_argument("--only", default="", help="comma-separated case names (substrings)")
    ap.add_argument("--workdir", default="/tmp/logsleuth-hostile")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for name, (gen, fixed) in CASES.items():
            if args.only and not any(o in name for o in args.only.split(",")):
                continue
            path = work / "case.log"
            if gen is not None:
                path = gen(path, args.scale) or path  # a case may need its own file name
            size = path.stat().st_size / (1 << 20) if gen is not None and path.is_file() else None
            target = str(path) if fixed is None else ("-" if fixed == "-yes" else fixed)
            seconds, mib, outcome = run_case(target, args.limit, stdin_yes=fixed == "-yes")
            rows.append((name, "-" if size is None else f"{size:.0f}", f"{seconds:.1f}", f"{mib:.0f}", outcome))
            print(" | ".join(rows[-1]), flush=True)
            if path.exists() or path.is_fifo():
                path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n| case | MB | seconds | peak tree PSS MiB | outcome |\n|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
