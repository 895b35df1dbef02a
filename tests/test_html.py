"""The HTML report: self-contained, the first non-finite step marked where it is, log text
escaped, attempts apart, long curves thinned without losing spikes or the failure; the
audit page sortable; and both pages loaded in a real headless Chromium when there is one."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import logsleuth
from logsleuth.charts import downsample, use_log_axis
from logsleuth.cli import main
from logsleuth.html import audit_page, diagnosis_page, loss_spark
from logsleuth.types import Diagnosis, Evidence, InputInfo, RankedCause, Verdict

from .conftest import REAL_LOGS, REPO

SAMPLE = REPO / "sample_logs" / "caffe_sudden_nan.log"
_HEAD = "I0523 10:13:03.023757  9167 "


def _caffe_line(step: int, loss: str) -> str:
    return (f"{_HEAD}solver.cpp:228] Iteration {step} (5.1 iter/s, 19.6s/100 iters), loss = {loss}\n"
            f"{_HEAD}sgd_solver.cpp:106] Iteration {step}, lr = 0.01\n")


def _long_log(restart_at: int | None = None, nan_at: int = 7000, spike_at: int = 1234) -> str:
    """A Caffe log of ~9,000 iterations: a loss spike, optionally a restart, then nan."""
    lines = []
    steps = list(range(0, 3000)) + (list(range(restart_at, 9000)) if restart_at else list(range(3000, 9000)))
    for step in steps:
        loss = "nan" if step >= nan_at else ("50000" if step == spike_at else f"{2.3 * math.exp(-step / 3000):.5f}")
        lines.append(_caffe_line(step, loss))
    return "".join(lines)


def _diagnosis(run: logsleuth.RunSeries, evidence_text: str | None = None) -> Diagnosis:
    """A Diagnosis around a real series' first non-finite moment (the renderer's input; the
    verdict itself is the classifier's business and tested elsewhere)."""
    first = run.first_nonfinite()
    text = evidence_text if evidence_text is not None else (first.text if first else "")
    return Diagnosis(
        verdict=Verdict("N201", "sudden-nan", "Sudden NaN <b>test</b>", 0.9, False, "test"),
        first_nonfinite=first, features={"n_segments": 1.0},
        causes=(RankedCause("C06", "unsafe-loss-arithmetic", "Unsafe loss", 0.4, ("clamp <before> log",),
                            ("the header's lr",)),),
        evidence=(Evidence(first.step if first else None, first.line if first else None, text, "first non-finite"),),
        inputs=(InputInfo(run.source, run.format, run.size, None, "none"),))


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def _tags(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


def _markers(page: str) -> list[dict[str, str | None]]:
    return [a for t, a in _tags(page).tags if t == "g" and a.get("class") == "nonfinite-marker"]


def assert_self_contained(page: str) -> None:
    tags = _tags(page)
    assert not [t for t, _ in tags.tags if t in ("link", "iframe", "img", "object", "embed")]
    for _, attrs in tags.tags:
        for key in ("src", "href"):
            assert not (attrs.get(key) or "").startswith(("http://", "https://", "//")), attrs
    assert "@import" not in page and "url(" not in page
    for script in tags.scripts:
        assert "innerHTML" not in script and "fetch(" not in script and "XMLHttpRequest" not in script


def test_sample_page_marks_the_first_nonfinite_step() -> None:
    run = logsleuth.read_log(SAMPLE)
    page = diagnosis_page(_diagnosis(run), [run])
    assert_self_contained(page)
    markers = _markers(page)
    assert markers and {m["data-step"] for m in markers} == {"3700"}
    assert {m["data-line"] for m in markers} == {"171"}
    metrics = [a["data-metric"] for t, a in _tags(page).tags if t == "svg" and "data-metric" in a]
    assert metrics == ["loss", "learning rate"]  # only what the log printed
    assert "Iteration 3700 (5.1 iter/s, 19.6s/100 iters), loss = nan" in page  # the evidence line, as a caption


def test_marker_x_is_at_the_step_on_the_axis() -> None:
    run = logsleuth.read_log(SAMPLE)
    page = diagnosis_page(_diagnosis(run), [run])
    chart = page.split('data-metric="loss"', 1)[1].split("</svg>", 1)[0]
    ticks = {float(v): float(x) for x, v in re.findall(r'<text class="tick" x="([\d.]+)" y="[\d.]+" '
                                                         r'text-anchor="middle">([\d.]+)</text>', chart)}
    marker_x = float(re.search(r'class="nonfinite-marker".*?<line x1="([\d.]+)"', chart, re.S).group(1))
    (s0, x0), (s1, x1) = sorted(ticks.items())[:2]
    assert marker_x == pytest.approx(x0 + (3700 - s0) * (x1 - x0) / (s1 - s0), abs=0.2)


def test_log_text_is_escaped(write) -> None:
    evil = _caffe_line(0, "2.3") + _caffe_line(100, "2.1") + \
        f"{_HEAD}solver.cpp:228] Iteration 200, loss = nan <script>alert(1)</script>\n"
    path = write("evil.log", evil)
    run = logsleuth.read_log(path)
    assert run.first_nonfinite().step == 200
    page = diagnosis_page(_diagnosis(run, "<script>alert(2)</script>\"'&"), [run])
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;script&gt;alert(2)" in page
    assert "Sudden NaN &lt;b&gt;test&lt;/b&gt;" in page and "clamp &lt;before&gt; log" in page
    assert_self_contained(page)


def test_attempts_are_separated_and_long_curves_thinned(write) -> None:
    run = logsleuth.read_log(write("restart.log", _long_log(restart_at=2000)))
    assert run.frame["segment"].max() == 1
    page = diagnosis_page(_diagnosis(run), [run])
    loss = page.split('data-metric="loss"', 1)[1].split("</svg>", 1)[0]
    assert 'data-log="true"' in page.split('data-metric="loss"', 1)[1][:40]  # 50000 vs 0.2: log axis
    assert [a for _, a in re.findall(r'class="(curve)" data-attempt="(\d)"', loss)] == ["1", "2"]
    assert 'class="attempt-start" data-attempt="2"' in loss
    points = sum(len(re.findall(r"[ML]", d)) for d in re.findall(r' d="([^"]+)"', loss))
    assert points <= 2500
    assert {m["data-step"] for m in _markers(page)} == {"7000"}


def test_downsample_keeps_spikes_and_the_failure() -> None:
    steps = np.arange(100_000, dtype=float)
    values = np.exp(-steps / 50_000)
    values[31_337] = 1e6
    values[77_777:] = np.nan
    s, v = downsample(steps, values, 2000, keep_step=77_777)
    assert len(s) <= 2000 + 101 + 2
    assert 31_337 in s and v[s == 31_337][0] == 1e6
    assert all(k in s for k in range(77_777 - 50, 77_777 + 51))
    assert np.isnan(v[s == 77_777][0]) and np.isfinite(v[s == 77_776][0])
    assert use_log_axis(values) and not use_log_axis(np.array([0.5, 2.0, np.nan]))


def test_real_logs_render() -> None:
    for name in ("caffe_bvlc_361.log", "darknet_alexeyabdarknet_5836.log", "nanogpt_nanogpt_215.log"):
        run = logsleuth.read_log(REAL_LOGS / name)
        page = diagnosis_page(_diagnosis(run), [run])
        assert_self_contained(page)
        first = run.first_nonfinite()
        assert {m["data-step"] for m in _markers(page)} == {str(first.step)}, name


def _audit_rows() -> tuple[list[dict], dict]:
    rows, sparks = [], {}
    for name, verdict, step in (("caffe_bvlc_361.log", "N201", 220), ("caffe_yjxiongcaffe_2.log", "H001", None)):
        path = str(REAL_LOGS / name)
        rows.append({"path": path, "verdict": verdict, "slug": "x", "confidence": 0.5, "failed": step is not None,
                     "nonfinite_step": step, "cause": None, "error": "<img src=x onerror=alert(1)>"})
        sparks[path] = loss_spark(logsleuth.read_log(path))
    return rows, sparks


def test_audit_page_is_a_sortable_table() -> None:
    rows, sparks = _audit_rows()
    page = audit_page(rows, sparks)
    assert_self_contained(page)
    assert "<img" not in page and "&lt;img src=x" in page
    tags = _tags(page)
    assert sum(t == "tr" for t, _ in tags.tags) == 1 + len(rows)
    assert any("addEventListener('click'" in s and ".sort(" in s for s in tags.scripts)
    assert sum(t == "th" and a.get("class") == "sortable" for t, a in tags.tags) >= 6
    assert sum(t == "svg" and a.get("class") == "spark" for t, a in tags.tags) == 2
    assert any(t == "line" and a.get("data-step") == "220" for t, a in tags.tags)


# ---- the command line ------------------------------------------------------------------

def test_diagnose_html_writes_once(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["diagnose", str(SAMPLE), "--html", str(out)])
    assert result.exit_code == 1, result.output
    page = out.read_text()
    assert_self_contained(page)
    assert {m["data-step"] for m in _markers(page)} == {"3700"} and "N201" in page
    again = CliRunner().invoke(main, ["diagnose", str(SAMPLE), "--html", str(out)])
    assert again.exit_code == 2 and "exists; pass --force" in again.stderr
    assert again.stdout.startswith("N201")  # an epilog run again still prints its verdict
    assert CliRunner().invoke(main, ["diagnose", str(SAMPLE), "--html", str(out), "--force"]).exit_code == 1
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left behind


def test_diagnose_html_unwritable_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["diagnose", str(SAMPLE), "--html", str(tmp_path / "no" / "r.html")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "cannot write it" in result.stderr
    assert result.stdout.startswith("N201")  # the verdict is printed before any file is written


def test_audit_html(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in ("caffe_bvlc_361.log", "caffe_yjxiongcaffe_2.log", "nanogpt_nanogpt_215.log"):
        shutil.copy(REAL_LOGS / name, runs / name)
    out = tmp_path / "audit.html"
    result = CliRunner().invoke(main, ["audit", str(runs), "-o", str(tmp_path / "a.jsonl"), "-j", "1",
                                       "--html", str(out)])
    assert result.exit_code == 1, result.output
    page = out.read_text()
    assert_self_contained(page)
    assert page.count('<svg class="spark"') == 3
    assert any(t == "line" and a.get("data-step") == "220" for t, a in _tags(page).tags)
    again = CliRunner().invoke(main, ["audit", str(runs), "-o", str(tmp_path / "a.jsonl"), "--resume", "-j", "1",
                                      "--html", str(out), "--force"])
    assert again.exit_code == 1, again.output
    assert out.read_text().count('<svg class="spark"') == 3  # runs skipped by --resume are still drawn


# ---- a real browser ----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); "
                                              "the page is still checked without a browser")
def test_pages_load_in_chromium(tmp_path: Path) -> None:
    run = logsleuth.read_log(SAMPLE)
    report = tmp_path / "report.html"
    report.write_text(diagnosis_page(_diagnosis(run), [run]))
    rows, sparks = _audit_rows()
    table = tmp_path / "audit.html"
    table.write_text(audit_page(rows[::-1], sparks) + "<script>document.getElementById('runs').tHead.rows[0]"
                     ".cells[4].click();document.body.setAttribute('data-first',"
                     "document.getElementById('runs').tBodies[0].rows[0].cells[0].textContent);</script>")
    for page in (report, table):
        done = _chromium(tmp_path, page, "--dump-dom")
        assert done.returncode == 0, done.stderr[-2000:]
        dom = done.stdout
        assert '<div id="page-errors"></div>' in dom, dom[:2000]  # window.onerror wrote nothing
        assert "CONSOLE" not in done.stderr and "Uncaught" not in done.stderr, done.stderr[-2000:]
    assert re.search(r'class="nonfinite-marker" data-step="3700"', _chromium(tmp_path, report, "--dump-dom").stdout)
    dom = _chromium(tmp_path, table, "--dump-dom").stdout
    assert 'data-first="caffe_bvlc_361.log"' in dom  # sorted by step: the failed run (220) first
