"""``logsleuth audit``: discovery, one row per run, broken files as rows, outputs, resume
after a kill, the process pool and the Dask engine."""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import logsleuth.audit
from logsleuth.audit import ResultStore, discover
from logsleuth.audit.cli import audit as audit_command
from logsleuth.features import FEATURES

from .conftest import REAL_LOGS

REAL = ["caffe_bvlc_361", "caffe_bvlc_512", "detectron2_detectron2_508", "fairseq_fairseq_1895", "keras_keras_12707",
        "megatron_megatronllm_11", "mmdet_mmdetection_3924", "yolov5_yolov5_6907"]
FLAT = ["tf_pixellink_36", "deepspeed_deepspeed_931", "pytorch_imagenet18old_19"]


# ---- a fleet on disk ------------------------------------------------------------------------

def _events(logdir: Path, values: dict[int, float], tag: str = "train/loss") -> None:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(logdir), flush_secs=3600)
    for step, value in values.items():
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        writer.add_event(event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary))
    writer.close()


def _state(path: Path, last_step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    history = [{"epoch": s / 100, "grad_norm": 1.0 if s < 60 else math.nan, "learning_rate": 5e-5,
                "loss": 2.0 - s / 100, "step": s} for s in range(10, last_step + 1, 10)]
    path.write_text(json.dumps({"global_step": last_step, "log_history": history}))


def make_fleet(root: Path) -> dict[str, str]:
    """Runs of every kind; returns run path (relative) -> what it is."""
    kinds = {}
    for name in REAL:
        (root / name).mkdir(parents=True)
        shutil.copy(REAL_LOGS / f"{name}.log", root / name / "stdout.log")
        kinds[name] = "log"
    (root / "flat").mkdir()
    for name in FLAT:
        shutil.copy(REAL_LOGS / f"{name}.log", root / "flat" / f"{name}.log")
        kinds[f"flat/{name}.log"] = "log"
    hf = root / "hf_run"
    shutil.copy(REAL_LOGS / "hf_tinyllama_153.log", (hf.mkdir(), hf / "stdout.log")[1])
    _state(hf / "checkpoint-50" / "trainer_state.json", 50)
    _state(hf / "checkpoint-100" / "trainer_state.json", 100)
    _events(hf / "runs" / "Jan01_12-00-00_node7", {s: 2.0 - s / 100 for s in range(0, 100, 5)})
    kinds["hf_run"] = "hf"
    keras = root / "keras_run"
    _events(keras / "train", {e: [0.9, 0.7, math.nan][e] for e in range(3)}, "epoch_loss")
    _events(keras / "validation", {e: 0.8 for e in range(3)}, "epoch_loss")
    (keras / "training.log").write_text("epoch,loss,val_loss\n0,0.9,0.8\n1,0.7,0.8\n2,nan,0.8\n")
    kinds["keras_run"] = "keras"
    lit = root / "lit_run" / "lightning_logs" / "version_0"
    lit.mkdir(parents=True)
    (lit / "metrics.csv").write_text("epoch,step,train_loss,val_loss\n" +
                                     "".join(f"0,{s},{1 / (s + 1):.4f},\n" for s in range(0, 200, 10)))
    kinds["lit_run"] = "lightning"
    for run_id in ("a1b2", "c3d4"):
        ml = root / "mlruns" / "1" / run_id
        (ml / "metrics").mkdir(parents=True)
        (ml / "meta.yaml").write_text("status: 3\n")
        (ml / "metrics" / "loss").write_text("".join(f"{1000 + s} {1.0 - s / 100} {s}\n" for s in range(50)))
        kinds[f"mlruns/1/{run_id}"] = "mlflow"
    (root / "broken_json").mkdir()
    (root / "broken_json" / "trainer_state.json").write_text('{"log_history": [{"loss": 1.0, ')
    kinds["broken_json"] = "broken"
    (root / "broken_gz").mkdir()
    (root / "broken_gz" / "train.log.gz").write_bytes(gzip.compress(b"step 1 loss 0.5\n" * 500)[:60])
    kinds["broken_gz"] = "broken"
    return kinds


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    pytest.importorskip("tensorboard")
    root = tmp_path_factory.mktemp("fleet")
    return root, make_fleet(root)


@pytest.fixture(scope="module")
def table(fleet: tuple[Path, dict[str, str]]) -> pd.DataFrame:
    root, _ = fleet
    return logsleuth.audit(str(root), jobs=1)


def _rel(root: Path, paths: pd.Series) -> list[str]:
    return [os.path.relpath(p, root) for p in paths]


# ---- discovery ---------------------------------------------------------------------------

def test_discovery_groups_the_artefacts_of_each_run(fleet: tuple[Path, dict[str, str]]) -> None:
    root, kinds = fleet
    runs = {os.path.relpath(r.path, root): r for r in discover(root)}
    assert set(runs) == set(kinds)
    hf = sorted(os.path.relpath(a.path, root / "hf_run") for a in runs["hf_run"].artifacts)
    assert hf == ["checkpoint-100/trainer_state.json", "checkpoint-50/trainer_state.json",
                  f"runs/Jan01_12-00-00_node7/{os.listdir(root / 'hf_run/runs/Jan01_12-00-00_node7')[0]}", "stdout.log"]
    assert sorted(a.kind for a in runs["keras_run"].artifacts) == ["log", "tfevents", "tfevents"]


def test_discovery_roots_and_group_modes(fleet: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = fleet
    # a run directory given as the root is one run, its inner directories included
    (single,) = discover(root / "hf_run")
    assert single.path == str(root / "hf_run") and len(single.artifacts) == 4
    # a lightning_logs root: each version is a run
    for v in (0, 1):
        (tmp_path / "lightning_logs" / f"version_{v}").mkdir(parents=True)
        shutil.copy(root / "lit_run/lightning_logs/version_0/metrics.csv", tmp_path / f"lightning_logs/version_{v}")
    assert [os.path.basename(r.path) for r in discover(tmp_path / "lightning_logs")] == ["version_0", "version_1"]
    assert len(discover(root / "keras_run", group="file")) == 3
    assert len(discover(root, group="dir")) > len(discover(root))
    (file_run,) = discover(root / "flat" / f"{FLAT[0]}.log")
    assert file_run.path.endswith(".log")


def test_flat_directories_split_and_run_directories_do_not(fleet: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = fleet
    # the real-log corpus: one log per run, plus labels.csv / notes.csv that are no metrics tables
    runs = discover(REAL_LOGS)
    assert len(runs) == len(list(REAL_LOGS.glob("*.log"))) and all(r.path.endswith(".log") for r in runs)
    # stdout + stderr + event files: one run
    run = tmp_path / "job"
    shutil.copytree(root / "keras_run" / "train", run / "tb")
    shutil.copy(REAL_LOGS / "caffe_bvlc_361.log", run / "stdout.log")
    (run / "stderr.log").write_text("Traceback (most recent call last):\n")
    (only,) = discover(run.parent)
    assert only.path == str(run) and len(only.artifacts) == 3


# ---- the table ---------------------------------------------------------------------------

def test_one_row_per_run_with_verdicts_and_features(table: pd.DataFrame, fleet: tuple[Path, dict[str, str]]) -> None:
    root, kinds = fleet
    assert sorted(_rel(root, table["path"])) == sorted(kinds)
    assert table["path"].is_unique
    assert [f.name for f in FEATURES] == list(table.columns[-len(FEATURES):])
    by = table.set_index(pd.Index(_rel(root, table["path"])))
    caffe = by.loc["caffe_bvlc_361"]
    assert (caffe["verdict"], caffe["nonfinite_step"], caffe["formats"]) == ("N201", 220, "caffe")
    assert caffe["failed"] and caffe["cause"].startswith("C") and len(caffe["sha256"]) == 64
    assert by.loc["hf_run", "formats"] == "hf_trainer+hf_trainer_state+tfevents"
    assert by.loc["hf_run", "nonfinite_step"] in (60, 128)  # trainer_state's nan grad_norm or the log's eval nan
    assert by.loc["keras_run", "nonfinite_step"] == 2 and by.loc["keras_run", "failed"]
    assert by.loc["mlruns/1/a1b2", "verdict"] == "H001"
    assert table["has_nonfinite"].dtype == "float64"


def test_broken_files_are_rows_with_an_error(table: pd.DataFrame, fleet: tuple[Path, dict[str, str]]) -> None:
    root, _ = fleet
    by = table.set_index(pd.Index(_rel(root, table["path"])))
    assert "not valid JSON" in by.loc["broken_json", "error"]
    assert "gzip" in by.loc["broken_gz", "error"]
    assert by.loc[["broken_json", "broken_gz"], "verdict"].isna().all()
    assert by.drop(index=["broken_json", "broken_gz"])["error"].isna().all()


def test_process_pool_gives_the_same_rows(table: pd.DataFrame, fleet: tuple[Path, dict[str, str]]) -> None:
    root, _ = fleet
    pooled = logsleuth.audit.audit([str(root)], jobs=2)
    cols = ["path", "verdict", "sha256", "nonfinite_step", "cause", "error", "loss_growth_rate"]
    a = table[cols].sort_values("path").reset_index(drop=True)
    b = pooled[cols].sort_values("path").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_outputs_round_trip(fleet: tuple[Path, dict[str, str]], tmp_path: Path, suffix: str) -> None:
    root, kinds = fleet
    out = tmp_path / f"results{suffix}"
    result = logsleuth.audit.audit(str(root / "caffe_bvlc_361"), output=str(out), jobs=1)
    again = ResultStore(str(out), resume=True)
    again.close()
    back = again.frame()
    assert len(back) == 1 and back["verdict"].tolist() == ["N201"]
    assert back["nonfinite_step"].tolist() == [220]
    for name in ("loss_growth_rate", "lr_at_failure", "has_nonfinite"):
        a, b = result[name].iloc[0], back[name].iloc[0]
        assert (math.isnan(a) and math.isnan(b)) or a == b
    assert not os.path.exists(f"{out}.rows.jsonl")


# ---- the command -------------------------------------------------------------------------

def test_cli_summary_and_exit_codes(fleet: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, kinds = fleet
    out = tmp_path / "audit.jsonl"
    result = CliRunner().invoke(audit_command, [str(root), "-o", str(out), "-j", "2"])
    assert result.exit_code == 1, result.output  # failures were found
    assert "signatures:" in result.output and "worst runs" in result.output and "errors: 2 run(s)" in result.output
    assert "\r" not in result.output  # no progress bar when not on a terminal
    assert len(out.read_text().splitlines()) == len(kinds)
    again = CliRunner().invoke(audit_command, [str(root), "-o", str(out)])
    assert again.exit_code == 2 and "--resume" in again.output
    healthy = CliRunner().invoke(audit_command, [str(root / "mlruns")])  # csv on stdout, summary on stderr
    assert healthy.exit_code == 0
    assert healthy.stdout.splitlines()[0].startswith("path,formats,")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_killed_audit_resumes_with_every_run_once(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    for i in range(36):
        name = REAL[i % len(REAL)]
        (root / f"run{i:02d}").mkdir(parents=True)
        shutil.copy(REAL_LOGS / f"{name}.log", root / f"run{i:02d}" / "stdout.log")
    out = tmp_path / "audit.jsonl"
    cmd = [sys.executable, "-m", "logsleuth.audit.cli", str(root), "-o", str(out), "-j", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _rows(out)
    assert 3 <= len(before) < 36, "the audit finished before it could be killed"
    with open(out, "ab") as f:
        f.write(b'{"path": "' + str(root / "run35").encode() + b'", "verd')  # killed in mid-write
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    after = _rows(out)
    assert sorted(r["path"] for r in after) == sorted(str(root / f"run{i:02d}") for i in range(36))
    assert after[:len(before)] == before  # nothing written before the kill was lost or redone
    assert f"{len(before)} unchanged and skipped" in done.stdout


def test_resume_reaudits_changed_runs_only(fleet: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root = tmp_path / "small"
    for name in REAL[:3]:
        shutil.copytree(fleet[0] / name, root / name)
    for suffix in (".jsonl", ".csv", ".parquet"):
        out = tmp_path / f"r{suffix}"
        first = logsleuth.audit.audit(str(root), output=str(out), jobs=1).set_index("path")
        with open(root / REAL[1] / "stdout.log", "a") as f:
            f.write("\n")
        second = logsleuth.audit.audit(str(root), output=str(out), jobs=1, resume=True).set_index("path")
        assert second.index.is_unique and len(second) == 3
        changed = str(root / REAL[1])
        assert second.loc[changed, "sha256"] != first.loc[changed, "sha256"]
        kept = [str(root / REAL[0]), str(root / REAL[2])]
        assert (second.loc[kept, "seconds"] == first.loc[kept, "seconds"]).all()  # not re-audited
        reread = ResultStore(str(out), resume=True)
        reread.close()
        assert len(reread.frame()) == 3


def test_dask_engine_on_a_local_cluster(fleet: tuple[Path, dict[str, str]], table: pd.DataFrame) -> None:
    pytest.importorskip("distributed")
    root, _ = fleet
    rows = logsleuth.audit.audit([str(root / n) for n in REAL[:2]] + [str(root / "broken_json")],
                                 engine="dask", jobs=1)
    local = table.set_index("path").loc[rows["path"], ["verdict", "sha256", "error"]]
    pd.testing.assert_frame_equal(rows.set_index("path")[["verdict", "sha256", "error"]], local)
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:  # --scheduler ADDRESS
        again = logsleuth.audit.audit(str(root / REAL[0]), engine="dask", scheduler=cluster.scheduler_address)
    assert again["verdict"].tolist() == [table.set_index("path").loc[str(root / REAL[0]), "verdict"]]


def test_artefacts_of_one_run_are_views_not_attempts(tmp_path: Path) -> None:
    """The same nan in trainer_state.json and the event file is one failure, not a recurrence."""
    pytest.importorskip("tensorboard")
    from logsleuth.audit.run import audit_run

    run = tmp_path / "hf"
    _state(run / "trainer_state.json", 100)  # grad_norm nan from step 60
    curve = {s: (2.0 - s / 100 if s < 60 else math.nan) for s in range(10, 101, 10)}
    _events(run / "runs" / "Jan01_12-00-00_n1", curve)
    (found,) = discover(run)
    row = audit_run(found)
    assert row["formats"] == "hf_trainer_state+tfevents" and row["error"] is None
    assert row["nonfinite_step"] == 60
    assert row["recurs_same_step"] == 0 and row["n_segments"] == 1
    assert row["verdict"] != "N202"
