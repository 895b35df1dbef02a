"""Coverage-guided fuzzing of ``read_log`` (every format) and ``diagnose`` with atheris.

Seeded with the real logs of ``tests/data/real_logs`` (cut to their first 4 KB, so that
an execution stays short), libFuzzer mutates bytes toward new coverage of logsleuth's
own code. An input that raises anything but the project's own error type
(``LogsleuthError``: the one-line error of exit code 2), or that parses into a malformed
series, is a crash: its bytes are written to ``--crashes`` (default ``bench/out/fuzz``)
and the run goes on. The first byte of each input picks the target: auto-detection, one
of the built-in formats forced, or the whole diagnosis.

Usage (the ``fuzz`` extra: ``pip install -e '.[fuzz]'``)::

    python bench/fuzz.py                    # 10 minutes
    python bench/fuzz.py --seconds 3600     # longer
    python bench/fuzz.py --runs 1000000     # a fixed number of executions

Prints executions, executions per second, distinct crashes (by exception type and the
line that raised), and where their inputs were written. Each crash found becomes a
regression test (``tests/test_fuzz.py`` holds the earlier ones).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED_BYTES = 4096
FORMATS = [None, "caffe", "tensorflow", "keras", "hf_trainer", "lightning", "detectron2", "maskrcnn_benchmark",
           "mmcv", "yolo", "fairseq", "megatron", "deepspeed", "darknet", "turicreate", "opennmt", "pytorch",
           "generic"]


class Stats:
    def __init__(self, crashes: Path) -> None:
        self.runs, self.started, self.crashes, self.seen = 0, time.monotonic(), crashes, {}

    def crash(self, data: bytes, exc: BaseException) -> None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        key = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
        if key not in self.seen:
            self.crashes.mkdir(parents=True, exist_ok=True)
            path = self.crashes / f"crash-{len(self.seen) + 1}.bin"
            path.write_bytes(data)
            self.seen[key] = str(path)
            print(f"\ncrash {len(self.seen)}: {key}: {exc!s:.120}  -> {path}", file=sys.stderr, flush=True)


def _check_series(series) -> None:  # type: ignore[no-untyped-def]
    frame = series.frame
    assert list(frame.columns) == ["step", "metric", "value", "phase", "segment", "rank", "epoch", "line"]
    assert (frame["line"] >= 1).all() and set(frame["phase"].astype(str)) <= {"train", "eval"}
    series.first_nonfinite()


def one_input(data: bytes, stats: Stats, workdir: str) -> None:
    import logsleuth
    from logsleuth.errors import LogsleuthError

    stats.runs += 1
    if not data:
        return
    target, body = data[0] % (len(FORMATS) + 1), data[1:]
    try:
        if target == len(FORMATS):  # the whole diagnosis, from a file as a user gives it
            path = os.path.join(workdir, "input.log")
            with open(path, "wb") as f:
                f.write(body)
            d = logsleuth.diagnose(path)
            assert d.verdict.code and d.verdict.title and "?" not in d.verdict.title
        else:
            _check_series(logsleuth.read_log(io.BytesIO(body), format=FORMATS[target]))
    except LogsleuthError:
        return
    except Exception as exc:  # AssertionError included: a malformed result is a crash too
        stats.crash(data, exc)


def seeds(folder: Path) -> list[bytes]:
    real = REPO / "tests" / "data" / "real_logs"
    out = []
    for i, path in enumerate(sorted(real.glob("*.log*"))):
        data = path.read_bytes()[:SEED_BYTES]
        out.append(bytes([i % (len(FORMATS) + 1)]) + data)
    folder.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(out):
        (folder / f"seed-{i}").write_bytes(data)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=600, help="time budget (default 600)")
    ap.add_argument("--runs", type=int, default=-1, help="stop after this many executions (default: no limit)")
    ap.add_argument("--crashes", default=str(REPO / "bench" / "out" / "fuzz"), help="where crashing inputs go")
    args = ap.parse_args()
    try:
        import atheris
    except ImportError:
        print("bench/fuzz.py needs atheris: pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=["logsleuth", "parsers"]):
        import logsleuth  # noqa: F401
        import logsleuth.api  # noqa: F401
        import logsleuth.parsers  # noqa: F401
    stats = Stats(Path(args.crashes))
    corpus = Path(tempfile.mkdtemp(prefix="logsleuth-fuzz-"))
    workdir = tempfile.mkdtemp(prefix="logsleuth-fuzz-work-")
    seeds(corpus)
    print(f"fuzzing for {args.seconds} s: {len(list(corpus.iterdir()))} seeds from the real logs", file=sys.stderr)
    def report() -> None:
        seconds = time.monotonic() - stats.started
        print(f"executions {stats.runs:,} in {seconds:.0f} s ({stats.runs / max(seconds, 1e-9):,.0f}/s); "
              f"distinct crashes {len(stats.seen)}", flush=True)
        for key, path in stats.seen.items():
            print(f"  {key}: {path}", flush=True)

    def bounded(data: bytes) -> None:  # libFuzzer exits without Python's atexit: stop here instead
        if time.monotonic() - stats.started > args.seconds or stats.runs == args.runs:
            report()
            os._exit(1 if stats.seen else 0)
        one_input(data, stats, workdir)

    argv = [sys.argv[0], "-max_len=8192", "-rss_limit_mb=4096", "-timeout=30", "-print_final_stats=0",
            str(corpus)]
    atheris.Setup(argv, bounded)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
