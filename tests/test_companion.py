"""A log that kept only a progress bar's final state is judged from the run's own metrics
file beside it (logsleuth.companion), on a run that Lightning's RichProgressBar wrote."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import logsleuth
from logsleuth.cli import main

RUN = Path(__file__).resolve().parents[1] / "corpus" / "framework_runs" / "runs" / "lightning-rich-bad_init-0"
METRICS = Path("lightning_logs") / "version_0" / "metrics.csv"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """The run folder as the job left it: the captured log, and the CSVLogger's file."""
    shutil.copyfile(RUN / "job.log.gz", tmp_path / "job.log.gz")
    (tmp_path / METRICS).parent.mkdir(parents=True)
    shutil.copyfile(RUN / METRICS, tmp_path / METRICS)
    return tmp_path


def test_the_rich_bar_log_alone_holds_one_record() -> None:
    series = logsleuth.read_log(RUN / "job.log.gz")
    assert len(series.frame) == 1  # `Epoch 12/-2 ━━━ 10/10 ... train_loss: 1.615`, the whole run


def test_a_bar_only_log_is_judged_from_the_metrics_file_beside_it(run_dir: Path) -> None:
    d = logsleuth.diagnose(run_dir / "job.log.gz")
    assert d.verdict.code == "L301"  # the CSV's first loss is 7.2e20, as the run measured
    assert d.inputs[0].path.endswith(str(METRICS))
    assert any("read in place of job.log.gz, which holds only 1 training record" in w for w in d.warnings)
    assert any("loss starts at 7.208e+20" in e.why for e in d.evidence)


def test_without_the_metrics_file_the_log_is_too_short_to_judge(run_dir: Path) -> None:
    (run_dir / METRICS).unlink()
    assert logsleuth.diagnose(run_dir / "job.log.gz").verdict.code == "I000"


def test_a_metrics_file_from_long_before_the_log_is_another_runs(run_dir: Path) -> None:
    log_mtime = os.stat(run_dir / "job.log.gz").st_mtime
    os.utime(run_dir / METRICS, (log_mtime - 86400, log_mtime - 86400))
    assert logsleuth.diagnose(run_dir / "job.log.gz").verdict.code == "I000"


def test_the_newest_version_is_the_run_that_wrote_the_log(run_dir: Path) -> None:
    old = run_dir / "lightning_logs" / "version_1" / "metrics.csv"
    old.parent.mkdir()
    old.write_text("epoch,step,train_loss\n" + "".join(f"0,{s},{2.0 - s / 100:.3f}\n" for s in range(0, 60, 5)))
    log_mtime = os.stat(run_dir / "job.log.gz").st_mtime
    os.utime(old, (log_mtime - 3000, log_mtime - 3000))  # an earlier run, same folder
    assert logsleuth.diagnose(run_dir / "job.log.gz").inputs[0].path.endswith(str(METRICS))


def test_a_log_that_shows_its_failure_is_judged_from_itself(run_dir: Path) -> None:
    log = run_dir / "train.log"
    log.write_text("Epoch 0: 100%|██████████| 10/10 [00:00<00:00, train_loss=nan]\n")
    d = logsleuth.diagnose(log)
    assert d.inputs[0].path == str(log) and d.first_nonfinite is not None


def test_the_cli_prints_the_companions_verdict_and_says_why(run_dir: Path) -> None:
    result = CliRunner().invoke(main, ["diagnose", str(run_dir / "job.log.gz")])
    assert result.exit_code == 1 and result.stdout.startswith("L301")
    assert "read in place of job.log.gz" in result.stdout + result.stderr
