"""Throughput and memory benchmark for ``logsleuth parse`` on large synthetic logs.

What is measured
----------------
Two logs are generated once into the work dir (default ``bench/out/``, git-ignored) and
reused while their size and the generator version match:

* ``caffe``: a Caffe glog log (train display every 20 iterations, a test pass every
  1000, a slowly decreasing noisy loss and one ``loss = nan`` near the end);
* ``hf``: a Hugging Face Trainer console log: one tqdm update per step separated by
  carriage returns, a ``{'loss': ...}`` dict line every 10 steps, an eval dict every
  1000 steps, and one ``'loss': nan`` near the end.

For each log, every command below runs as its own subprocess, ``--repeat`` times (fewer
once a command's runs took ``--budget-s`` in all), after one warm-up read of the file, so
all of them read from a warm page cache:

* ``grep -c loss`` (with ``LC_ALL=C``): roughly the speed of reading the bytes at all;
* ``loop``: the minimal one-regex Python loop a user would write first (text mode,
  ``for line in f: RX.search(line)``); this is the yardstick of the spec's targets;
* ``logsleuth parse LOG -o OUT.csv`` and ``-o OUT.parquet``.

Per command we report the median wall time (the median, not the mean or the minimum,
because a 2-core machine running a process pool is noisy: one slow run from a
background hiccup must not move the figure, and the median is still a time a user
actually gets), MB/s, CPU seconds (user + system, the command's whole process tree),
the largest single-process max RSS (exact, ``/usr/bin/time -f %M``), and the peak of
the summed PSS over the command's process tree, sampled every 50 ms from ``/proc``.
The last one is the figure the memory target is judged on: ``logsleuth`` forks a
worker pool for large files, so one process' RSS understates what the command uses,
while summing RSS would count the pages forked workers share with their parent twice.

Targets (from the spec), checked against the median: Caffe ``logsleuth parse`` at most
1.5x the loop (stretch 1.0x) and peak memory under 200 MB; HF at most 1.0x the loop.

Usage: ``python bench/throughput.py [--quick | --size-mb N] [--repeat N] [--budget-s S]
[--only caffe|hf] [--workdir DIR] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from functools import cache, lru_cache
from pathlib import Path

GENERATOR_VERSION = 2
MB = 1 << 20
FLUSH_BYTES = 8 * MB
SAMPLE_S = 0.05
HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------- log generators

_CAFFE_TRAIN = (
    "%ssolver.cpp:228] Iteration %d (%.6g iter/s, %.5gs/20 iters), loss = %.6g\n"
    "%ssolver.cpp:244]     Train net output #0: loss = %.6g (* 1 = %.6g loss)\n"
    "%ssgd_solver.cpp:106] Iteration %d, lr = %.6g\n"
)
_CAFFE_TEST = (
    "%ssolver.cpp:330] Iteration %d, Testing net (#0)\n"
    "%ssolver.cpp:397]     Test net output #0: accuracy = %.4g\n"
    "%ssolver.cpp:397]     Test net output #1: loss = %.6g (* 1 = %.6g loss)\n"
)
_CAFFE_BLOCK_BYTES = 300  # about one train display block; only shapes the loss curve


class _BlockWriter:
    """Collect strings and write them to ``path`` in blocks of about ``FLUSH_BYTES`` chars."""

    def __init__(self, path: Path):
        self.f = open(path, "w", encoding="utf-8", newline="")
        self.parts: list[str] = []
        self.pending = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pending += len(text)
        if self.pending >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        self.f.write("".join(self.parts))
        self.parts, self.pending = [], 0

    def close(self) -> None:
        self.flush()
        self.f.close()


@cache
def _glog_date(day: int) -> str:
    d = dt.date(2017, 5, 23) + dt.timedelta(days=day)
    return f"{d.month:02d}{d.day:02d}"


def _glog_prefix(t: float, pid: int) -> str:
    day, sod = divmod(t, 86400.0)
    h, rest = divmod(int(sod), 3600)
    m, s = divmod(rest, 60)
    us = int((sod % 1.0) * 1e6)
    return "I%s %02d:%02d:%02d.%06d %5d " % (_glog_date(int(day)), h, m, s, us, pid)


def generate_caffe(path: Path, target: int, seed: int = 0) -> None:
    """A Caffe solver log of about ``target`` bytes (ASCII, so chars == bytes)."""
    rng = random.Random(seed)
    gauss = rng.gauss
    out = _BlockWriter(path)
    total_iters = 20 * target // _CAFFE_BLOCK_BYTES
    tau, lr_step = total_iters / 4, max(1, total_iters // 3)
    nan_at = int(target * 0.97)
    it, t, pid, size = 0, 35601.205826, 9167, 0
    while size < target:
        parts = []
        for _ in range(2000):
            it += 20
            ips = 3.1 * (1 + 0.03 * gauss(0, 1))
            t += 20 / ips
            p = _glog_prefix(t, pid)
            smooth = 0.2 + 2.2 * math.exp(-it / tau)
            if it % 1000 == 0:
                test_loss = smooth + 0.05 + abs(gauss(0, 0.02))
                acc = min(0.99, max(0.0, 0.95 - 0.3 * test_loss + gauss(0, 0.01)))
                parts.append(_CAFFE_TEST % (p, it, p, acc, p, test_loss, test_loss))
                size += len(parts[-1])
            loss = max(0.001, smooth * (1 + 0.15 * gauss(0, 1)))
            if nan_at is not None and size >= nan_at:
                loss, nan_at = math.nan, None
            lr = 0.01 * 0.1 ** (it // lr_step)
            parts.append(_CAFFE_TRAIN % (p, it, ips, 20 / ips, loss, p, loss, loss, p, it, lr))
            size += len(parts[-1])
            if size >= target:
                break
        out.add("".join(parts))
    out.close()


_TQDM_CHARS = " ▏▎▍▌▋▊▉█"
_TQDM_WIDTH = 10
_HF_UPDATE = "\r%s%d/%d [%s<%s, %5.2fit/s]"
_HF_LOSS = "\n{'loss': %r, 'grad_norm': %r, 'learning_rate': %r, 'epoch': %r}\n"
_HF_EVAL = "{'eval_loss': %r, 'eval_runtime': %r, 'epoch': %r}\n"


@cache
def _tqdm_head(q: int) -> str:
    """``' 45%|████▌     | '`` for progress in [q/400, (q+1)/400): fixes both the
    rounded percentage (1/100 steps) and the bar (1/80 steps)."""
    frac = (q + 0.5) / 400
    nsyms = len(_TQDM_CHARS) - 1
    full, part = divmod(int(frac * _TQDM_WIDTH * nsyms), nsyms)
    bar = "█" * full
    if full < _TQDM_WIDTH:
        bar += _TQDM_CHARS[part] + " " * (_TQDM_WIDTH - full - 1)
    return "%3.0f%%|%s| " % (frac * 100, bar)


@lru_cache(maxsize=1 << 18)
def _tqdm_interval(seconds: int) -> str:
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _hf_total_steps(target: int) -> int:
    """Steps whose log comes to about ``target`` bytes (a bar line at mid-run, plus a
    tenth of a loss line, per step)."""
    total = target // 80
    for _ in range(3):
        mid = total // 2
        update = _HF_UPDATE % (_tqdm_head(200), mid, total, "11:22:33", "11:22:33", 44.1)
        loss = _HF_LOSS % (0.4321, 1.2345, 2.5e-05, 1.23)
        total = int(target / (len(update.encode()) + len(loss) / 10))
    return total


def generate_hf(path: Path, target: int, seed: int = 0) -> None:
    """A Trainer console log of about ``target`` bytes, ending at 100%."""
    rng = random.Random(seed)
    gauss = rng.gauss
    out = _BlockWriter(path)
    total = _hf_total_steps(target)
    steps_per_epoch = max(10, total // 3)
    nan_at = int(total * 0.97) // 10 * 10
    n, t = 0, 0.0
    while n < total:
        parts = []
        for _ in range(200):
            if n >= total:
                break
            rate = 44.1 * (1 + 0.05 * gauss(0, 1))
            dt_step = 1 / rate
            for _ in range(min(10, total - n)):
                n += 1
                t += dt_step
                parts.append(_HF_UPDATE % (_tqdm_head(n * 400 // total), n, total, _tqdm_interval(int(t)),
                                           _tqdm_interval(int((total - n) * dt_step)), rate))
            if n % 10:
                continue
            epoch = round(n / steps_per_epoch, 2)
            smooth = 0.15 + 2.5 * math.exp(-4 * n / total)
            loss = math.nan if n == nan_at else round(max(0.001, smooth * (1 + 0.1 * gauss(0, 1))), 4)
            grad = round(abs(1.2 + 0.3 * gauss(0, 1)), 4)
            parts.append(_HF_LOSS % (loss, grad, 5e-05 * (1 - n / total), epoch))
            if n % 1000 == 0:
                parts.append(_HF_EVAL % (round(smooth + 0.05, 4), round(1.2 + 0.05 * gauss(0, 1), 4), epoch))
        out.add("".join(parts))
    out.close()


GENERATORS = {"caffe": generate_caffe, "hf": generate_hf}


def ensure_log(kind: str, workdir: Path, size_mb: int) -> tuple[Path, float | None]:
    """The log's path, and the seconds spent generating it (None when reused)."""
    path = workdir / f"{kind}_{size_mb}mb.log"
    meta_path = path.with_suffix(".meta.json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("version") == GENERATOR_VERSION and meta.get("bytes") == path.stat().st_size:
            return path, None
    t0 = time.perf_counter()
    GENERATORS[kind](path, size_mb * MB)
    took = time.perf_counter() - t0
    meta_path.write_text(json.dumps({"version": GENERATOR_VERSION, "bytes": path.stat().st_size}))
    return path, took


def warm_read(path: Path) -> None:
    """Read the file once so every timed command starts from a warm page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(16 * MB):
            pass


# ---------------------------------------------------------------- measuring

LOOP_SOURCE = """\
import re, sys
RX = re.compile(sys.argv[2]); n = 0
for line in open(sys.argv[1], encoding="utf-8", errors="replace"): n += bool(RX.search(line))
print(n)
"""
LOOP_RX = {"caffe": r"Iteration (\d+).*loss = (\S+)", "hf": r"'loss': (\S+)"}


@dataclass
class Plan:
    repeat: int
    budget_s: float


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    tree_pss_mb: float
    rc: int
    stdout: str
    stderr: str


@dataclass
class Result:
    name: str
    cmd: list[str]
    runs: list[Run] = field(default_factory=list)
    median_s: float | None = None
    mb_s: float | None = None
    cpu_s: float | None = None
    max_rss_mb: float | None = None
    tree_pss_mb: float | None = None
    vs_loop: float | None = None
    error: str | None = None


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (one pass over ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeMemorySampler(threading.Thread):
    """Peak of the summed PSS of a process tree (less its root, a ``time`` shim),
    sampled every ``SAMPLE_S``."""

    def __init__(self, pid: int, skip_root: bool = False):
        super().__init__(daemon=True)
        self.pid, self.skip_root, self.peak_kb = pid, skip_root, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            tree = _descendants(self.pid)[1 if self.skip_root else 0:]
            self.peak_kb = max(self.peak_kb, sum(_pss_kb(p) for p in tree))
            self.done.wait(SAMPLE_S)


TIME_BIN = "/usr/bin/time"


def run_once(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``cmd``: wall time around it, CPU from ``wait4``, tree PSS by sampling, and
    max RSS from ``/usr/bin/time -f %M``. ``wait4``'s own max RSS is not used: a child
    forked from this (large) Python process is charged its parent's pages until exec,
    while ``time`` is a small process to fork from."""
    timed = os.path.exists(TIME_BIN)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        argv = [TIME_BIN, "-f", "%M", "-o", rss.name, *cmd] if timed else cmd
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        sampler = TreeMemorySampler(proc.pid, skip_root=timed)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        sampler.done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        max_rss_kb = _last_int(rss.read()) if timed else usage.ru_maxrss
        out.seek(0)
        err.seek(0)
        return Run(wall, usage.ru_utime + usage.ru_stime, (max_rss_kb or 0) / 1024, sampler.peak_kb / 1024,
                   proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def _last_int(text: str) -> int | None:
    """The last line of ``text`` as an int (``time`` puts its figure after any
    "Command exited with non-zero status" line)."""
    lines = text.strip().splitlines()
    try:
        return int(lines[-1]) if lines else None
    except ValueError:
        return None


def measure(name: str, cmd: list[str], size: int, plan: Plan, ok_rcs=(0,), env=None) -> Result:
    """Run ``cmd`` up to ``plan.repeat`` times, fewer once its runs took ``plan.budget_s``
    in all (a command 100x off target needs no third sample), stopping at the first
    failure; then take medians."""
    res = Result(name, cmd)
    spent = 0.0
    while len(res.runs) < plan.repeat and spent < plan.budget_s:
        run = run_once(cmd, env)
        res.runs.append(run)
        spent += run.wall_s
        if run.rc not in ok_rcs:
            tail = (run.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            res.error = f"rc={run.rc}: {tail[:90]}"
            return res
    res.median_s = statistics.median(r.wall_s for r in res.runs)
    res.mb_s = size / MB / res.median_s
    res.cpu_s = statistics.median(r.cpu_s for r in res.runs)
    res.max_rss_mb = max(r.max_rss_mb for r in res.runs)
    res.tree_pss_mb = max(r.tree_pss_mb for r in res.runs)
    return res


def logsleuth_exe() -> str:
    beside = Path(sys.executable).with_name("logsleuth")
    return str(beside) if beside.exists() else (shutil.which("logsleuth") or "logsleuth")


def bench_log(kind: str, path: Path, workdir: Path, plan: Plan) -> dict:
    size = path.stat().st_size
    warm_read(path)
    grep_env = dict(os.environ, LC_ALL="C")
    exe = logsleuth_exe()
    csv_out, pq_out = workdir / f"{path.stem}.out.csv", workdir / f"{path.stem}.out.parquet"
    results = [
        measure("grep -c loss", ["grep", "-c", "loss", str(path)], size, plan, ok_rcs=(0, 1), env=grep_env),
        measure("loop (1 regex)", [sys.executable, "-c", LOOP_SOURCE, str(path), LOOP_RX[kind]], size, plan),
        measure("logsleuth -> csv", [exe, "parse", str(path), "-o", str(csv_out), "--force"], size, plan),
        measure("logsleuth -> parquet", [exe, "parse", str(path), "-o", str(pq_out), "--force"], size, plan),
    ]
    loop = results[1].median_s
    for r in results:
        if r.median_s is not None and loop:
            r.vs_loop = r.median_s / loop
    return {"path": str(path), "bytes": size, "results": results, "csv": check_csv(csv_out, results[2]),
            "loop_matches": _int_or_none(results[1].runs[-1].stdout)}


def _int_or_none(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def check_csv(csv_out: Path, res: Result) -> dict:
    """Row count (``wc -l``, header included) and whether a ``nan`` value row exists."""
    if res.error or not csv_out.exists():
        return {"rows": None, "nan_row": None}
    rows = int(subprocess.run(["wc", "-l", str(csv_out)], capture_output=True, text=True).stdout.split()[0])
    nan = subprocess.run(["grep", "-q", "-m1", "-E", "^[^,]*,[^,]*,nan,", str(csv_out)],
                         env=dict(os.environ, LC_ALL="C")).returncode == 0
    return {"rows": rows, "nan_row": nan}


# ---------------------------------------------------------------- targets and report

TARGETS = {
    "caffe": {"max_vs_loop": 1.5, "stretch_vs_loop": 1.0, "max_tree_mb": 200.0},
    "hf": {"max_vs_loop": 1.0},
}


def target_verdict(kind: str, r: Result) -> str:
    if not r.name.startswith("logsleuth"):
        return ""
    if r.error:
        return "FAIL (did not run)"
    t = TARGETS[kind]
    parts = [f"<= {t['max_vs_loop']:.1f}x: " + ("ok" if r.vs_loop <= t["max_vs_loop"] else "MISS")]
    if "stretch_vs_loop" in t:
        parts.append(f"stretch {t['stretch_vs_loop']:.1f}x: " + ("ok" if r.vs_loop <= t["stretch_vs_loop"] else "no"))
    if "max_tree_mb" in t:
        parts.append(f"< {t['max_tree_mb']:.0f} MB: " + ("ok" if r.tree_pss_mb < t["max_tree_mb"] else "MISS"))
    return ", ".join(parts)


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_report(kind: str, info: dict, generated_s: float | None) -> None:
    gen = f"generated in {generated_s:.1f}s" if generated_s is not None else "reused"
    print(f"\n== {kind}: {info['path']}  {info['bytes'] / MB:.1f} MB ({gen})")
    header = (f"{'command':<22}{'runs':>5}{'median s':>9}{'MB/s':>8}{'cpu s':>8}{'max RSS':>9}{'tree PSS':>10}"
              f"{'vs loop':>9}  target")
    print(header)
    print("-" * len(header))
    for r in info["results"]:
        if r.error:
            print(f"{r.name:<22}{len(r.runs):>5}  FAILED {r.error}")
            continue
        vs = f"{r.vs_loop:.2f}x" if r.vs_loop is not None else "-"
        print(f"{r.name:<22}{len(r.runs):>5}{_f(r.median_s, '9.3f')}{_f(r.mb_s, '8.1f')}{_f(r.cpu_s, '8.2f')}"
              f"{_f(r.max_rss_mb, '7.0f')}MB{_f(r.tree_pss_mb, '8.0f')}MB{vs:>9}  {target_verdict(kind, r)}")
    csv = info["csv"]
    print(f"csv: {csv['rows']} lines (wc -l, with header); nan value row: "
          f"{'yes' if csv['nan_row'] else 'NO' if csv['nan_row'] is False else '-'}; "
          f"loop matched {info['loop_matches']} lines")


def to_json(report: dict) -> dict:
    out = dict(report)
    out["logs"] = {}
    for kind, info in report["logs"].items():
        info = dict(info)
        info["results"] = [{k: v for k, v in asdict(r).items() if k != "runs"} |
                           {"runs_s": [round(run.wall_s, 4) for run in r.runs]} for r in info["results"]]
        out["logs"][kind] = info
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=500, help="size of each synthetic log (default 500)")
    ap.add_argument("--quick", action="store_true", help="50 MB logs")
    ap.add_argument("--repeat", type=int, default=3, help="runs per command; the median is reported (default 3)")
    ap.add_argument("--budget-s", type=float, help="stop repeating a command once its runs took this long "
                    "(default 60, 10 with --quick)")
    ap.add_argument("--workdir", type=Path, default=HERE / "out", help="where logs and outputs go (default bench/out)")
    ap.add_argument("--only", choices=sorted(GENERATORS), action="append", help="benchmark only this log")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = ap.parse_args(argv)
    if args.quick:
        args.size_mb = 50
    if args.budget_s is None:
        args.budget_s = 10.0 if args.quick else 60.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    plan = Plan(args.repeat, args.budget_s)
    report = {"size_mb": args.size_mb, "repeat": args.repeat, "budget_s": args.budget_s, "cpus": os.cpu_count(),
              "python": platform.python_version(), "logsleuth": logsleuth_exe(), "targets": TARGETS, "logs": {}}
    print(f"logsleuth throughput: {args.size_mb} MB logs, {os.cpu_count()} CPUs; median of up to {args.repeat} "
          f"runs (fewer past {args.budget_s:.0f}s per command); tree PSS sampled every {SAMPLE_S * 1000:.0f} ms")
    for kind in args.only or list(GENERATORS):
        path, generated_s = ensure_log(kind, args.workdir, args.size_mb)
        info = bench_log(kind, path, args.workdir, plan)
        info["generated_s"] = generated_s
        report["logs"][kind] = info
        print_report(kind, info, generated_s)
    if args.json:
        args.json.write_text(json.dumps(to_json(report), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
