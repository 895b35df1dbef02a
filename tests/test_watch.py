"""logsleuth watch: early warning while a log is written, tail -F, exit codes, --on-alert."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from click.testing import CliRunner

from logsleuth.cli import main
from logsleuth.forecast import Forecaster
from logsleuth.watch import LiveLog, Options, watch


def _line(step: int, loss: float, grad: float | None = None) -> str:
    extra = f" grad_norm={grad:.6g}" if grad is not None else ""
    return f"INFO train: step={step} loss={loss:.6g}{extra} lr=0.5\n"


def exploding(steps: int = 30, nan_at: int = 30) -> list[str]:
    """A run whose loss grows x1.5 per step from step 10, then goes nan."""
    out = []
    for s in range(1, steps + 1):
        loss = math.nan if s >= nan_at else (2.0 / s if s < 10 else 0.2 * 1.5 ** (s - 10))
        out.append(_line(s, loss, 1.0 if s < 10 else 1.3 ** (s - 10)))
    return out


def healthy(steps: int = 60) -> list[str]:
    return [_line(s, 2.0 * 0.97 ** s * (1 + 0.05 * math.sin(s)), 1.0 + 0.1 * math.cos(s)) for s in range(1, steps + 1)]


class Recorder:
    """An emit callback that keeps (event, alert, diagnosis) and signals the first warning."""

    def __init__(self) -> None:
        self.events: list = []
        self.warned = threading.Event()

    def __call__(self, event, alert, diagnosis) -> None:
        self.events.append((event, alert, diagnosis))
        if event == "warning":
            self.warned.set()

    def of(self, kind: str) -> list:
        return [a for e, a, _ in self.events if e == kind]


def _run_in_thread(opts: Options, rec: Recorder) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target() -> None:
        box["diagnosis"] = watch(opts, rec)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


# ---- the evaluation, without a clock --------------------------------------------------


def test_growth_warns_before_the_nan_and_once():
    live = LiveLog("run.log")
    alerts = [a for line in exploding() for a in live.feed(line.encode())]
    kinds = [(a.event, a.kind) for a in alerts]
    assert kinds.count(("warning", "loss-growth")) == 1
    warn = next(a for a in alerts if a.kind == "loss-growth")
    fail = next(a for a in alerts if a.event == "failure")
    assert warn.step < fail.step == 30 and fail.line == 30
    assert "loss=nan" in fail.text and warn.evidence["factor"] >= 4
    assert live.diagnose().failed


def test_healthy_raises_nothing_and_any_split_reads_the_same():
    data = "".join(healthy()).encode()
    live = LiveLog("ok.log")
    alerts = [a for i in range(0, len(data), 7) for a in live.feed(data[i:i + 7])]
    assert alerts == [] and live.pending == b""
    assert not live.diagnose().failed
    whole, split = LiveLog("x"), LiveLog("x")
    bad = "".join(exploding()).encode()
    a = [(x.kind, x.step) for x in whole.feed(bad)]
    b = [(x.kind, x.step) for i in range(0, len(bad), 13) for x in split.feed(bad[i:i + 13])]
    assert a == b and a


def test_partial_line_waits_for_its_end():
    live = LiveLog("x")
    assert live.feed(b"".join(line.encode() for line in exploding()[:29])) != []
    assert [a for a in live.feed(b"INFO train: step=30 loss=n") if a.event == "failure"] == []
    assert [a.step for a in live.feed(b"an lr=0.5\n") if a.event == "failure"] == [30]


def test_loss_scale_collapse_and_grad_spike():
    fc = Forecaster()
    alerts = []
    for i, scale in enumerate([65536, 32768, 32768, 16384, 8192, 4096, 1024, 256, 64, 32]):
        alerts += fc.observe("loss_scale", 100 + i, float(scale), i + 1)
    assert [a.kind for a in alerts] == ["loss-scale-collapse"] and alerts[0].evidence["loss_scale"] == 64
    fc = Forecaster()
    spikes = []
    for s in range(1, 30):
        fc.observe("loss", s, 1.0 - s * 0.01, s)
        spikes += fc.observe("grad_norm", s, 50.0 if s == 25 else 1.0 + 0.05 * (s % 3), s)
    assert [(a.kind, a.step) for a in spikes] == [("grad-norm-spike", 25)]


def test_overflow_skips_are_no_failure_but_minimum_scale_is():
    fc = Forecaster()
    assert fc.observe_event("overflow", 5, 3, "Gradient overflow. Skipping step", {"loss_scale": 32768.0}) == []
    assert [a.event for a in fc.observe_event("min_loss_scale", 9, 7, "Minimum loss scale reached")] == ["failure"]


# ---- following a file -----------------------------------------------------------------


def test_warning_arrives_before_the_nan_line_is_written(tmp_path: Path):
    log = tmp_path / "train.log"
    log.write_text("")
    rec = Recorder()
    thread, box = _run_in_thread(Options(str(log), interval=0.02, idle=0.6), rec)
    lines = exploding()
    with open(log, "a") as f:
        for line in lines[:-1]:
            f.write(line)
            f.flush()
            time.sleep(0.005)
        assert rec.warned.wait(5), "no warning while the loss grew"
        f.write(lines[-1])  # the nan comes only after the warning was out
    thread.join(10)
    events = [e for e, _, _ in rec.events]
    assert events.index("warning") < events.index("failure") < events.index("final") == len(events) - 1
    failure = rec.of("failure")[0]
    assert failure.step == 30 and failure.line == 30
    assert box["diagnosis"].failed


def test_rotation_and_truncation(tmp_path: Path):
    log = tmp_path / "train.log"
    log.write_text("".join(healthy(20)))
    rec = Recorder()
    thread, box = _run_in_thread(Options(str(log), interval=0.02, idle=1.0), rec)
    time.sleep(0.2)
    os.rename(log, tmp_path / "train.log.1")  # logrotate: the path now names a new file
    log.write_text("".join(healthy(10)))
    time.sleep(0.2)
    with open(log, "w") as f:  # truncated and rewritten: a re-queued job
        f.write(_line(1, 1.0) + _line(2, math.nan))
    thread.join(10)
    failure = rec.of("failure")
    assert [(a.step, a.line) for a in failure] == [(2, 2)]
    assert len(box["diagnosis"].inputs) == 3  # each file generation is an attempt


def test_pid_gone_ends_with_diagnose_exit_code(tmp_path: Path):
    log = tmp_path / "train.log"
    log.write_text("".join(healthy()))
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.4)"])
    threading.Thread(target=writer.wait, daemon=True).start()  # reap it, or its pid lives on
    started = time.monotonic()
    result = CliRunner().invoke(main, ["watch", str(log), "--pid", str(writer.pid), "--interval", "0.05"])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 5
    assert result.output.strip().splitlines()[-1].startswith("H001")


def test_on_alert_gets_the_alert_in_its_environment(tmp_path: Path):
    log = tmp_path / "train.log"
    log.write_text("".join(exploding()))
    out = tmp_path / "env.jsonl"
    hook = (f"{sys.executable} -c \"import json, os; open({str(out)!r}, 'a').write(json.dumps("
            "{k: v for k, v in os.environ.items() if k.startswith('LOGSLEUTH_')}) + '\\n')\"")
    result = CliRunner().invoke(main, ["watch", str(log), "--idle", "0.1", "--interval", "0.02",
                                       "--on-alert", hook, "--format", "json"])
    assert result.exit_code == 1, result.output
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["LOGSLEUTH_EVENT"] for e in seen][-2:] == ["failure", "final"]
    assert seen[0]["LOGSLEUTH_EVENT"] == "warning" and seen[0]["LOGSLEUTH_CODE"] == "X101"
    fail = seen[-2]
    assert fail["LOGSLEUTH_STEP"] == "30" and fail["LOGSLEUTH_LINE"] == "30" and fail["LOGSLEUTH_LOG"] == str(log)
    assert "loss=nan" in fail["LOGSLEUTH_MESSAGE"] and fail["LOGSLEUTH_CODE"]
    printed = [json.loads(line) for line in result.output.splitlines()]
    assert printed[-1]["event"] == "final" and printed[-1]["code"] == seen[-1]["LOGSLEUTH_CODE"]


def test_text_output_and_healthy_exit_code(tmp_path: Path):
    log = tmp_path / "train.log"
    log.write_text("".join(healthy()))
    result = CliRunner().invoke(main, ["watch", str(log), "--idle", "0.1", "--interval", "0.02"])
    assert result.exit_code == 0 and result.output.startswith("H001"), result.output


def test_missing_file_and_directory_are_one_line_and_exit_2(tmp_path: Path):
    started = time.monotonic()
    result = CliRunner().invoke(main, ["watch", str(tmp_path / "never.log"), "--wait", "0.2", "--interval", "0.05"])
    assert result.exit_code == 2 and time.monotonic() - started >= 0.2
    assert result.output.count("\n") == 1 and "no such file" in result.output
    result = CliRunner().invoke(main, ["watch", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output and result.output.count("\n") == 1
