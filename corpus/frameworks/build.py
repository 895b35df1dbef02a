"""Run the real-framework trainings, capture them like a scheduler, label them by measurement.

``python -m corpus.frameworks.build --out corpus/framework_runs [--seed 1] [--jobs 1]``
(from the repository root, in ``.venv-frameworks``; ``make corpus-frameworks``).

For each run of :func:`corpus.frameworks.plan.plan`: write ``spec.json``, start the
framework module as a subprocess with stdout *and* stderr appended to ``job.log``
(``>> job.log 2>&1``: one file, no TTY, tqdm's ``\\r`` and any ANSI kept), and, for a
re-queued run, start the same command again appending to the same file (from scratch, or
resuming from the run's checkpoint), as Slurm ``--requeue`` does. The run's own trace
(``trace.jsonl``, written from inside the training) is then measured with
:func:`corpus.label.measure_signature`; the injected cause is only recorded beside it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from corpus.frameworks.plan import plan
from corpus.label import history, measure_signature

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["id", "framework", "framework_version", "variant", "signature", "trajectory_signature",
           "first_nonfinite_step", "step_convention", "injected_cause", "attempts", "requeue", "steps",
           "steps_per_epoch", "log_every", "seed", "lr", "options", "path", "artefacts", "seconds"]
MODULES = {"hf": "corpus.frameworks.hf", "hf4": "corpus.frameworks.hf", "torch": "corpus.frameworks.loops",
           "lightning": "corpus.frameworks.lightning_runs", "keras": "corpus.frameworks.keras_runs",
           "tf": "corpus.frameworks.tf_loops", "keras_tf": "corpus.frameworks.keras_runs"}
PYTHONS = {"hf4": ROOT / ".venv-frameworks-hf4" / "bin" / "python",
           "tf": ROOT / ".venv-frameworks-tf" / "bin" / "python",
           "keras_tf": ROOT / ".venv-frameworks-tf" / "bin" / "python"}
CONVENTION = {"hf": "Trainer global_step (the tqdm bar count)", "hf4": "Trainer global_step (the tqdm bar count)",
              "torch": "1-based optimizer step, as printed", "lightning": "global_step = epoch * T + i (i 1-based)",
              "keras": "(epoch - 1) * T + c (c the 1-based bar count; TerminateOnNaN prints c - 1)",
              "tf": "1-based global optimizer step, as printed",
              "keras_tf": "(epoch - 1) * T + c (c the 1-based bar count; TerminateOnNaN prints c - 1)"}
KERAS_BACKEND = {"keras_tf": "tensorflow", "tf": "tensorflow"}  # every other family: torch
# TRL, Accelerate, mmengine: one venv (.venv-frameworks-extra, requirements-extra.txt).
EXTRA_PYTHON = ROOT / ".venv-frameworks-extra" / "bin" / "python"
MODULES.update(trl="corpus.frameworks.trl_runs", accelerate="corpus.frameworks.accelerate_runs",
               mmengine="corpus.frameworks.mmengine_runs")
PYTHONS.update(trl=EXTRA_PYTHON, accelerate=EXTRA_PYTHON, mmengine=EXTRA_PYTHON)
CONVENTION.update(trl="Trainer global_step (the tqdm bar count)",
                  accelerate="1-based optimizer step, as printed (rank 0's count)",
                  mmengine="(epoch - 1) * T + i (the log's [epoch][i/T], i 1-based)")


# Older releases: Keras 2 (tf_keras, in the TensorFlow venv, as tf.keras with TF_USE_LEGACY_KERAS=1),
# pytorch_lightning 1.9 and transformers 4.36 (.venv-frameworks-old, requirements-old.txt).
OLD_PYTHON = ROOT / ".venv-frameworks-old" / "bin" / "python"
MODULES.update(keras2="corpus.frameworks.keras_runs", lightning1="corpus.frameworks.lightning_runs",
               hf436="corpus.frameworks.hf")
PYTHONS.update(keras2=ROOT / ".venv-frameworks-tf" / "bin" / "python", lightning1=OLD_PYTHON, hf436=OLD_PYTHON)
CONVENTION.update(keras2=CONVENTION["keras"], lightning1=CONVENTION["lightning"], hf436=CONVENTION["hf"])
KERAS_BACKEND.update(keras2="tensorflow")
# torch 2.13's torch.load defaults to weights_only=True; Lightning 1.9's and transformers 4.36's resume
# (checkpoints with numpy RNG states) predate it and pass nothing: torch's own switch restores the old default.
ENV = {"keras2": {"TF_USE_LEGACY_KERAS": "1"}, "lightning1": {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"},
       "hf436": {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}}


def command(python: str, spec: dict, spec_file: Path) -> list[str]:
    """The job's command line: ``python -m module --spec``; Accelerate runs through its launcher.

    ``launch2-*``: ``accelerate launch --multi_gpu --num_processes 2`` (torchrun, two CPU ranks on
    gloo: the script's ``Accelerator(cpu=True)``); ``launch-cpu-*``: ``accelerate launch --cpu
    --num_processes 2``, which starts *one* process (Accelerate's simple launcher; multi-CPU with
    ``--cpu`` needs mpirun); ``python-*``: plain ``python -m``.
    """
    module, variant = MODULES[spec["framework"]], spec["variant"]
    args = ["-m", module, "--spec", str(spec_file)]
    if spec["framework"] == "accelerate" and variant.startswith("launch"):
        launcher = [str(Path(python).parent / "accelerate"), "launch"]
        flags = ["--multi_gpu", "--num_processes", "2"] if variant.startswith("launch2") else \
            ["--cpu", "--num_processes", "2"]
        return launcher + flags + args
    return [python] + args


def env_for(spec: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "TOKENIZERS_PARALLELISM": "false", "WANDB_DISABLED": "true",
                "KERAS_BACKEND": KERAS_BACKEND.get(spec["framework"], "torch"),
                "HOME": spec["workdir"], "TERM": "dumb", "COLUMNS": "120"})
    env.update(ENV.get(spec["framework"], {}))
    if spec.get("unbuffered"):
        env["PYTHONUNBUFFERED"] = "1"
    return env


def run_one(spec: dict, out: Path) -> dict:
    """All attempts of one run; returns its labels.csv row."""
    t0 = time.time()
    work = Path(tempfile.mkdtemp(prefix=f"lsfw-{spec['id']}-"))
    spec = {**spec, "workdir": str(work)}
    python = str(PYTHONS.get(spec["framework"], sys.executable))
    with open(work / "job.log", "ab") as log:
        for attempt in range(spec["attempts"]):
            a = {**spec, "attempt": attempt, "resume": attempt > 0 and spec["requeue"] == "resume"}
            (work / "spec.json").write_text(json.dumps(a, indent=1))
            cmd = command(python, spec, work / "spec.json")
            subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=work,
                           env=env_for(a), timeout=600, check=False)
            log.flush()
    row = label(spec, work)
    dest = out / "runs" / spec["id"]
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    gz(work / "job.log", dest / "job.log.gz")
    gz(work / "trace.jsonl", dest / "trace.jsonl.gz")
    arts = []
    for name in spec.get("artefacts", []):
        for src in sorted(work.glob(name)):
            rel = src.relative_to(work)
            target = dest / rel  # where the job wrote it, beside the log (logsleuth.companion looks there)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            arts.append(str(rel))
    shutil.rmtree(work, ignore_errors=True)
    row.update(path=f"runs/{spec['id']}/job.log.gz", artefacts=" ".join(arts), seconds=round(time.time() - t0, 1))
    return row


def relabel(spec: dict, out: Path) -> dict:
    """The labels.csv row of a run already built, measured again from its stored trace."""
    dest = out / "runs" / spec["id"]
    work = Path(tempfile.mkdtemp(prefix=f"lsfw-{spec['id']}-"))
    with gzip.open(dest / "trace.jsonl.gz", "rb") as g:
        (work / "trace.jsonl").write_bytes(g.read())
    row = label(spec, work)
    shutil.rmtree(work, ignore_errors=True)
    arts = sorted(p.name for p in dest.iterdir() if p.name not in ("job.log.gz", "trace.jsonl.gz"))
    row.update(path=f"runs/{spec['id']}/job.log.gz", artefacts=" ".join(arts), seconds="")
    return row


def interleave(specs: list[dict]) -> list[dict]:
    """Round-robin over (framework, variant), so that a partial build covers all of them."""
    by: dict[tuple, list] = {}
    for s in specs:
        by.setdefault((s["framework"], s["variant"]), []).append(s)
    out = []
    while any(by.values()):
        for k in list(by):
            if by[k]:
                out.append(by[k].pop(0))
    return out


def write_labels(out: Path, rows: list[dict]) -> None:
    with open(out / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: r["id"]))


def gz(src: Path, dst: Path) -> None:
    data = src.read_bytes() if src.exists() else b""
    with open(dst, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
        g.write(data)


def read_trace(work: Path) -> list[dict]:
    p = work / "trace.jsonl"
    if not p.exists():
        return []
    rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    for r in rows:
        if r["grad_norm"] is None:
            r["grad_norm"] = 0.0  # not measured by this framework: only the loss decides
        for k in ("loss", "grad_norm", "scale"):
            if isinstance(r[k], str):
                r[k] = float(r[k])
    return rows


def label(spec: dict, work: Path) -> dict:
    rows = read_trace(work)
    by_attempt: dict[int, dict[str, list]] = {}
    for r in rows:
        cols = by_attempt.setdefault(r["attempt"], {k: [] for k in ("step", "loss", "grad_norm", "scale", "overflow")})
        for k in cols:
            cols[k].append(r[k])
    attempts = [SimpleNamespace(rows=by_attempt[a]) for a in sorted(by_attempt)]
    sig, fns = "I000", None
    if attempts:
        stitched, att = history(SimpleNamespace(attempts=attempts))
        m = measure_signature(stitched, att if len(att) > 1 else None, spec.get("steps_per_epoch"))
        sig, fns = m.signature, m.first_nonfinite_step
    shown = sig
    if spec.get("hides_nan") and fns is not None and sig != "N202":
        shown = "N203"  # the logger printed a finite loss where the code computed nan (rendering label)
    return {"id": spec["id"], "framework": spec["framework"], "framework_version": spec["framework_version"],
            "variant": spec["variant"], "signature": shown, "trajectory_signature": sig,
            "first_nonfinite_step": "" if fns is None else fns, "step_convention": CONVENTION[spec["framework"]],
            "injected_cause": spec["cause"], "attempts": len(attempts), "requeue": spec["requeue"],
            "steps": spec["steps"], "steps_per_epoch": spec.get("steps_per_epoch"), "log_every": spec["log_every"],
            "seed": spec["seed"], "lr": spec["lr"], "options": json.dumps(spec.get("options", {}), sort_keys=True)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="corpus/framework_runs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated frameworks (hf,hf4,torch,lightning,keras)")
    ap.add_argument("--keep-existing", action="store_true",
                    help="runs already in --out are measured again from their trace, not re-run; build the rest")
    ap.add_argument("--limit", type=int, default=0, help="at most this many runs per framework (quick check)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    specs = plan(args.seed, only=[s for s in args.only.split(",") if s], limit=args.limit)
    old = list(csv.DictReader(open(out / "labels.csv"))) if (out / "labels.csv").exists() else []
    if not (args.only or args.limit):
        old = []  # a full build replaces labels.csv; a partial one keeps the other frameworks' rows
    ids = {s["id"] for s in specs}
    rows = [r for r in old if r["id"] not in ids]
    if args.keep_existing:  # runs already built are measured again from their stored trace, not re-run
        built = [s for s in specs if (out / "runs" / s["id"] / "trace.jsonl.gz").exists()
                 and (out / "runs" / s["id"] / "job.log.gz").exists()]
        rows += [relabel(s, out) for s in built]
        specs = [s for s in specs if s not in built]
    write_labels(out, rows)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for row in pool.map(lambda s: run_one(s, out), interleave(specs)):
            print(f"{row['id']:28s} {row['variant']:10s} {row['injected_cause']:20s} -> {row['signature']}"
                  f" (fns {row['first_nonfinite_step']}, {row['seconds']}s)", flush=True)
            rows.append(row)
            write_labels(out, rows)  # after every run: an interrupted build keeps what it made
    print(f"{len(rows)} rows -> {out / 'labels.csv'}")


if __name__ == "__main__":
    main()
