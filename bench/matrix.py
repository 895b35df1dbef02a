"""Speed, memory and scaling of ``logsleuth parse`` and ``diagnose`` on every format x log shape.

For each built-in format and each shape in :mod:`logshapes` (finite; a non-finite tail
over the last 5% / 50%, or from the first line; dense records; progress bars; 8 ranks
interleaved; long lines; overflow-heavy), a log of ``--size`` MB is generated into
``--workdir`` (``/tmp`` by default, deleted after use), and timed as separate
subprocesses from a warm page cache:

* ``loop``: the one-regex Python loop for that format (``logshapes.SPECS[f].loop_rx``),
  the yardstick, measured in the same run;
* ``logsleuth parse LOG -o OUT.csv --force``;
* ``logsleuth diagnose LOG --format json``.

Columns: MB/s of parse and diagnose (medians of ``--repeat`` runs), their ratio to the
loop, the peak tree PSS of diagnose and parse (the summed PSS of the process and its
children, read from ``/proc/<pid>/smaps_rollup`` every 50 ms), and the *scaling ratio*
of diagnose: its time per MB on a log 10x the size over its time per MB at ``--size``.
1.0 is linear; a cost per row that grows with the chunk or the file shows as more. The
start-up time (printed per format: diagnose of a 2 KB log) is in both, so at small sizes
the ratio reads below 1; judge it at ``--size 50`` (50 -> 500 MB).

Usage: ``python bench/matrix.py [--quick] [--size MB] [--repeat N] [--formats a,b]
[--shapes a,b] [--no-scale]``. ``--quick``: 2 MB logs, scaling at 20 MB. The table is
printed and written to ``bench/out/matrix.csv`` and ``bench/out/matrix.md``.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import logshapes  # noqa: E402
from throughput import LOOP_SOURCE, MB, logsleuth_exe, run_once, warm_read  # noqa: E402

TARGET_VS_LOOP = 1.0
TARGET_SCALING = 1.2
TARGET_PSS_MB = 200.0
COLUMNS = ("format", "shape", "mb", "loop_s", "parse_mb_s", "parse_vs_loop", "diagnose_mb_s", "diagnose_vs_loop",
           "parse_pss_mb", "diagnose_pss_mb", "scaling")


def _median_run(cmd: list[str], repeat: int, ok=(0,)) -> tuple[float, float]:
    """(median wall s, peak tree PSS MB) of ``repeat`` runs of ``cmd``."""
    walls, peak = [], 0.0
    for _ in range(repeat):
        run = run_once(cmd)
        if run.rc not in ok:
            raise RuntimeError(f"{' '.join(cmd)}: rc={run.rc}: {run.stderr.strip()[-300:]}")
        walls.append(run.wall_s)
        peak = max(peak, run.tree_pss_mb)
    return statistics.median(walls), peak


def _commands(path: Path, out: Path) -> dict[str, list[str]]:
    exe = logsleuth_exe()
    return {"parse": [exe, "parse", str(path), "-o", str(out), "--force"],
            "diagnose": [exe, "diagnose", str(path), "--format", "json"]}


def _startup(fmt: str, workdir: Path, repeat: int) -> float:
    """diagnose of a tiny log of ``fmt``: the constant part of every run."""
    path = workdir / f"{fmt}.tiny.log"
    logshapes.generate(fmt, "finite", path, 2000)
    try:
        return _median_run(_commands(path, workdir / "tiny.csv")["diagnose"], repeat, ok=(0, 1))[0]
    finally:
        path.unlink(missing_ok=True)


def measure_cell(fmt: str, shape: str, size_mb: float, workdir: Path, repeat: int, scale: bool) -> dict:
    path = workdir / f"{fmt}.{shape}.log"
    out = workdir / f"{fmt}.{shape}.csv"
    row: dict = {"format": fmt, "shape": shape, "mb": size_mb}
    try:
        logshapes.generate(fmt, shape, path, int(size_mb * MB))
        size = path.stat().st_size / MB
        warm_read(path)
        loop, _ = _median_run([sys.executable, "-c", LOOP_SOURCE, str(path), logshapes.SPECS[fmt].loop_rx], repeat)
        cmds = _commands(path, out)
        parse, parse_pss = _median_run(cmds["parse"], repeat)
        diag, diag_pss = _median_run(cmds["diagnose"], repeat, ok=(0, 1))
        row.update(mb=round(size, 1), loop_s=loop, parse_mb_s=size / parse, parse_vs_loop=parse / loop,
                   diagnose_mb_s=size / diag, diagnose_vs_loop=diag / loop, parse_pss_mb=parse_pss,
                   diagnose_pss_mb=diag_pss)
        if scale:
            path.unlink()
            logshapes.generate(fmt, shape, path, int(10 * size_mb * MB))
            big = path.stat().st_size / MB
            warm_read(path)
            diag10, pss10 = _median_run(_commands(path, out)["diagnose"], max(1, repeat // 2), ok=(0, 1))
            row["scaling"] = (diag10 / big) / (diag / size)
            row["diagnose_pss_mb"] = max(diag_pss, pss10)
    finally:
        path.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    return row


def _fmt(value: object, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(rows: list[dict]) -> str:
    """The markdown table (also what is printed)."""
    head = ("| format | shape | MB | loop s | parse MB/s | parse vs loop | diagnose MB/s | diagnose vs loop "
            "| parse PSS MB | diagnose PSS MB | scaling 10x |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        miss = []
        if (r.get("diagnose_vs_loop") or 0) > TARGET_VS_LOOP:
            miss.append("speed")
        if (r.get("scaling") or 0) > TARGET_SCALING:
            miss.append("scaling")
        if max(r.get("parse_pss_mb") or 0, r.get("diagnose_pss_mb") or 0) > TARGET_PSS_MB:
            miss.append("memory")
        lines.append(
            f"| {r['format']} | {r['shape']} | {_fmt(r.get('mb'), '.0f')} | {_fmt(r.get('loop_s'), '.2f')} "
            f"| {_fmt(r.get('parse_mb_s'), '.0f')} | {_fmt(r.get('parse_vs_loop'), '.2f')}x "
            f"| {_fmt(r.get('diagnose_mb_s'), '.0f')} | {_fmt(r.get('diagnose_vs_loop'), '.2f')}x "
            f"| {_fmt(r.get('parse_pss_mb'), '.0f')} | {_fmt(r.get('diagnose_pss_mb'), '.0f')} "
            f"| {_fmt(r.get('scaling'), '.2f')} |" + (f" MISS {','.join(miss)}" if miss else "")
            + (f" ERROR {r['error']}" if r.get("error") else ""))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=float, default=20.0, help="MB per log (default 20; scaling at 10x)")
    ap.add_argument("--quick", action="store_true", help="2 MB logs, scaling at 20 MB, one run each")
    ap.add_argument("--repeat", type=int, default=3, help="runs per command, median reported (default 3)")
    ap.add_argument("--formats", help="comma-separated formats (default: all)")
    ap.add_argument("--shapes", help="comma-separated shapes (default: all that exist for the format)")
    ap.add_argument("--no-scale", action="store_true", help="skip the 10x logs (no scaling column)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/logsleuth-matrix"), help="where logs go (deleted)")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="where matrix.csv / matrix.md go")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.repeat = 2.0, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    formats = args.formats.split(",") if args.formats else list(logshapes.SPECS)
    wanted = set(args.shapes.split(",")) if args.shapes else None
    rows = []
    t0 = time.perf_counter()
    print(f"logsleuth matrix: {args.size:g} MB logs (scaling at {10 * args.size:g} MB), median of {args.repeat}, "
          f"{os.cpu_count()} CPUs", flush=True)
    for fmt in formats:
        startup = _startup(fmt, args.workdir, args.repeat)
        print(f"{fmt}: diagnose start-up {startup:.2f} s", flush=True)
        for shape in logshapes.shapes_of(fmt):
            if wanted and shape not in wanted:
                continue
            try:
                row = measure_cell(fmt, shape, args.size, args.workdir, args.repeat, not args.no_scale)
            except RuntimeError as exc:
                row = {"format": fmt, "shape": shape, "error": str(exc)[-120:]}
            rows.append(row)
            print(render([row]).splitlines()[-1], flush=True)
    table = render(rows)
    print("\n" + table)
    print(f"\ntargets: diagnose <= {TARGET_VS_LOOP}x the loop, scaling <= {TARGET_SCALING}, tree PSS < "
          f"{TARGET_PSS_MB:.0f} MB; {time.perf_counter() - t0:.0f} s")
    (args.out / "matrix.md").write_text(table + "\n")
    with open(args.out / "matrix.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*COLUMNS, "error"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out / 'matrix.md'} and {args.out / 'matrix.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
