"""Time and memory of ``logsleuth diagnose`` on a large log, against parsing the same log.

The target (issue 3): ``logsleuth diagnose`` on a 1 GB log finishes in the time it takes
to parse it plus under a second. Both commands run as subprocesses on the same generated
log (the Caffe and Hugging Face generators of ``bench/throughput.py``, which put one nan
near the end), from a warm page cache, ``--repeat`` times each, interleaved so that load
which comes and goes hits both alike; medians are compared:

* ``parse``: ``logsleuth parse LOG -o OUT.parquet`` -- the series of the whole log;
* ``diagnose``: ``logsleuth diagnose LOG --format json --report OUT.json`` -- the verdict,
  computed on the bounded row sample of :mod:`logsleuth.sample`.

Also printed: peak tree PSS of each (see ``bench/throughput.py``), and the verdict and first
non-finite step of the report, which must be the nan the generator planted.

Usage: ``python bench/diagnose_time.py [--size-mb 1024] [--only caffe|hf] [--repeat 3]
[--workdir bench/out] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import GENERATORS, MB, ensure_log, logsleuth_exe, run_once, warm_read  # noqa: E402

TARGET_EXTRA_S = 1.0


def bench(kind: str, workdir: Path, size_mb: int, repeat: int) -> dict:
    path, generated = ensure_log(kind, workdir, size_mb)
    warm_read(path)
    exe = logsleuth_exe()
    parquet, report = workdir / f"{path.stem}.out.parquet", workdir / f"{path.stem}.diagnosis.json"
    commands = {"parse": [exe, "parse", str(path), "-o", str(parquet), "--force"],
                "diagnose": [exe, "diagnose", str(path), "--format", "json", "--report", str(report), "--force"]}
    runs: dict[str, list] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, cmd in commands.items():
            run = run_once(cmd)
            if run.rc not in (0, 1):  # diagnose exits 1 on a diagnosed failure
                raise SystemExit(f"{name} failed (rc={run.rc}): {run.stderr.strip()[-200:]}")
            runs[name].append(run)
    doc = json.loads(report.read_text())
    out = {"path": str(path), "mb": path.stat().st_size / MB, "generated_s": generated,
           "verdict": doc["verdict"]["code"], "first_nonfinite_step": (doc["first_nonfinite"] or {}).get("step"),
           "warnings": doc.get("warnings", [])}
    for name, rs in runs.items():
        out[name] = {"median_s": statistics.median(r.wall_s for r in rs), "runs_s": [round(r.wall_s, 3) for r in rs],
                     "tree_pss_mb": max(r.tree_pss_mb for r in rs)}
    out["extra_s"] = out["diagnose"]["median_s"] - out["parse"]["median_s"]
    return out


def print_report(kind: str, r: dict) -> None:
    print(f"\n== {kind}: {r['path']}  {r['mb']:.0f} MB")
    for name in ("parse", "diagnose"):
        m = r[name]
        print(f"  {name:<9} median {m['median_s']:7.2f} s  runs {m['runs_s']}  peak tree PSS {m['tree_pss_mb']:.0f} MB")
    ok = "ok" if r["extra_s"] < TARGET_EXTRA_S else "MISS"
    print(f"  diagnose - parse = {r['extra_s']:+.2f} s  (target < +{TARGET_EXTRA_S:.0f} s: {ok})")
    print(f"  verdict {r['verdict']}, first non-finite step {r['first_nonfinite_step']}")
    for w in r["warnings"]:
        print(f"  warning: {w}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--only", choices=sorted(GENERATORS), action="append")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=HERE / "out")
    ap.add_argument("--json", type=Path, metavar="FILE")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = {}
    for kind in args.only or ["caffe"]:
        results[kind] = bench(kind, args.workdir, args.size_mb, args.repeat)
        print_report(kind, results[kind])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
