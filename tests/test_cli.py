"""The command line: outputs, exit codes, one-line errors, nothing overwritten."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from logsleuth.cli import main

from .conftest import REAL_LOGS

LOG = str(REAL_LOGS / "caffe_bvlc_1105.log")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_parse_csv_to_stdout_has_the_columns_and_nan() -> None:
    result = run("parse", LOG)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "step,metric,value,phase,segment,rank,epoch,line"
    assert "200,loss,nan,train,0,,,14" in lines


def test_parse_jsonl_is_strict_json_with_string_nan(tmp_path) -> None:
    out = tmp_path / "s.jsonl"
    assert run("parse", LOG, "-o", str(out)).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]  # strict: no bare NaN
    assert {"step": 200, "metric": "loss", "value": "nan"}.items() <= rows[4].items()


def test_parse_jsonl_keeps_every_digit(tmp_path) -> None:
    log = tmp_path / "hf.log"
    log.write_text("{'loss': 2.2798, 'grad_norm': 1e-12, 'learning_rate': 4.9999921798704865e-05, 'epoch': 0.01}\n")
    out = tmp_path / "s.jsonl"
    assert run("parse", str(log), "-o", str(out)).exit_code == 0
    values = {row["metric"]: row["value"] for row in map(json.loads, out.read_text().splitlines())}
    assert values == {"loss": 2.2798, "grad_norm": 1e-12, "lr": 4.9999921798704865e-05}


def test_parse_parquet_keeps_nan(tmp_path) -> None:
    out = tmp_path / "s.parquet"
    assert run("parse", LOG, "-o", str(out)).exit_code == 0
    frame = pd.read_parquet(out)
    assert frame["value"].isna().sum() == 3 and len(frame) == 10


def test_existing_output_is_not_overwritten_without_force(tmp_path) -> None:
    out = tmp_path / "keep.csv"
    out.write_text("precious")
    result = run("parse", LOG, "-o", str(out))
    assert result.exit_code == 2 and out.read_text() == "precious"
    assert run("parse", LOG, "-o", str(out), "--force").exit_code == 0


@pytest.mark.parametrize("args", [("/no/such.log",), (LOG, "--log-format", "nope"), (LOG, "/no/such.log")])
def test_a_failed_parse_leaves_no_output_and_prints_no_header(tmp_path, args) -> None:
    out = tmp_path / "out.csv"
    result = run("parse", *args, "-o", str(out))
    assert result.exit_code == 2 and not out.exists() and list(tmp_path.iterdir()) == []
    if args != (LOG, "/no/such.log"):  # there, the first log is parsed before the second fails
        assert "step,metric" not in run("parse", *args).stdout


def test_parse_output_replaces_a_symlink_instead_of_writing_through_it(tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    assert run("parse", LOG, "-o", str(link), "--force").exit_code == 0
    assert victim.read_text() == "precious" and not link.is_symlink()
    assert link.read_text().startswith("step,metric")


def test_input_errors_are_one_line_and_exit_2(tmp_path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    for args in (["parse", str(tmp_path / "nope.log")], ["parse", str(tmp_path)], ["parse", str(empty)],
                 ["parse", LOG, "--format", "nope"], ["parse", LOG, "-o", str(tmp_path / "x.unknown")]):
        result = run(*args)
        assert result.exit_code == 2, args
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("logsleuth: error:"), result.stderr
        assert "Traceback" not in result.output


def test_verbose_shows_the_traceback(tmp_path) -> None:
    result = run("-v", "parse", str(tmp_path / "nope.log"))
    assert result.exit_code == 2 and "Traceback" in result.stderr


def test_formats_lists_every_format_with_a_sample() -> None:
    result = run("formats")
    assert result.exit_code == 0
    for name in ("caffe", "tensorflow", "keras", "hf_trainer", "fairseq", "megatron", "generic"):
        assert name in result.stdout
    assert "e.g. I0425" in result.stdout


def test_stdin_dash() -> None:
    data = (REAL_LOGS / "tf_hashtagprediction_6.log").read_bytes()
    result = CliRunner().invoke(main, ["parse", "-"], input=data)
    assert result.exit_code == 0 and "2458,loss,nan" in result.stdout
