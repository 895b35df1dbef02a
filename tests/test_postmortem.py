"""``logsleuth postmortem`` and the shipped Slurm epilog: the report beside the log, the
one-line verdict, exit code 0 whatever happens (missing, unreadable, endless logs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from logsleuth.api import diagnose
from logsleuth.cli import main
from logsleuth.sidecar import TERMINATION_LOG_MAX, termination_message, write_report
from logsleuth.slurm import array_siblings, expand, parse_records

from .conftest import REPO

EPILOG = REPO / "examples" / "slurm" / "epilog.sh"
SAMPLE = REPO / "sample_logs" / "caffe_sudden_nan.log"
LOGSLEUTH = Path(sys.executable).parent / "logsleuth"
RECORD = ("JobId={job} JobName=train-{job}\n   UserId=alice(1001) GroupId=alice(1001)\n"
          "   JobState=FAILED Reason=NonZeroExitCode Restarts=0 ExitCode=1:0\n"
          "   Command=/home/alice/my job.sh\n   WorkDir={workdir}\n   StdErr={err}\n   StdIn=/dev/null\n"
          "   StdOut={out}\n   BatchHost=gpu-07.cluster TRES=cpu=1,mem=4G\n{array}")


def fake_scontrol(tmp: Path, out: str, err: str | None = None, job: str = "4242", array: str = "") -> Path:
    """A ``scontrol`` that prints one job record, as Slurm does (patterns unexpanded)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp / "record.txt").write_text(RECORD.format(job=job, workdir=tmp, out=out, err=err or out, array=array))
    script = bin_dir / "scontrol"
    script.write_text(f'#!/bin/sh\n[ "$1 $2" = "show job" ] || exit 1\ncat "{tmp / "record.txt"}"\n')
    script.chmod(0o755)
    return bin_dir


def run_epilog(tmp: Path, bin_dir: Path, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242",
            "SLURM_JOB_USER": "alice", "SLURM_JOB_EXIT_CODE2": "1:0", "LOGSLEUTH": str(LOGSLEUTH),
            "LOGSLEUTH_LEDGER": str(tmp / "ledger" / "ledger.jsonl"),
            "LOGSLEUTH_VERDICTS": str(tmp / "verdicts.log"), "LOGSLEUTH_TIMEOUT": str(timeout), **env}
    return subprocess.run(["bash", str(EPILOG)], env=full, capture_output=True, text=True, timeout=120,
                          cwd="/")


def ledger(tmp: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp / "ledger" / "ledger.jsonl").read_text().splitlines()]


def test_epilog_writes_the_report_beside_the_log_and_exits_0(tmp_path: Path) -> None:
    log = tmp_path / "slurm-4242.out"
    shutil.copy(SAMPLE, log)
    done = run_epilog(tmp_path, fake_scontrol(tmp_path, "slurm-%j.out"))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "slurm-4242.out.logsleuth.json").read_text())
    assert report["verdict"]["code"] == "N201" and report["input"][0]["path"].endswith("slurm-4242.out")
    verdicts = (tmp_path / "verdicts.log").read_text().splitlines()
    assert len(verdicts) == 1 and verdicts[0].startswith("logsleuth: job 4242: N201 sudden-nan step 3700")
    assert log.read_text().splitlines()[-1] == verdicts[0].replace("logsleuth:", "logsleuth postmortem:", 1)
    entry, = ledger(tmp_path)
    assert entry["status"] == "diagnosed" and entry["job"] == "4242" and entry["job_exit"] == "1:0"
    assert entry["verdict"]["code"] == "N201" and entry["report"] == str(log) + ".logsleuth.json"
    assert diagnose(log).verdict.code == "N201"  # the appended line does not change the verdict


def test_rerun_replaces_its_own_report_atomically_and_appends_once(tmp_path: Path) -> None:
    log = tmp_path / "slurm-4242.out"
    shutil.copy(SAMPLE, log)
    bin_dir = fake_scontrol(tmp_path, str(tmp_path / "slurm-%j.out"))
    run_epilog(tmp_path, bin_dir)
    report = tmp_path / "slurm-4242.out.logsleuth.json"
    first, lines = report.stat().st_ino, len(log.read_text().splitlines())
    assert run_epilog(tmp_path, bin_dir).returncode == 0
    assert report.stat().st_ino != first and json.loads(report.read_text())["verdict"]["code"] == "N201"
    assert len(log.read_text().splitlines()) == lines and len(ledger(tmp_path)) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("make, expect", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "a directory where job 4242's output file should be"),
])
def test_missing_or_unreadable_log_is_one_line_and_exit_0(tmp_path: Path, make, expect: str) -> None:
    make(tmp_path / "slurm-4242.out")
    done = run_epilog(tmp_path, fake_scontrol(tmp_path, "slurm-%j.out"))
    assert done.returncode == 0
    out = (tmp_path / "verdicts.log").read_text().splitlines()
    assert len(out) == 1 and out[0].startswith("logsleuth: job 4242: error: ") and expect in out[0]
    entry, = ledger(tmp_path)
    assert entry["status"] == "error" and expect in entry["error"] and entry["verdict"] is None


def test_fifo_without_writer_times_out(tmp_path: Path) -> None:
    fifo = tmp_path / "train.log"
    os.mkfifo(fifo)
    start = time.monotonic()
    result = CliRunner().invoke(main, ["postmortem", "--log", str(fifo), "--timeout", "1.5", "--append-to-log",
                                       "--ledger", str(tmp_path / "l.jsonl")])
    assert result.exit_code == 0 and time.monotonic() - start < 15
    assert "timed out after 1.5 s diagnosing train.log" in result.output
    assert json.loads((tmp_path / "l.jsonl").read_text())["status"] == "timeout"


def test_endless_log_times_out_with_what_it_read(tmp_path: Path) -> None:
    fifo = tmp_path / "slurm-4242.out"
    os.mkfifo(fifo)

    def write_forever() -> None:
        try:
            with open(fifo, "w") as f:
                for i in range(10**9):
                    f.write(f"I0523 10:13:00.0 9167 solver.cpp:228] Iteration {i}, loss = 0.5\n")
        except (BrokenPipeError, OSError):
            pass

    writer = threading.Thread(target=write_forever, daemon=True)
    writer.start()
    start = time.monotonic()
    done = run_epilog(tmp_path, fake_scontrol(tmp_path, "slurm-%j.out"), timeout=2)
    assert done.returncode == 0 and time.monotonic() - start < 30
    line, = (tmp_path / "verdicts.log").read_text().splitlines()
    assert "timed out after 2 s diagnosing slurm-4242.out (" in line and line.endswith(" read); no verdict")
    writer.join(10)


def test_array_tasks_are_the_attempts_of_one_job(tmp_path: Path) -> None:
    for task in (1, 2, 3, 5):
        shutil.copy(SAMPLE, tmp_path / f"train-100_{task}.out")
    array = "   ArrayJobId=100 ArrayTaskId=3\n"
    done = run_epilog(tmp_path, fake_scontrol(tmp_path, "train-%A_%a.out", job="103", array=array),
                      SLURM_JOB_ID="103")
    assert done.returncode == 0
    entry, = ledger(tmp_path)
    assert [Path(p).name for p in entry["logs"]] == ["train-100_1.out", "train-100_2.out", "train-100_3.out"]
    assert entry["line"].startswith("logsleuth: job 100_3 (3 attempts): ")
    assert (tmp_path / "train-100_3.out.logsleuth.json").exists()


def test_patterns_expand_as_sbatch_does(tmp_path: Path) -> None:
    rec, = parse_records(RECORD.format(job="125", workdir="/home/alice", out="x", err="x",
                                       array="   ArrayJobId=120 ArrayTaskId=5\n"))
    assert rec["Command"] == "/home/alice/my job.sh" and rec["TRES"] == "cpu=1,mem=4G"
    assert expand("%x-%j-%u-%N.%A_%4a.%%.out", rec) == "/home/alice/train-125-125-alice-gpu-07.120_0005.%.out"
    assert expand("/abs/%A_%a.log", {"JobId": "9"}) == "/abs/9_4294967294.log"
    one_line = parse_records("JobId=1 JobName=a StdOut=/o/1.out\nJobId=2 JobName=b StdOut=/o/2.out\n")
    assert [r["StdOut"] for r in one_line] == ["/o/1.out", "/o/2.out"]
    for task in (1, 2, 7):
        (tmp_path / f"run-120_{task}.out").write_text("x")
    rec["WorkDir"] = str(tmp_path)
    expanded = str(tmp_path / "run-120_5.out")  # as newer scontrol prints it
    assert [Path(p).name for p in array_siblings(expanded, rec, 8)] == ["run-120_1.out", "run-120_2.out"]


def test_report_name_taken_by_a_link_or_a_user_file_is_left_alone(tmp_path: Path) -> None:
    target, link, user = tmp_path / "precious", tmp_path / "a.log.logsleuth.json", tmp_path / "b.log.logsleuth.json"
    target.write_text("keep me")
    link.symlink_to(target)
    user.write_text('{"mine": 1}')
    for path in (link, user):
        with pytest.raises(Exception, match="not a logsleuth report"):
            write_report(str(path), '{\n  "schema_version": 1,\n  "verdict": {}}')
    assert target.read_text() == "keep me" and link.is_symlink() and user.read_text() == '{"mine": 1}'
    log = tmp_path / "a.log"
    shutil.copy(SAMPLE, log)
    result = CliRunner().invoke(main, ["postmortem", "--log", str(log)])
    assert result.exit_code == 0 and "left alone" in result.output and target.read_text() == "keep me"


def test_termination_log_is_at_most_4_kib_and_keeps_the_application_message(tmp_path: Path) -> None:
    path = tmp_path / "termination-log"
    path.write_text("RuntimeError: CUDA error " + "é" * 3000)
    result = CliRunner().invoke(main, ["postmortem", "--log", str(SAMPLE), "--termination-log", str(path),
                                       "--report-dir", str(tmp_path)])
    assert result.exit_code == 0
    data = path.read_bytes()
    assert len(data) <= TERMINATION_LOG_MAX and data.startswith(b"RuntimeError")
    assert data.decode().splitlines()[-1].startswith("logsleuth: N201 sudden-nan")
    again = termination_message(data, "logsleuth: H001 healthy")
    assert again.count(b"logsleuth") == 1 and again.startswith(b"RuntimeError")
    assert (tmp_path / "caffe_sudden_nan.log.logsleuth.json").exists()


def test_usage_errors_exit_0_and_failed_exit_is_opt_in(tmp_path: Path) -> None:
    bad = CliRunner().invoke(main, ["postmortem", "--timeout", "soon"])
    assert bad.exit_code == 0 and "error: Invalid value for '--timeout'" in bad.output
    log = tmp_path / "t.log"
    shutil.copy(SAMPLE, log)
    assert CliRunner().invoke(main, ["postmortem", "--log", str(log), "--failed-exit", "3"]).exit_code == 3
    none = CliRunner().invoke(main, ["postmortem"], env={"SLURM_JOB_ID": ""})
    assert none.exit_code == 0 and "no log: pass --log PATH" in none.output
