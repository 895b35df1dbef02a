"""``logsleuth audit PATH...``: argument parsing, progress and the summary; the work is
in :func:`logsleuth.audit.audit`'s parts.

Register it with ``main.add_command(audit)`` (``from logsleuth.audit.cli import audit``).
Rows go to ``-o FILE`` (``.jsonl``, ``.csv``, ``.parquet``), or as csv to stdout; the
summary goes to stdout with ``-o``, to stderr without (stdout then carries the table).
A progress line is drawn on stderr only when it is a terminal.

Exit codes: 0 no failure found, 1 at least one run failed, 2 usage or input error (a run
that cannot be read is a row with an error, not an exit code).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, TextIO

import click

from .discover import GROUPS
from .engine import ENGINES

if TYPE_CHECKING:
    import pandas as pd

_WORST = 10


class _Bar:
    """``audit: 120/2000 runs  45.1 runs/s  12.3 MB/s  ETA 42s  7 failed  1 error`` on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.start = time.perf_counter()
        self.bytes = self.failed = self.errors = self.skipped = 0
        self.last = 0.0

    def __call__(self, done: int, total: int, row: dict[str, Any]) -> None:
        if row.get("status") == "skipped":
            self.skipped += 1
        else:
            self.bytes += int(row.get("size") or 0)
            self.failed += bool(row.get("failed"))
            self.errors += bool(row.get("error"))
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate else 0
        click.echo(f"\raudit: {done}/{total} runs  {rate:.1f} runs/s  {self.bytes / 1e6 / elapsed:.1f} MB/s  "
                   f"ETA {eta:.0f}s  {self.failed} failed  {self.errors} error(s)\x1b[K", err=True, nl=False)

    def close(self) -> None:
        if self.enabled:
            click.echo("", err=True)


def summary(frame: pd.DataFrame, paths: list[str], elapsed: float, audited: int, skipped: int, nbytes: int,
            jobs: int, engine: str, worst: int = _WORST) -> str:
    """The end-of-audit report: counts per signature, the worst runs, errors and warnings."""
    import pandas as pd

    frame = frame[frame["path"].isin(paths)] if len(frame) else frame
    lines = [f"audited {len(frame)} run(s) ({audited} now, {skipped} unchanged and skipped) in {elapsed:.1f} s: "
             f"{audited / max(elapsed, 1e-9):.1f} runs/s, {nbytes / 1e6 / max(elapsed, 1e-9):.1f} MB/s "
             f"({engine}, {jobs} job(s))"]
    if len(frame):
        read = frame[frame["verdict"].notna()]
        counts = Counter(zip(read["verdict"], read["slug"]))
        lines.append("signatures:")
        lines += [f"  {code} {slug:30s} {n:6d}" for (code, slug), n in sorted(counts.items())]
        failed = read[read["failed"]].assign(_step=lambda f: f["nonfinite_step"].astype("Float64").fillna(float("inf")))
        failed = failed.sort_values(["confidence", "_step"], ascending=[False, True]).head(worst)
        if len(failed):
            lines.append(f"worst runs (of {int(read['failed'].sum())} failed):")
            for r in failed.itertuples():
                step = f"step {r.nonfinite_step}" if not pd.isna(r.nonfinite_step) else "step ?"
                cause = f"{r.cause} {r.cause_slug}" if isinstance(r.cause, str) else ""
                lines.append(f"  {r.verdict} {r.confidence:.2f} {step:12s} {cause:34s} {r.path}")
        errors = frame[frame["error"].notna()]
        if len(errors):
            lines.append(f"errors: {len(errors)} run(s) ({len(errors) - int(errors['verdict'].notna().sum())} "
                         f"without a verdict)")
            lines += [f"  {e}" for e in errors["error"].head(5)]
        warned = frame[frame["n_warnings"].fillna(0) > 0]
        if len(warned):
            lines.append(f"parse warnings: {int(warned['n_warnings'].sum())} in {len(warned)} run(s)")
            lines += [f"  {w[:200]}" for w in warned["warnings"].head(5)]
    return "\n".join(lines)


@click.command(name="audit")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", metavar="FILE",
              help="Append rows here (.jsonl, .csv, .parquet); default csv to stdout.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), metavar="N", help="Worker processes [default: CPU count].")
@click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
              help="local processes, or a Dask cluster (the [dask] extra).")
@click.option("--scheduler", metavar="ADDRESS", help="Dask scheduler (default: a local cluster of --jobs workers).")
@click.option("--resume", is_flag=True, help="Continue the audit in FILE: skip runs whose content is unchanged.")
@click.option("--force", is_flag=True, help="Overwrite an existing FILE (and --html file).")
@click.option("--html", metavar="PAGE", help="Also write a self-contained HTML page: a sortable table of the runs "
              "with a loss sparkline each.")
@click.option("--group", type=click.Choice(GROUPS), default="auto", show_default=True,
              help="Which files make a run: auto, every directory, or every file.")
@click.option("--verify-crc", is_flag=True, help="Check the CRCs of event-file records.")
@click.option("--worst", type=click.IntRange(min=0), default=_WORST, show_default=True,
              help="Worst runs listed in the summary.")
def audit(**options: Any) -> None:
    """Audit every run under PATH... (directories of runs, or files): one row per run.

    A row: path, formats, size, content hash, verdict and confidence, first non-finite
    step and metric, top cause, warnings, error, and every feature. Rows are appended as
    runs finish, so an audit that is killed continues with --resume.
    """
    from ..cli import friendly  # here, not at import: logsleuth.cli registers this command

    friendly(_audit)(**options)


def _audit(paths: tuple[str, ...], output: str | None, jobs: int | None, engine: str, scheduler: str | None,
           resume: bool, force: bool, group: str, verify_crc: bool, worst: int, html: str | None = None) -> None:

    from ..output import check_free
    from . import SKIPPED, ResultStore, default_jobs, discover, execute
    from .run import SPARK_KEY

    check_free(html, force)
    jobs = jobs or default_jobs()
    runs = discover(list(paths), group)
    sparks: dict[str, Any] = {}
    start = time.perf_counter()
    out: TextIO = sys.stdout if output else sys.stderr
    with ResultStore(output, resume=resume, force=force) as store:
        bar = _Bar(len(runs), sys.stderr.isatty())
        try:
            for done, row in enumerate(execute(runs, engine, jobs, store.known_hashes(), verify_crc, scheduler), 1):
                if SPARK_KEY in row:
                    sparks[row["path"]] = row.pop(SPARK_KEY)
                if row.get("status") != SKIPPED:
                    store.add(row)
                bar(done, len(runs), row)
        finally:
            bar.close()
        frame = store.frame()
    text = summary(frame, [r.path for r in runs], time.perf_counter() - start, len(runs) - bar.skipped, bar.skipped,
                   bar.bytes, jobs, engine, worst)
    click.echo(text, file=out)
    if output:
        click.echo(f"results: {output}", file=out)
    in_scope = frame[frame["path"].isin([r.path for r in runs])] if len(frame) else frame
    if html:
        _write_page(html, runs, in_scope, sparks, verify_crc, force)
    sys.exit(1 if len(in_scope) and bool(in_scope["failed"].any()) else 0)


def _write_page(path: str, runs: list[Any], rows: pd.DataFrame, sparks: dict[str, Any], verify: bool,
                force: bool) -> None:
    """The audit's HTML page; runs skipped by --resume are read again for their sparkline."""
    from ..html import audit_page
    from ..output import write_text_file
    from .run import spark_for

    for run in runs:
        if run.path not in sparks:
            sparks[run.path] = spark_for(run, verify)
    write_text_file(path, audit_page(rows.to_dict("records"), sparks), force)


if __name__ == "__main__":  # pragma: no cover - ``python -m logsleuth.audit.cli`` (tests, before registration)
    audit()
