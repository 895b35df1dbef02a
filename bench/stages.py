"""Where parse time goes: each stage of `logsleuth parse` on one core, in ms per MB.

    python bench/stages.py                 # both 50 MB logs of throughput.py
    python bench/stages.py --only hf --size-mb 200
    python bench/stages.py --log train.log  # any log (e.g. one of bench/logshapes.py)

Runs the stages one after another over every chunk of a generated log (warm page cache,
one thread, each stage timed on its own; the best of ``--repeat`` passes), so the figures
add up to the CPU a parse needs; `throughput.py` measures the whole process. The gate is
also timed alone (it is part of the scan).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import GENERATORS, ensure_log  # noqa: E402

from logsleuth.api import start_parse  # noqa: E402
from logsleuth.output import _CsvWriter  # noqa: E402
from logsleuth.scan import _gate, scan_chunk  # noqa: E402
from logsleuth.series import Assembler, prepare  # noqa: E402

STAGES = ("read and clean", "scan (gate, rules, bars)", "  of which the gate", "prepare", "assemble", "CSV text")


def one_pass(path: Path) -> dict[str, float]:
    """Seconds per stage over the whole log."""
    spent = dict.fromkeys(STAGES, 0.0)
    job = start_parse(str(path))
    fmt, head, assembler = job.fmt, job.log.head, Assembler(job.fmt)
    writer = _CsvWriter(io.BytesIO(), with_source=False)
    gate = _gate(fmt)
    chunks = iter(job.log.chunks())
    while True:
        t0 = time.perf_counter()
        chunk = next(chunks, None)
        t1 = time.perf_counter()
        spent["read and clean"] += t1 - t0
        if chunk is None:
            break
        gate.present(chunk)
        t2 = time.perf_counter()
        batch = scan_chunk(fmt, chunk, head)
        t3 = time.perf_counter()
        prep = prepare(chunk, batch)
        t4 = time.perf_counter()
        table = assembler.feed(prep)
        t5 = time.perf_counter()
        writer.write(table, str(path))
        t6 = time.perf_counter()
        writer.stream.seek(0)
        writer.stream.truncate()
        for name, took in zip(STAGES[1:], (t3 - t2, t2 - t1, t4 - t3, t5 - t4, t6 - t5)):
            spent[name] += took
    job.log.close()
    return spent


def _without_extension() -> None:
    from logsleuth.engine import native

    native.set_enabled(False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3, help="passes; the best is reported (default 3)")
    ap.add_argument("--only", choices=sorted(GENERATORS), action="append")
    ap.add_argument("--workdir", type=Path, default=HERE / "out")
    ap.add_argument("--pure", action="store_true", help="without the C extension (the regex rules and pyarrow)")
    ap.add_argument("--log", type=Path, action="append", help="time this log instead of the generated ones")
    args = ap.parse_args(argv)
    if args.pure:
        _without_extension()
    args.workdir.mkdir(parents=True, exist_ok=True)
    logs = [(p.name, p) for p in args.log or ()] or [(k, None) for k in args.only or sorted(GENERATORS)]
    for kind, path in logs:
        if path is None:
            path, _ = ensure_log(kind, args.workdir, args.size_mb)
        mb = path.stat().st_size / 2**20
        passes = [one_pass(path) for _ in range(args.repeat)]
        best = {name: min(p[name] for p in passes) for name in STAGES}
        what = "without the C extension" if args.pure else "with the C extension"
        print(f"== {kind}: {path.name} ({mb:.0f} MB), one thread, {what}, best of {args.repeat}")
        for name in STAGES:
            print(f"{name:28s} {best[name] * 1000 / mb:6.2f} ms/MB")
        total = sum(best[name] for name in STAGES if not name.startswith(" "))
        print(f"{'total':28s} {total * 1000 / mb:6.2f} ms/MB  ({mb / total:.0f} MB/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
