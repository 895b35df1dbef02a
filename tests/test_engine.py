"""The engine API: one frame schema every producer passes, one switch for the compiled
paths, formats that declare their own facts, and a format added as one module."""

from __future__ import annotations

import ast
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import logsleuth
from logsleuth import registry
from logsleuth.api import _replayable
from logsleuth.artifacts import read_artifact
from logsleuth.audit.merge import merge_views
from logsleuth.catalog.frameworks import fix_chain, framework_for
from logsleuth.engine import Batch, Format, Rule, fixed, native, schema
from logsleuth.features import _merge
from logsleuth.parsers import BUILTIN
from logsleuth.types import RunSeries
from logsleuth.userformat import load_format_file

from .conftest import FIXTURES, REPO

SAMPLES = sorted((REPO / "sample_logs").glob("*.log"))


# ---- one frame schema ------------------------------------------------------------------

def _artefacts(tmp_path: Path) -> list[Path]:
    """One of each run artefact kind the readers know (TensorBoard aside: test_artifacts)."""
    state = tmp_path / "hf" / "trainer_state.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"global_step": 20, "log_history": [
        {"epoch": 0.5, "loss": 2.3, "learning_rate": 5e-05, "grad_norm": 1.5, "step": 10},
        {"epoch": 1.0, "loss": math.nan, "learning_rate": 4e-05, "step": 20},
        {"epoch": 1.0, "eval_loss": math.inf, "step": 20}]}))
    metrics = tmp_path / "pl" / "metrics.csv"
    metrics.parent.mkdir()
    metrics.write_text("epoch,step,train_loss,val_loss\n0,9,0.9,\n0,19,nan,\n0,19,,0.8\n")
    run = tmp_path / "mlruns" / "0" / "4f2a"
    (run / "metrics").mkdir(parents=True)
    (run / "meta.yaml").write_text("run_id: 4f2a\nstatus: 4\n")
    (run / "metrics" / "loss").write_text("1000 0.5 0\n1010 nan 1\n")
    return [state, metrics, run / "metrics" / "loss"]


def test_every_producer_hands_over_the_one_frame_schema(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(registry, "_extra", [])
    frames = {}
    for path in SAMPLES + sorted((FIXTURES / "pytorch").glob("*.log"))[:3]:
        frames[path.name] = logsleuth.read_log(path).frame  # text parsers
    for path in _artefacts(tmp_path):
        frames[str(path.relative_to(tmp_path))] = read_artifact(path).frame  # artefact readers
    user = load_format_file(REPO / "sample_logs" / "custom_format.toml")
    for fmt in user:
        registry.register(fmt)
    frames["user format"] = logsleuth.read_log(REPO / "sample_logs" / "custom_format.log", format=user[0].name).frame
    caffe = [logsleuth.read_log(p) for p in SAMPLES if p.name.startswith("caffe")][:2]
    frames["merged attempts"] = merge_views(caffe, "job").frame
    frames["combined runs"] = _merge(caffe).frame
    frames["empty log"] = logsleuth.read_log(io.BytesIO(b"nothing here\n")).frame
    assert all(len(f) for name, f in frames.items() if name != "empty log")
    assert {name: schema.problems(f) for name, f in frames.items()} == {name: [] for name in frames}


def test_a_frame_of_another_shape_is_refused_when_a_series_is_built() -> None:
    good = schema.empty_frame()
    assert schema.validate(good) is good
    cases = {
        "columns": good.drop(columns=["rank"]),
        "dtype": good.astype({"step": "float64"}),
        "phase": schema.conform(pd.DataFrame({"step": [1], "metric": ["loss"], "value": [1.0], "phase": ["bar"],
                                              "segment": [0], "rank": [pd.NA], "epoch": [math.nan], "line": [1]})),
    }
    for what, frame in cases.items():
        with pytest.raises(schema.SchemaError, match="not a logsleuth frame"):
            RunSeries(frame=frame, events=(), hparams={}, source="<test>", format="test")
        assert schema.problems(frame), what


# ---- one switch for the compiled paths -------------------------------------------------

def test_one_switch_turns_every_compiled_path_off() -> None:
    if not native.available():
        pytest.skip("the C extension is not built")
    assert native.compiled() is not None
    with native.disabled():
        assert native.compiled() is None
    assert native.compiled() is not None
    code = "from logsleuth.engine import native; print(native.compiled() is None, native.available())"
    env = {**os.environ, "LOGSLEUTH_NATIVE": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]


def test_only_the_engine_reads_the_extension() -> None:
    """``_native`` is imported in one place; every other module asks ``native.compiled()``."""
    importers = []
    for path in [*(REPO / "logsleuth").rglob("*.py"), *(REPO / "parsers").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and any(a.name == "_native" for a in node.names):
                importers.append(path.relative_to(REPO).as_posix())
    assert importers == ["logsleuth/engine/native.py"]


# ---- formats are data over the engine --------------------------------------------------

def test_formats_import_only_the_engine_and_each_other() -> None:
    allowed = {"logsleuth.engine", "logsleuth.parsers"}
    for path in (REPO / "parsers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                target = ".".join(["logsleuth", "parsers"][: 3 - node.level] + ([node.module] if node.module else []))
                assert any(target == a or target.startswith(a + ".") for a in allowed), (path.name, target)


def test_formats_declare_their_framework_and_whether_replay_applies() -> None:
    by_name = {f.name: f for f in BUILTIN}
    assert by_name["maskrcnn_benchmark"].framework == "detectron2" and framework_for("maskrcnn_benchmark") == "detectron2"
    assert framework_for("turicreate") == "generic" and framework_for("caffe") == "caffe"
    assert {f.name for f in BUILTIN if f.replayable} == {
        "pytorch", "hf_trainer", "lightning", "detectron2", "maskrcnn_benchmark", "mmcv", "yolo", "fairseq",
        "megatron", "deepspeed"}
    assert _replayable("hf_trainer_state") and not _replayable("caffe") and not _replayable("keras_csv")


def test_a_new_format_is_one_module_over_the_engine(tmp_path: Path, monkeypatch) -> None:
    """What docs/ADDING_A_FORMAT.md says: a module holding a Format, nothing else touched."""
    module = tmp_path / "acme_format.py"
    module.write_text(
        "from logsleuth.engine import Format, Rule, fixed\n"
        "FORMAT = Format(name='acme_test', title='ACME trainer', framework='pytorch', replayable=True,\n"
        "    samples=('ACME step 3 loss=0.52',), sniff=(r'^ACME step \\d+ loss=',),\n"
        "    rules=(Rule('acme-loss', b'ACME step ', r'ACME step (\\d+) loss=({NUM})', fixed('loss')),))\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import acme_format  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    monkeypatch.setattr(registry, "_extra", [])
    registry.register(acme_format.FORMAT)
    log = io.BytesIO(b"".join(b"ACME step %d loss=%s\n" % (i, b"%.3f" % (1 / i) if i < 30 else b"nan")
                              for i in range(1, 31)))
    series = logsleuth.read_log(log)
    assert series.format == "acme_test" and series.first_nonfinite().step == 30
    assert fix_chain("acme_test") == ("pytorch",) and _replayable("acme_test")


def test_the_engine_builds_a_rule_a_user_could_write() -> None:
    rule = Rule("x", b"it ", r"it (\d+) loss ({NUM})", fixed("loss"))
    out = Batch()
    rule.apply(b"it 7 loss nan\n", out)
    assert [(r[1], r[2], r[3]) for r in out.records] == [(7, "loss", b"nan")]
    assert isinstance(Format(name="t", title="t", samples=(), sniff=(), rules=(rule,)).rules[0], Rule)


def test_the_log_format_option_has_one_name_on_every_command() -> None:
    from click.testing import CliRunner

    from logsleuth.cli import main

    log = str(REPO / "sample_logs" / "caffe_sudden_nan.log")
    runner = CliRunner()
    new = runner.invoke(main, ["parse", "--log-format", "caffe", log])
    old = runner.invoke(main, ["parse", "--format", "caffe", log])
    assert new.exit_code == old.exit_code == 0 and new.output == old.output and "nan" in new.output
    for command in ("parse", "diagnose", "watch"):
        assert "--log-format" in runner.invoke(main, [command, "--help"]).output, command
