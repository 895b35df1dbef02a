"""Fleet benchmark for ``logsleuth audit``: runs/s and MB/s, the 1 -> 2 jobs speed-up, and
the event-file reader against TensorBoard's own reader.

What is measured
----------------
A fleet is generated once into the work dir (default ``bench/out/fleet_<runs>x<min>-<max>kb``,
git-ignored) and reused while its manifest (sizes, seed, generator version) matches.
Runs are of mixed kinds, each healthy, going nan, or exploding at a random point:

* text logs (``stdout.log``): Caffe, PyTorch ImageNet-example, Hugging Face dict lines,
  Megatron, fairseq;
* TensorBoard log dirs (one event file, or ``train/`` + ``validation/``; every tenth event
  file is cut in the middle of its last record, as a crashed writer leaves it);
* Hugging Face output dirs: ``stdout.log`` + ``trainer_state.json`` + ``runs/<date>/events``;
* Lightning ``lightning_logs/version_0/metrics.csv``; Keras ``CSVLogger`` + event files;
* MLflow file-store runs (``mlruns/0/<id>/metrics/...``).

Each run is about ``--min-mb`` .. ``--max-mb`` in all (default 1-5 MB, 2,000 runs, the
issue's example: about 6 GB, generated in a few minutes, audited in several; ``--quick``:
200 runs of 0.1-0.5 MB).

Then, on a warm page cache:

1. **sum of single-file parse times**: every artefact file parsed on its own, in this
   process, one after the other (``read_log`` / ``read_artifact``): what a loop over the
   files costs before any diagnosis (the sum of parse + diagnose is printed too);
2. ``logsleuth audit FLEET -o out.jsonl --jobs 1`` and ``--jobs 2``, each a fresh
   subprocess (``python -m logsleuth.audit.cli``), timed from outside (the interpreter's
   start-up, measured separately, is included), alternated ``--repeat`` times (default 2)
   keeping each one's fastest: runs/s, MB/s, CPU seconds, and the speed-up. The load
   average is printed: on a shared 2-core machine other processes decide the speed-up;
3. the event reader against TensorBoard's ``EventFileLoader`` (+ ``tensor_util.make_ndarray``
   to get each point's value), on the same two files (``simple_value`` scalars as
   PyTorch writes them, and TF2 tensor scalars): points found by each (they must agree)
   and time; the target is at least 5x faster with all points.

Usage: ``python bench/audit_fleet.py [--quick] [--runs N] [--min-mb A] [--max-mb B]
[--jobs 2] [--workdir DIR] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GENERATOR_VERSION = 1
KINDS = ("caffe", "pytorch", "hf", "megatron", "fairseq", "tb", "tb_keras", "hf_dir", "lightning", "keras_csv",
         "mlflow")
WEIGHTS = (10, 10, 10, 10, 10, 15, 5, 10, 10, 5, 5)


# ---------------------------------------------------------------- curves and text logs

def curve(n: int, rng: random.Random) -> tuple[list[float], str]:
    """A loss curve of ``n`` points: healthy, going nan, or exploding (and then inf, nan)."""
    shape = rng.choice(("healthy", "healthy", "nan", "explode"))
    fail = int(n * rng.uniform(0.3, 0.95))
    tau = n / 3
    out = []
    for i in range(n):
        v = 2.5 * math.exp(-i / tau) + 0.1 + rng.gauss(0, 0.01)
        if shape == "nan" and i >= fail:
            v = math.nan
        elif shape == "explode" and i >= fail:
            grown = (i - fail) / 4 + math.log(v)
            v = math.exp(grown) if grown < 88 else (math.inf if grown < 120 else math.nan)  # float32 overflows at e^88
        out.append(v)
    return out, shape


def _f(v: float) -> str:
    return "nan" if math.isnan(v) else ("inf" if math.isinf(v) else f"{v:.6g}")


LINES = {
    "caffe": lambda i, v, lr: (
        f"I0523 10:13:21.205826  9167 solver.cpp:228] Iteration {i * 20} (3.1 iter/s, 6.4s/20 iters), loss = {_f(v)}\n"
        f"I0523 10:13:21.205900  9167 solver.cpp:244]     Train net output #0: loss = {_f(v)} (* 1 = {_f(v)} loss)\n"
        f"I0523 10:13:21.205950  9167 sgd_solver.cpp:106] Iteration {i * 20}, lr = {lr:.6g}\n"),
    "pytorch": lambda i, v, lr: (
        f"Epoch: [{i // 500}][{i % 500:4d}/500]\tTime 0.253 (0.260)\tData 0.011 (0.012)\tLoss {_f(v)} ({_f(v)})\t"
        f"Acc@1 {50 + i % 7:.2f} (51.00)\tAcc@5 80.00 (81.00)\n"),
    "hf": lambda i, v, lr: (
        f"{{'loss': {_f(v)}, 'grad_norm': {1.2 + i % 5 / 10:.4f}, 'learning_rate': {lr:.6g}, "
        f"'epoch': {i / 1000:.2f}}}\n"),
    "megatron": lambda i, v, lr: (
        f" iteration {i * 10:8d}/  500000 | consumed samples: {i * 160:10d} | elapsed time per iteration (ms): 512.3 |"
        f" learning rate: {lr:.3E} | global batch size:    16 | lm loss: {v:.6E} | loss scale: 65536.0 |"
        f" grad norm: 1.234 | number of skipped iterations:   0 | number of nan iterations:   0 |\n"),
    "fairseq": lambda i, v, lr: (
        f"2020-01-01 12:00:00 | INFO | train_inner | epoch {1 + i // 1000:03d}:  {i % 1000:5d} / 1000 loss={_f(v)}, "
        f"nll_loss={_f(v)}, ppl=480.1, wps=12000, ups=3.1, wpb=4000, bsz=128, num_updates={i}, lr={lr:.6g}, "
        f"gnorm=1.2, loss_scale=128, train_wall=30, wall=60\n"),
}


def write_text_log(path: Path, kind: str, size: int, rng: random.Random) -> None:
    line = LINES[kind]
    n = max(20, size // len(line(1000, 1.0, 1e-3)))
    values, _ = curve(n, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line(i, v, 1e-3 * (0.5 if i > n // 2 else 1.0)) for i, v in enumerate(values)))


# ---------------------------------------------------------------- artefacts

def write_events(path: Path, tags: dict[str, list[float]], style: str = "simple", truncate: bool = False,
                 step_of=lambda i: i) -> None:  # type: ignore[no-untyped-def]
    """An event file written with TensorBoard's protos; CRCs computed in bulk."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import summary_v2

    from logsleuth.artifacts._crc32c import crc32c_many, mask

    records = [event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString()]
    n = max(len(v) for v in tags.values())
    for i in range(n):
        for tag, values in tags.items():
            if i >= len(values):
                continue
            if style == "simple":
                summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=values[i])])
            else:
                summary = summary_v2.scalar_pb(tag, values[i])
                if i:
                    summary.value[0].ClearField("metadata")
            ev = event_pb2.Event(wall_time=1.7e9 + i, step=step_of(i), summary=summary)
            records.append(ev.SerializeToString())
    heads = [len(r).to_bytes(8, "little") for r in records]
    blob_h = b"".join(heads)
    blob_d = b"".join(records)
    lens = np.array([len(r) for r in records])
    h_crc = mask(crc32c_many(blob_h, np.arange(len(records)) * 8, np.full(len(records), 8)))
    d_crc = mask(crc32c_many(blob_d, np.concatenate([[0], np.cumsum(lens)[:-1]]), lens))
    parts = []
    for head, rec, hc, dc in zip(heads, records, h_crc.tolist(), d_crc.tolist()):
        parts += [head, int(hc).to_bytes(4, "little"), rec, int(dc).to_bytes(4, "little")]
    data = b"".join(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[:-7] if truncate else data)


def _events_name(i: int) -> str:
    return f"events.out.tfevents.{1700000000 + i}.node{i % 7}.{1000 + i}.0"


def write_run(root: Path, index: int, kind: str, size: int, rng: random.Random) -> None:
    run = root / f"run{index:05d}_{kind}"
    if kind in LINES:
        write_text_log(run / "stdout.log", kind, size, rng)
    elif kind == "tb":
        n = size // 60
        loss, _ = curve(n, rng)
        write_events(run / _events_name(index), {"train/loss": loss, "train/lr": [1e-3] * (n // 10)},
                     truncate=index % 10 == 0)
    elif kind == "tb_keras":
        n = size // 110
        loss, _ = curve(n, rng)
        write_events(run / "train" / _events_name(index), {"epoch_loss": loss}, style="tf2")
        write_events(run / "validation" / _events_name(index + 1), {"epoch_loss": [0.5] * n}, style="tf2")
    elif kind == "hf_dir":
        write_text_log(run / "stdout.log", "hf", size // 3, rng)
        n = size // 3 // 110
        loss, _ = curve(n, rng)
        history = [{"epoch": i / 100, "grad_norm": 1.0, "learning_rate": 5e-5, "loss": v, "step": 10 * (i + 1)}
                   for i, v in enumerate(loss)]
        (run / "checkpoint-1").mkdir(parents=True, exist_ok=True)
        (run / "checkpoint-1" / "trainer_state.json").write_text(json.dumps({"log_history": history}))
        write_events(run / "runs" / "Jan01_12-00-00_node1" / _events_name(index), {"train/loss": loss},
                     step_of=lambda i: 10 * (i + 1))
    elif kind == "lightning":
        n = size // 28
        loss, _ = curve(n, rng)
        rows = "".join(f"{i // 1000},{i},{_f(v)},\n" if i % 100 else f"{i // 1000},{i},,0.5\n"
                       for i, v in enumerate(loss))
        (run / "lightning_logs" / "version_0").mkdir(parents=True, exist_ok=True)
        (run / "lightning_logs" / "version_0" / "metrics.csv").write_text("epoch,step,train_loss,val_loss\n" + rows)
    elif kind == "keras_csv":
        n = size // 40
        loss, _ = curve(n, rng)
        run.mkdir(parents=True, exist_ok=True)
        (run / "training.log").write_text("epoch,accuracy,loss,val_loss\n" + "".join(
            f"{i},0.{i % 90 + 10},{_f(v)},0.5\n" for i, v in enumerate(loss)))
    elif kind == "mlflow":
        n = size // 2 // 24
        loss, _ = curve(n, rng)
        mdir = root / "mlruns" / "0" / f"{index:032x}"
        (mdir / "metrics" / "train").mkdir(parents=True, exist_ok=True)
        (mdir / "meta.yaml").write_text(f"run_id: {index:032x}\nstatus: 3\n")
        (mdir / "metrics" / "train" / "loss").write_text("".join(f"{1700000000000 + i} {_f(v)} {i}\n"
                                                                  for i, v in enumerate(loss)))
        (mdir / "metrics" / "lr").write_text("".join(f"{1700000000000 + i} 0.001 {i}\n" for i in range(n)))


def generate(workdir: Path, runs: int, min_mb: float, max_mb: float, seed: int) -> Path:
    """The fleet under ``workdir/fleet`` (reused when the manifest matches)."""
    manifest = {"version": GENERATOR_VERSION, "runs": runs, "min_mb": min_mb, "max_mb": max_mb, "seed": seed}
    fleet = workdir / "fleet"
    stamp = workdir / "manifest.json"
    if stamp.exists() and json.loads(stamp.read_text()) == manifest and fleet.exists():
        return fleet
    shutil.rmtree(fleet, ignore_errors=True)
    rng = random.Random(seed)
    kinds = rng.choices(KINDS, weights=WEIGHTS, k=runs)
    start = time.perf_counter()
    for i, kind in enumerate(kinds):
        write_run(fleet, i, kind, int(rng.uniform(min_mb, max_mb) * (1 << 20)), random.Random(seed * 100003 + i))
        if sys.stderr.isatty():
            print(f"\rgenerating {i + 1}/{runs}", end="", file=sys.stderr)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    stamp.write_text(json.dumps(manifest))
    print(f"generated {runs} runs in {time.perf_counter() - start:.1f} s")
    return fleet


# ---------------------------------------------------------------- measurements

def parse_times(fleet: Path) -> dict[str, float]:
    """Every artefact file parsed alone, serially, in this process; and + diagnose."""
    from logsleuth.api import diagnose
    from logsleuth.audit import discover
    from logsleuth.audit.run import read_view

    parse = both = 0.0
    files = nbytes = 0
    for run in discover(fleet):
        for artifact in run.artifacts:
            t0 = time.perf_counter()
            view = read_view(artifact)
            t1 = time.perf_counter()
            if view is not None:
                diagnose(view)
            t2 = time.perf_counter()
            parse += t1 - t0
            both += t2 - t0
            files += 1
            nbytes += artifact.size
    return {"parse_s": parse, "parse_diagnose_s": both, "files": files, "bytes": nbytes}


def time_audit(fleet: Path, jobs: int, out: Path) -> dict[str, float]:
    cmd = [sys.executable, "-m", "logsleuth.audit.cli", str(fleet), "-o", str(out), "--force", "--jobs", str(jobs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the CLI and its (waited-for) workers
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        raise SystemExit(f"audit failed ({done.returncode}): {done.stderr[-2000:]}")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return {"wall_s": wall, "cpu_s": cpu, "rows": len(rows), "errors": sum(1 for r in rows if r["error"]),
            "failed": sum(1 for r in rows if r["failed"]), "summary": done.stdout}


def _burn(_: int) -> None:
    start = time.process_time()
    while time.process_time() - start < 0.05:
        pass


def machine_speedup(jobs: int) -> float:
    """What the machine allows right now: the 1 -> ``jobs`` speed-up of 40 x 50 ms of pure
    CPU in a process pool (the ceiling for the audit's speed-up; < ``jobs`` when other
    processes hold the cores)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.perf_counter()
    for i in range(40):
        _burn(i)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        list(pool.map(_burn, range(40)))
    return one / (time.perf_counter() - t0)


def startup_s() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import logsleuth.audit.cli, logsleuth.api"], check=True)
    return time.perf_counter() - t0


def reader_vs_tensorboard(workdir: Path, records: int) -> list[dict[str, float | str | int]]:
    """Our event reader against TensorBoard's on the same files: points and time."""
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.util import tensor_util

    from logsleuth.artifacts import read_tfevents

    rng = random.Random(5)
    results = []
    for style in ("simple", "tf2"):
        path = workdir / f"reader_{style}_{records}" / _events_name(0)
        if not path.exists():
            loss, _ = curve(records, rng)
            write_events(path, {"loss": loss, "lr": [1e-3] * records} if style == "simple" else {"loss": loss},
                         style=style)
        best_ours, best_tb = math.inf, math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            series = read_tfevents(str(path))
            best_ours = min(best_ours, time.perf_counter() - t0)
        for _ in range(2):
            t0 = time.perf_counter()
            points = []
            plugins: dict[str, str] = {}
            for ev in event_file_loader.EventFileLoader(str(path)).Load():
                for v in ev.summary.value:
                    if v.metadata.plugin_data.plugin_name:
                        plugins.setdefault(v.tag, v.metadata.plugin_data.plugin_name)
                    if plugins.get(v.tag) == "scalars":
                        points.append((ev.step, v.tag, float(tensor_util.make_ndarray(v.tensor).item())))
            best_tb = min(best_tb, time.perf_counter() - t0)
        def key(p: tuple) -> tuple:  # type: ignore[type-arg]
            return p[0], repr(float(p[1]))  # nan == nan

        ours = sorted(zip(series.frame["step"].tolist(), series.frame["value"].tolist()), key=key)
        theirs = sorted(((s, val) for s, _, val in points), key=key)
        agree = [key(p) for p in ours] == [key(p) for p in theirs]
        results.append({"style": style, "bytes": path.stat().st_size, "points_ours": len(ours),
                        "points_tensorboard": len(points), "agree": agree, "ours_s": best_ours,
                        "tensorboard_s": best_tb, "ratio": best_tb / best_ours})
    return results


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="200 runs of 0.1-0.5 MB")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--min-mb", type=float)
    ap.add_argument("--max-mb", type=float)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="audits per job count (the fastest is kept)")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    runs = args.runs or (200 if args.quick else 2000)
    lo, hi = args.min_mb or (0.1 if args.quick else 1.0), args.max_mb or (0.5 if args.quick else 5.0)
    workdir = args.workdir or HERE / "out" / f"fleet_{runs}x{int(lo * 1024)}-{int(hi * 1024)}kb"
    workdir.mkdir(parents=True, exist_ok=True)
    fleet = generate(workdir, runs, lo, hi, args.seed)
    total = sum(p.stat().st_size for p in fleet.rglob("*") if p.is_file())
    mb = total / 1e6
    print(f"fleet: {fleet} ({runs} runs, {mb:.0f} MB, {os.cpu_count()} CPUs, Python {sys.version.split()[0]})")

    load = os.getloadavg()
    single = parse_times(fleet)
    start = startup_s()
    audits: dict[int, dict] = {}
    for _ in range(args.repeat):  # alternate 1 and N jobs; keep each one's fastest run
        for j in sorted({1, args.jobs}):
            a = time_audit(fleet, j, workdir / f"audit_j{j}.jsonl")
            if j not in audits or a["wall_s"] < audits[j]["wall_s"]:
                audits[j] = a
    ceiling = machine_speedup(args.jobs) if args.jobs != 1 else 1.0
    readers = reader_vs_tensorboard(workdir, 100_000 if not args.quick else 20_000)

    print()
    print(f"load average (1 min) before/after: {load[0]:.2f} / {os.getloadavg()[0]:.2f} "
          "(other processes on the machine skew the jobs figures)")
    print(f"{'what':44s} {'seconds':>9s} {'runs/s':>8s} {'MB/s':>8s}")
    print(f"{'sum of single-file parse times (' + str(single['files']) + ' files)':44s} {single['parse_s']:9.2f} "
          f"{runs / single['parse_s']:8.1f} {mb / single['parse_s']:8.1f}")
    print(f"{'sum of single-file parse + diagnose':44s} {single['parse_diagnose_s']:9.2f} "
          f"{runs / single['parse_diagnose_s']:8.1f} {mb / single['parse_diagnose_s']:8.1f}")
    for j, a in audits.items():
        print(f"{'logsleuth audit --jobs ' + str(j):44s} {a['wall_s']:9.2f} {runs / a['wall_s']:8.1f} "
              f"{mb / a['wall_s']:8.1f}   (cpu {a['cpu_s']:.1f} s; {a['rows']} rows, {a['failed']} failed, "
              f"{a['errors']} errors)")
    print(f"{'  (interpreter + import start-up, included)':44s} {start:9.2f}")
    if args.jobs != 1:
        print(f"speed-up 1 -> {args.jobs} jobs: {audits[1]['wall_s'] / audits[args.jobs]['wall_s']:.2f}x "
              f"(pure-CPU ceiling on this machine right now: {ceiling:.2f}x)")
    print()
    print(f"{'event reader':10s} {'MB':>6s} {'points ours':>12s} {'points tb':>10s} {'agree':>6s} {'ours s':>8s} "
          f"{'tb s':>8s} {'ratio':>7s}")
    for r in readers:
        print(f"{r['style']:10s} {r['bytes'] / 1e6:6.1f} {r['points_ours']:12d} {r['points_tensorboard']:10d} "
              f"{str(r['agree']):>6s} {r['ours_s']:8.3f} {r['tensorboard_s']:8.3f} {r['ratio']:6.1f}x")
    print("target: ratio >= 5x with all points")
    print()
    print(audits[args.jobs]["summary"].split("worst runs")[0].rstrip())
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "bytes": total, "single": single, "startup_s": start,
                                         "ceiling": ceiling, "load_before": load[0],
                                         "audits": {str(j): {k: v for k, v in a.items() if k != "summary"}
                                                    for j, a in audits.items()},
                                         "readers": readers}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
