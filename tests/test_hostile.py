"""Hostile inputs in small sizes (bench/hostile.py has the full ones): each gets a correct
partial result with a warning, or a one-line error and exit 2, quickly; nothing the user
has (a device node, a file behind a link) is replaced."""

from __future__ import annotations

import gzip
import os
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import logsleuth
import logsleuth.artifacts as artifacts
from logsleuth.cli import main
from logsleuth.errors import InputError

from .conftest import REPO

CAFFE = REPO / "sample_logs" / "caffe_sudden_nan.log"
LOGSLEUTH = str(Path(sys.executable).with_name("logsleuth"))


def _trainer_state_bomb(path: Path, mib: int) -> Path:
    entry = b'{"loss": 0.5, "learning_rate": 5e-05, "epoch": 0.1, "step": 1},'
    with gzip.open(path, "wb", compresslevel=9) as g:
        g.write(b'{"global_step": 1, "log_history": [')
        block = entry * (1 << 14)
        for _ in range((mib << 20) // len(block) + 1):
            g.write(block)
        g.write(entry[:-1] + b"]}")
    return path


def test_json_nested_100k_deep_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.json"
    path.write_text('{"log_history": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InputError, match="nested too deeply"):
        artifacts.read_artifact(path)
    result = CliRunner().invoke(main, ["diagnose", str(path)])
    assert result.exit_code == 2 and "nested too deeply" in result.stderr and "internal error" not in result.stderr


def test_a_gzip_bomb_named_trainer_state_stops_at_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "MAX_TABLE_BYTES", 1 << 20)
    bomb = _trainer_state_bomb(tmp_path / "trainer_state.json.gz", 8)
    assert bomb.stat().st_size < 200_000
    started = time.monotonic()
    assert artifacts.artifact_kind(str(bomb)) == "hf_trainer_state"  # told from its head alone
    with pytest.raises(InputError, match="over 1 MiB decompressed"):
        logsleuth.diagnose(bomb)
    assert time.monotonic() - started < 10


def test_a_metrics_csv_of_100k_columns_is_read(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    columns = [f"c{i}" for i in range(100_000)]
    rows = [",".join(["epoch", "step", "train_loss", *columns])]
    rows += [",".join([str(e), str(10 * e), f"{2.0 - 0.1 * e:.2f}", *["1"] * len(columns)]) for e in range(5)]
    path.write_text("\n".join(rows) + "\n")
    started = time.monotonic()
    d = logsleuth.diagnose(path)  # its header alone is 600 KB, past the 64 KB head
    assert d.inputs[0].format == "lightning_csv" and d.verdict.code in ("H001", "I000")
    assert any("99001 past the first 1000 metric columns" in w for w in d.warnings)
    assert d.features["n_train_records"] == 5  # train_loss is read whatever the columns around it
    assert time.monotonic() - started < 30
    from logsleuth.audit.discover import _metrics_table

    assert _metrics_table(str(path))  # audits count it as the run's table too


def test_audit_survives_a_symlink_loop(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "train.log").write_bytes(CAFFE.read_bytes())
    (run / "self").symlink_to(run)
    (tmp_path / "runs" / "up").symlink_to(tmp_path / "runs")
    result = subprocess.run([LOGSLEUTH, "audit", str(tmp_path / "runs"), "-o", str(tmp_path / "a.csv")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    assert (tmp_path / "a.csv").read_text().count("N201") >= 1


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_still_prints_the_verdict_and_keeps_the_device() -> None:
    result = subprocess.run([LOGSLEUTH, "diagnose", str(CAFFE), "--oneline", "--report", "/dev/full", "--force"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout.startswith("N201")
    assert result.stderr.strip() == "logsleuth: error: /dev/full: cannot write it (No space left on device)"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_report_to_dev_stdout_is_written_through_the_link() -> None:
    result = subprocess.run([LOGSLEUTH, "diagnose", str(CAFFE), "--oneline", "--report", "/dev/stdout"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and '"schema_version": 1' in result.stdout
    assert os.path.islink("/dev/stdout") or not os.path.lexists("/dev/stdout")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_parse_exits_128_plus_the_signal_and_leaves_no_output(tmp_path: Path, sig, code: int) -> None:
    log = tmp_path / "big.log"
    with open(log, "w") as f:
        for lo in range(0, 2_000_000, 100_000):
            f.write("".join(f"epoch 1 iter {i} loss {1 + 1 / (i + 1):.6f} lr 0.1\n" for i in range(lo, lo + 100_000)))
    out = tmp_path / "out.csv"
    proc = subprocess.Popen([LOGSLEUTH, "parse", str(log), "-o", str(out), "-j", "1"], stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.csv.*.tmp")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the staged output exists: the parse is under way
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code and err.strip() == "logsleuth: interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.log"]


def test_a_zstd_log_cut_in_half_is_an_input_error_not_half_a_verdict(tmp_path: Path) -> None:
    import zstandard

    data = b"".join(b"step=%d loss=%f\n" % (i, 1 / (i + 1)) for i in range(100_000))
    whole = zstandard.ZstdCompressor().compress(data[:len(data) // 2]) + zstandard.ZstdCompressor().compress(
        data[len(data) // 2:])  # two frames, as pzstd writes
    (tmp_path / "ok.log.zst").write_bytes(whole)
    assert len(logsleuth.read_log(tmp_path / "ok.log.zst").frame) == 100_000
    (tmp_path / "cut.log.zst").write_bytes(whole[: len(whole) * 3 // 4])
    with pytest.raises(InputError, match="zstd stream is truncated or corrupt"):
        logsleuth.read_log(tmp_path / "cut.log.zst")


def test_a_26_digit_step_is_no_step_and_no_int64_min(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_text("step=1 loss=0.5\nstep=2 loss=0.4\nstep=12345678901234567890123456 loss=0.3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered in cast" fails the test
        steps = logsleuth.read_log(path).frame["step"].tolist()
    assert steps[:2] == [1, 2] and str(steps[2]) in ("<NA>", "nan", "None")


def test_a_run_folder_is_diagnosed_as_the_audit_reads_it(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "run_x"
    run.mkdir(parents=True)
    (run / "train.log").write_bytes(CAFFE.read_bytes())
    assert logsleuth.diagnose(run).verdict.code == "N201"
    result = CliRunner().invoke(main, ["diagnose", str(tmp_path / "runs"), "--oneline"])
    assert result.exit_code == 1 and result.stdout.startswith("N201")
    (tmp_path / "runs" / "run_y").mkdir()
    (tmp_path / "runs" / "run_y" / "train.log").write_bytes(CAFFE.read_bytes().replace(b"nan", b"0.5"))
    result = CliRunner().invoke(main, ["diagnose", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "2 runs in this folder; `logsleuth audit" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no training log or run artefact here" in CliRunner().invoke(main, ["diagnose", str(empty)]).stderr


def test_a_taken_output_name_prints_the_verdict_and_writes_no_file(tmp_path: Path) -> None:
    taken = tmp_path / "report.html"
    taken.write_text("mine")
    result = CliRunner().invoke(main, ["diagnose", str(CAFFE), "--oneline", "--report", str(tmp_path / "r.json"),
                                       "--html", str(taken)])
    assert result.exit_code == 2 and result.stdout.startswith("N201") and "exists; pass --force" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"] and taken.read_text() == "mine"
