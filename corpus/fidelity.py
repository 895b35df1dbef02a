"""Check every printer against real logs of its framework.

The printed corpus stands in for frameworks that cannot run here, so a printer is only as
good as its likeness to what the framework really writes. For each printer this compares
the lines logsleuth reads records from in the printed logs with the same lines in the
real logs of that framework (``tests/data/real_logs``, refreshed from
``../shared/real_logs``):

* a line's **shape** is its token sequence with every number (``nan``, ``inf`` and
  scientific notation included) replaced by ``#``, ANSI codes dropped and a bar's run of
  one symbol kept once; two shapes' **likeness** is difflib's ratio over their tokens (1.0: the same line up to numbers);
* **real covered**: the share of the real logs' record-line shapes whose best likeness to
  any printed shape is at least :data:`LIKE` (what the framework prints, the printer
  prints too);
* **printed real**: the share of the printed record-line shapes that look like some real
  line (what the printer invents that no real log shows);
* **format**: the format logsleuth detects on the printed logs and on the real ones.

``python -m corpus.fidelity`` prints the table and, with ``--worst N``, the real shapes
each printer covers worst. Printers of frameworks that run here are shown too, marked
*not trained on* (:data:`logsleuth.corpora.RUNNABLE_FORMATS`).
"""

from __future__ import annotations

import argparse
import csv
import difflib
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REAL = REPO / "tests" / "data" / "real_logs"
PRINTED = REPO / "corpus" / "data"
#: printer name -> the ``framework`` values of ``labels.csv`` it imitates
REAL_FRAMEWORKS = {
    "caffe": ("caffe",),
    "tensorflow": ("tensorflow",),
    "keras": ("keras",),
    "pytorch": ("pytorch",),
    "hf_trainer": ("huggingface",),
    "lightning": ("lightning",),
    "fairseq": ("fairseq",),
    "megatron": ("megatron-lm", "megatron-deepspeed"),
    "mmcv": ("mmdet",),
    "detectron2": ("detectron2", "maskrcnn-benchmark"),
    "deepspeed": ("deepspeed",),
}
#: the likeness at which two shapes count as the same kind of line
LIKE = 0.8
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NUMBER = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)(?![A-Za-z_])", re.I)
_TOKEN = re.compile(r"#|[A-Za-z_]+|[^\sA-Za-z_#\d]")


def shape(line: str) -> tuple[str, ...]:
    """A line's tokens with every number as ``#``; a run of one repeated symbol (a
    progress bar's ``=====>....``, ``█████``) counts as one token."""
    tokens = _TOKEN.findall(_NUMBER.sub("#", _ANSI.sub("", line)))
    return tuple(t for k, t in enumerate(tokens) if k == 0 or t != tokens[k - 1] or t.isalpha() or t == "#")


def record_lines(path: Path) -> tuple[str | None, list[str]]:
    """The detected format and the text of each line logsleuth read a record from (the
    last ``\\r`` segment of a redrawn line, where a bar keeps several on one line)."""
    import logsleuth
    from logsleuth.io import open_log

    series = logsleuth.read_log(str(path))
    wanted = set(int(n) for n in series.frame["line"].unique())
    log = open_log(str(path))  # decompressed and cleaned as the parsers see it
    try:
        text = b"".join(log.chunks()).decode("utf-8", "replace")
    finally:
        log.close()
    out = []
    for number, line in enumerate(text.split("\n"), 1):
        if number in wanted:
            segments = [s for s in line.split("\r") if any(c.isdigit() for c in s)]
            out.extend(segments[-1:] if segments else [line])
    return series.format, out


def best_likeness(one: tuple[str, ...], others: Iterable[tuple[str, ...]]) -> float:
    """The highest likeness of ``one`` to any of ``others`` (0.0 when there are none)."""
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(one)
    best = 0.0
    for other in others:
        matcher.set_seq1(other)
        if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best:
            best = max(best, matcher.ratio())
            if best == 1.0:
                break
    return best


@dataclass
class Fidelity:
    """One printer's likeness to its framework's real logs."""

    printer: str
    real_logs: int = 0
    printed_logs: int = 0
    real_formats: Counter = field(default_factory=Counter)
    printed_formats: Counter = field(default_factory=Counter)
    real_shapes: Counter = field(default_factory=Counter)  # shape -> real logs showing it
    printed_shapes: Counter = field(default_factory=Counter)
    real_best: dict = field(default_factory=dict)  # real shape -> best likeness to a printed one
    printed_best: dict = field(default_factory=dict)

    @property
    def real_covered(self) -> float:
        """Share of (real log, shape) pairs the printer prints a line like."""
        total = sum(self.real_shapes.values())
        return sum(n for s, n in self.real_shapes.items() if self.real_best[s] >= LIKE) / max(1, total)

    @property
    def printed_real(self) -> float:
        """Share of printed shapes that look like a line of some real log."""
        return sum(1 for s in self.printed_shapes if self.printed_best[s] >= LIKE) / max(1, len(self.printed_shapes))

    def worst(self, n: int) -> list[tuple[float, str]]:
        ranked = sorted(self.real_shapes, key=lambda s: (self.real_best[s], -self.real_shapes[s]))
        return [(self.real_best[s], " ".join(s)[:150]) for s in ranked[:n]]


def _shapes(paths: Iterable[Path], formats: Counter) -> Counter:
    """Distinct record-line shapes of each log, counted once per log that shows them."""
    shapes: Counter = Counter()
    for path in paths:
        fmt, lines = record_lines(path)
        formats[fmt] += 1
        shapes.update({shape(line) for line in lines})
    return shapes


def real_logs_of(real: Path, frameworks: tuple[str, ...]) -> list[Path]:
    with open(real / "labels.csv", newline="") as f:
        return [real / r["file"] for r in csv.DictReader(f) if r["framework"] in frameworks]


def printed_logs_of(printed: Path, printer: str, per_printer: int) -> list[Path]:
    """Up to ``per_printer`` printed logs of ``printer``, every variation and option set
    taken in turn (label order), so the sample covers the printer's styles."""
    with open(printed / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["format"] == printer]
    by_options: dict[str, list[dict]] = {}
    for r in rows:
        by_options.setdefault(r.get("options", ""), []).append(r)
    picked: list[dict] = []
    while len(picked) < min(per_printer, len(rows)):
        for group in by_options.values():
            if group and len(picked) < per_printer:
                picked.append(group.pop(0))
    paths = []
    for r in picked:
        path = printed / "logs" / f"{r['id']}.log"
        paths.append(path if path.exists() else path.with_suffix(".log.gz"))
    return paths


def measure(printer: str, real: Path = REAL, printed: Path = PRINTED, per_printer: int = 40) -> Fidelity:
    fid = Fidelity(printer)
    real_paths = real_logs_of(real, REAL_FRAMEWORKS[printer])
    printed_paths = printed_logs_of(printed, printer, per_printer)
    fid.real_logs, fid.printed_logs = len(real_paths), len(printed_paths)
    fid.real_shapes = _shapes(real_paths, fid.real_formats)
    fid.printed_shapes = _shapes(printed_paths, fid.printed_formats)
    fid.real_best = {s: best_likeness(s, fid.printed_shapes) for s in fid.real_shapes}
    fid.printed_best = {s: best_likeness(s, fid.real_shapes) for s in fid.printed_shapes}
    return fid


def _formats(c: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.most_common())


def main(argv: list[str] | None = None) -> int:
    from logsleuth.corpora import RUNNABLE_FORMATS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--printed", type=Path, default=PRINTED)
    parser.add_argument("--per-printer", type=int, default=40, help="printed logs sampled per printer")
    parser.add_argument("--only", help="comma-separated printer names")
    parser.add_argument("--worst", type=int, default=0, help="list the N real shapes each printer covers worst")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(REAL_FRAMEWORKS)
    print("| printer | real logs | printed logs | real covered | printed real | format (real) | format (printed) |")
    print("|---|---|---|---|---|---|---|")
    results = []
    for name in names:
        fid = measure(name, args.real, args.printed, args.per_printer)
        results.append(fid)
        mark = " (not trained on)" if name in RUNNABLE_FORMATS else ""
        print(f"| {name}{mark} | {fid.real_logs} | {fid.printed_logs} | {fid.real_covered:.2f} | "
              f"{fid.printed_real:.2f} | {_formats(fid.real_formats)} | {_formats(fid.printed_formats)} |", flush=True)
    for fid in results if args.worst else []:
        print(f"\n{fid.printer}: real shapes covered worst")
        for like, text in fid.worst(args.worst):
            print(f"  {like:.2f}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
