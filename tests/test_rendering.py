"""No placeholder ever reaches a user: every verdict path, rendered as text, markdown and
one line, on every real log and on the real-framework runs, says numbers where numbers
belong (no ``?``, ``None``, ``nan`` or an empty title in what logsleuth itself writes;
quoted log text may say anything)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from logsleuth.api import diagnose
from logsleuth.report import oneline, to_markdown, to_text

from .conftest import REAL_LOGS

RUNS = Path(__file__).resolve().parents[1] / "corpus" / "framework_runs"
#: what a placeholder looks like in generated text
PLACEHOLDER = re.compile(r"(?:^|\s)\?(?=\s|$|[,.);])|\bNone\b|\{\w*\}"
                         r"|\b(?:step|at|to|of|by|x)\s+(?:nan|NaN|inf)\b")


def _inputs() -> list[Path]:
    logs = sorted(REAL_LOGS.glob("*.log"))
    if (RUNS / "labels.csv").exists():
        with open(RUNS / "labels.csv", newline="") as f:
            logs += [RUNS / r["path"] for r in csv.DictReader(f)]
    return logs


def _generated_lines(text: str) -> list[str]:
    """The lines logsleuth wrote itself: not the quoted log lines (indented evidence text,
    markdown code blocks), and without the inputs' paths and warnings about them."""
    out, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code or line.startswith("      ") or "input:" in line or line.startswith(("Warning:", "> warning")) \
                or line.lstrip().startswith(("fix:", "- fix:")):
            continue  # quoted log text, paths, and the catalog's own prose (fixes) are not filled in
        out.append(line)
    return out


@pytest.mark.parametrize("path", _inputs(), ids=lambda p: p.parent.name if p.name == "job.log.gz" else p.name)
def test_every_rendering_is_free_of_placeholders(path: Path) -> None:
    d = diagnose(path)
    assert d.verdict.title.strip() and not PLACEHOLDER.search(d.verdict.title), d.verdict.title
    assert d.verdict.code != "I000" or d.verdict.confidence < 1.0
    for e in d.evidence:
        assert not PLACEHOLDER.search(e.why), e.why
    quoted = {e.text for e in d.evidence} | ({d.first_nonfinite.text} if d.first_nonfinite else set())
    for text in (to_text(d), to_markdown(d)):
        for line in _generated_lines(text):
            if "decided by" in line or "(guard:" in line or "(model" in line or any(q and q in line for q in quoted):
                continue  # the decision's own reasoning quotes feature names; quoted log text is the log's
            assert not PLACEHOLDER.search(line), line
    line = oneline(d)
    head = line.split(": ", 1)[0]
    assert not PLACEHOLDER.search(head) and len(line) <= 200, line
