"""How early ``logsleuth watch`` warns, and how often it warns for nothing.

Replays every log of the real-framework corpus (``corpus/framework_runs``: real Hugging
Face, PyTorch, Lightning and Keras trainings, labels measured from each run) into the
watcher's evaluation, :class:`logsleuth.watch.LiveLog`, line by line as a training would
write it (no sleeping: the evaluation needs no clock), and prints per run:

* failing runs (``X101`` exploding, and ``L301`` / ``N201``): the step of the first
  warning, the step of the first non-finite value (the watcher's failure alert), and the
  lead between them in steps; an exploding run that ends before any nan is printed has
  its lead counted to its last step (``end``) instead;
* healthy (``H001``) and stalled (``S401``) runs: the warnings raised (all false);
* the final verdict the watcher printed against ``logsleuth diagnose`` on the same log
  (they should agree: the watcher's verdict is diagnose's, on the live parse).

Usage: ``python bench/watch_lead.py [--corpus corpus/framework_runs] [--only X101,H001]
[--no-verdict] [-v]``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from logsleuth.watch import LiveLog  # noqa: E402

FAILING = ("X101", "L301", "N201")
QUIET = ("H001", "S401")


@dataclass
class Replay:
    """What the watcher said about one log."""

    run: str
    label: str
    warnings: list = field(default_factory=list)  # (step, kind, message)
    failure_step: int | None = None
    failure_line: int | None = None
    last_step: int | None = None
    verdict: str = ""
    diagnosed: str = ""
    seconds: float = 0.0

    @property
    def first_warning(self) -> int | None:
        before = [s for s, _, _ in self.warnings if s is not None
                  and (self.failure_step is None or s <= self.failure_step)]
        return min(before) if before else None


def replay(path: Path, run: str, label: str, verdict: bool) -> Replay:
    """Feed the log line by line; collect the alerts and the final verdict."""
    data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    live, out = LiveLog(str(path)), Replay(run, label)
    started = time.perf_counter()
    for line in data.splitlines(keepends=True):
        _collect(out, live.feed(line))
    _collect(out, live.finish())
    if live.forecaster.last_step is not None:
        out.last_step = live.forecaster.last_step
    if verdict:
        from logsleuth.api import diagnose

        out.verdict = live.diagnose().verdict.code
        out.seconds = time.perf_counter() - started
        out.diagnosed = diagnose(str(path)).verdict.code
    else:
        out.seconds = time.perf_counter() - started
    return out


def _collect(out: Replay, alerts: list) -> None:
    for a in alerts:
        if a.event == "failure" and out.failure_step is None:
            out.failure_step, out.failure_line = a.step, a.line
        elif a.event == "warning":
            out.warnings.append((a.step, a.kind, a.message))


def _row(r: Replay) -> str:
    warned = r.first_warning
    if r.label in FAILING:
        target, what = (r.failure_step, "nan") if r.failure_step is not None else (r.last_step, "end")
        lead = target - warned if warned is not None and target is not None else None
        said = f"warn@{warned} {what}@{target} lead={lead if lead is not None else '-'}"
    else:
        said = f"false warnings={len(r.warnings)}"
    agree = "" if not r.verdict else f"  verdict {r.verdict} (diagnose {r.diagnosed})"
    return f"{r.label} {r.run:45s} {said}{agree}  {r.seconds:.2f}s"


def summary(results: list[Replay]) -> list[str]:
    """The two figures: lead on failing runs, false warnings on quiet ones."""
    lines = []
    for label in FAILING:
        runs = [r for r in results if r.label == label]
        if not runs:
            continue
        nan = [r for r in runs if r.failure_step is not None]
        nan_leads = [r.failure_step - r.first_warning for r in nan if r.first_warning is not None]
        end = [r for r in runs if r.failure_step is None]
        end_leads = [r.last_step - r.first_warning for r in end if r.first_warning is not None and r.last_step]
        lines.append(f"{label}: {len(runs)} runs; {len(nan)} print a non-finite value: warned before it in "
                     f"{len(nan_leads)}, lead median {_median(nan_leads)} steps (min {_min(nan_leads)}); "
                     f"{len(end)} end exploding without one: warned in {len(end_leads)}, "
                     f"median {_median(end_leads)} steps before the end")
    for label in QUIET:
        runs = [r for r in results if r.label == label]
        if runs:
            noisy = [r for r in runs if r.warnings]
            lines.append(f"{label}: {len(runs)} runs; false warnings {sum(len(r.warnings) for r in runs)} "
                         f"in {len(noisy)} runs")
    checked = [r for r in results if r.verdict]
    if checked:
        same = sum(r.verdict == r.diagnosed for r in checked)
        lines.append(f"final verdict = diagnose's in {same} of {len(checked)} runs")
    return lines


def _median(xs: list) -> str:
    return f"{statistics.median(xs):g}" if xs else "-"


def _min(xs: list) -> str:
    return f"{min(xs):g}" if xs else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=str(REPO / "corpus" / "framework_runs"))
    ap.add_argument("--only", default=",".join(FAILING + QUIET), help="signatures to replay")
    ap.add_argument("--no-verdict", action="store_true", help="skip the final-verdict comparison")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every warning")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    wanted = set(args.only.split(","))
    with open(corpus / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["signature"] in wanted]
    results = []
    for row in rows:
        r = replay(corpus / row["path"], row["id"], row["signature"], not args.no_verdict)
        results.append(r)
        print(_row(r), flush=True)
        if args.verbose or (r.label in QUIET and r.warnings):
            for step, kind, message in r.warnings:
                print(f"    step {step} {kind}: {message}")
    print()
    print("\n".join(summary(results)))


if __name__ == "__main__":
    main()
