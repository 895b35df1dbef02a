"""Build the corpus: run, measure, render, validate, write labels and the dataset card.

    python -m corpus.build --out corpus/data [--runs N] [--seed S] [--quick] [--jobs 2]

Each run (a :class:`~corpus.runs.RunSpec` drawn by :func:`corpus.causes.plan`) is trained
in a worker process, measured (:mod:`corpus.label`), saved under
``trajectories/<run>.jsonl.gz``, rendered into several logs (``logs/<run>-<k>-<format>.log``,
gzip-compressed when ``--gzip``, the default) and each log is read back with
``logsleuth.read_log`` (:mod:`corpus.validate`). Everything is seeded: the same
``--seed`` / ``--runs`` give the same files (gzip timestamps are zeroed).

Split: a run is *held out* when its seed is 3 mod 4 (so the held-out seeds never occur in
``train``); the ``mmcv`` and ``detectron2`` formats render held-out runs only, so those
formats never occur in ``train`` either.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from . import card, causes, compose, label, runs, store, validate

HELDOUT_FORMATS = ("mmcv", "detectron2")
COLUMNS = ("id", "format", "signature", "first_nonfinite_step", "injected_cause", "model", "seed", "log_interval",
           "variation", "split", "trajectory", "trajectory_signature", "first_nonfinite_line",
           "first_nonfinite_exact", "attempts", "max_steps", "steps_per_epoch", "batch_size", "lr", "optimizer",
           "path", "options")


def is_heldout(seed: int) -> bool:
    return seed % 4 == 3


def _step_field(r) -> str:  # noqa: ANN001
    if r.first_nonfinite_step is not None:
        return str(r.first_nonfinite_step)
    return "?" if r.first_nonfinite_line is not None else ""


def process(task: tuple) -> dict:
    """Worker: one run -> trajectory file, logs, label rows, validation results."""
    spec, out, per_run, gz = task
    out = Path(out)
    t0 = time.time()
    traj = runs.train(spec)
    meas = label.measure_trajectory(traj)
    store.save(out / "trajectories" / f"{spec.run_id}.jsonl.gz", traj, meas)
    heldout = is_heldout(spec.seed)
    rng = np.random.default_rng(spec.seed + 12345)
    rows, checks = [], []
    for k, (printer, r) in enumerate(compose.renderings(traj, meas, rng, per_run, heldout)):
        log_id = f"{spec.run_id}-{k}-{printer.name}"
        rel = f"logs/{log_id}.log" + (".gz" if gz else "")
        if gz:
            store.write_gz(out / rel, r.text)
        else:
            (out / rel).write_text(r.text, encoding="utf-8")
        row = {"id": log_id, "format": printer.name, "signature": r.signature,
               "first_nonfinite_step": _step_field(r), "injected_cause": spec.cause, "model": spec.model,
               "seed": spec.seed, "log_interval": r.interval, "variation": r.variation,
               "split": "heldout" if heldout else "train", "trajectory": spec.run_id,
               "trajectory_signature": meas.signature,
               "first_nonfinite_line": "" if r.first_nonfinite_line is None else r.first_nonfinite_line,
               "first_nonfinite_exact": int(r.first_nonfinite_exact), "attempts": len(traj.attempts),
               "max_steps": spec.max_steps, "steps_per_epoch": spec.steps_per_epoch, "batch_size": spec.batch_size,
               "lr": f"{spec.lr:.6g}", "optimizer": spec.optimizer, "path": rel,
               "options": json.dumps(r.options, sort_keys=True)}
        rows.append(row)
        checks.append({**validate.check(out / rel, printer.name, r.signature, row["first_nonfinite_step"]),
                       "path": rel})
    return {"rows": rows, "checks": checks, "run": spec.run_id, "cause": spec.cause, "signature": meas.signature,
            "steps": sum(len(a) for a in traj.attempts), "seconds": time.time() - t0}


def build(out: Path, n_runs: int, seed: int, per_run: int, jobs: int, gz: bool) -> dict:
    t0 = time.time()
    for sub in ("logs", "trajectories"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True, exist_ok=True)
    specs = causes.plan(n_runs, seed)
    tasks = [(s, str(out), per_run, gz) for s in specs]
    results = []
    ctx = mp.get_context("spawn")
    with ctx.Pool(jobs) as pool:
        for i, res in enumerate(pool.imap(process, tasks, chunksize=1), 1):
            results.append(res)
            if i % 25 == 0 or i == len(tasks):
                print(f"  {i}/{len(tasks)} runs, {sum(len(r['rows']) for r in results)} logs, "
                      f"{time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    rows = sorted((row for r in results for row in r["rows"]), key=lambda row: row["id"])
    with open(out / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    checks = sorted((c for r in results for c in r["checks"]), key=lambda c: c["path"])
    summary = validate.summarize(checks)
    (out / "validation.json").write_text(json.dumps(summary, indent=1, default=str))
    runs_info = sorted(({k: r[k] for k in ("run", "cause", "signature", "steps")} for r in results),
                       key=lambda r: r["run"])
    stats = {"runs": len(results), "logs": len(rows), "seed": seed, "per_run": per_run,
             "trajectory_signatures": dict(sorted(Counter(r["signature"] for r in results).items()))}
    (out / "runs.json").write_text(json.dumps({"stats": stats, "runs": runs_info}, indent=1))
    timing = {"seconds": round(time.time() - t0, 1), "jobs": jobs,
              "worker_seconds": round(sum(r["seconds"] for r in results), 1)}
    (out / "build_info.json").write_text(json.dumps(timing, indent=1))  # the one file that varies
    stats["seconds"] = timing["seconds"]
    text = card.readme(rows, runs_info, summary, stats, out)
    (out / "README.md").write_text(text)
    default_out = Path(__file__).parent / "data"
    if out.resolve() == default_out.resolve():
        (Path(__file__).parent / "README.md").write_text(text)
    return {"stats": stats, "validation": summary, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the labelled training-log corpus.")
    ap.add_argument("--out", type=Path, default=Path("corpus/data"))
    ap.add_argument("--runs", type=int, default=None, help="training runs (default 480; --quick: 16)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--logs-per-run", type=int, default=None, help="rendered logs per run (default 5; quick 4)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="a small corpus (~60 logs) in under two minutes")
    ap.add_argument("--no-gzip", dest="gzip", action="store_false", help="write plain .log files")
    args = ap.parse_args(argv)
    n_runs = args.runs or (16 if args.quick else 480)
    per_run = args.logs_per_run or (4 if args.quick else 5)
    result = build(args.out, n_runs, args.seed, per_run, args.jobs, args.gzip)
    st = result["stats"]
    print(f"built {st['logs']} logs from {st['runs']} runs in {st['seconds']}s -> {args.out}")
    print("signatures:", dict(sorted(Counter(r["signature"] for r in result["rows"]).items())))
    print("formats:", dict(sorted(Counter(r["format"] for r in result["rows"]).items())))
    validate.print_summary(result["validation"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
