"""Regenerate the golden outputs of tests/fixtures/<format>/<case>.log: ``make goldens``.

Each golden holds the parsed series (csv), the events and the first non-finite moment,
under a first line carrying the sha256 of the rest, so a hand edit fails the test:
goldens are reviewed as diffs, never typed.
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

from logsleuth.api import start_parse
from logsleuth.output import _CsvWriter

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def render(log: Path) -> str:
    """The golden body for one fixture log (its format is the folder name)."""
    job = start_parse(log, format=log.parent.name)
    tables = list(job.frames())
    series = job.series(tables)
    out = io.BytesIO()
    writer = _CsvWriter(out, with_source=False)
    for table in tables:  # exactly what `logsleuth parse` writes
        writer.write(table, source=str(log))
    lines = [out.getvalue().decode().rstrip("\n"), "# events: kind,step,line,segment,fields"]
    lines += [f"{e.kind},{e.step},{e.line},{e.segment},{sorted(e.fields.items())}" for e in series.events]
    first = series.first_nonfinite()
    lines.append(f"# first_nonfinite: {first and (first.step, first.line, first.metric, first.text)}")
    return "\n".join(lines) + "\n"


def with_hash(body: str) -> str:
    return f"# sha256 {hashlib.sha256(body.encode()).hexdigest()}\n{body}"


def main() -> int:
    for log in sorted(FIXTURES.glob("*/*.log")):
        if log.parent.name == "userformat":
            continue
        golden = log.with_suffix(".golden")
        golden.write_text(with_hash(render(log)))
        print(f"wrote {golden.relative_to(FIXTURES.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
