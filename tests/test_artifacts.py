"""Run artefacts: event files against TensorBoard's own reader (the oracle), trainer_state,
Lightning/Keras CSV, MLflow file store, and dispatch by content."""

from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from logsleuth.api import diagnose, read_log
from logsleuth.artifacts import artifact_kind, read_artifact, read_csv_metrics, read_mlflow, read_tfevents
from logsleuth.artifacts._crc32c import crc32c, crc32c_many, mask
from logsleuth.artifacts.tfevents import is_event_file, scan_event_file
from logsleuth.errors import InputError

from .conftest import REAL_LOGS

tb = pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing import event_file_loader  # noqa: E402
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2  # noqa: E402
from tensorboard.plugins.histogram import summary_v2 as histogram_summary  # noqa: E402
from tensorboard.plugins.scalar import summary_v2 as scalar_summary  # noqa: E402
from tensorboard.plugins.text import summary_v2 as text_summary  # noqa: E402
from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

NONFINITE = {3: math.nan, 7: math.inf, 8: -math.inf}


# ---- writing real event files with TensorBoard's writer ----------------------------------

def _write_events(logdir: Path, events: list[event_pb2.Event]) -> Path:
    writer = EventFileWriter(str(logdir), max_queue_size=len(events) + 10, flush_secs=3600)
    for ev in events:
        writer.add_event(ev)
    writer.close()
    (path,) = [p for p in logdir.iterdir() if "tfevents" in p.name]
    return path


def _simple(step: int, **values: float) -> event_pb2.Event:
    vals = [summary_pb2.Summary.Value(tag=tag.replace("__", "/"), simple_value=v) for tag, v in values.items()]
    return event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary_pb2.Summary(value=vals))


def _tf2_scalar(step: int, tag: str, value: float, first: bool) -> event_pb2.Event:
    """What TF2/Keras write: a float tensor, plugin metadata only on a tag's first event."""
    summary = scalar_summary.scalar_pb(tag, value)
    if not first:
        summary.value[0].ClearField("metadata")
    return event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary)


def _tensor_event(step: int, tag: str, value: float, dtype: str) -> event_pb2.Event:
    """A scalar as ``tensor_content`` bytes (the C++ summary writer's way)."""
    np_type, tf_type = {"float": ("<f4", 1), "double": ("<f8", 2)}[dtype]
    tensor = tensor_pb2.TensorProto(dtype=tf_type, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                                    tensor_content=np.array(value, dtype=np_type).tobytes())
    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    val = summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=meta)
    return event_pb2.Event(wall_time=1.7e9 + step, step=step, summary=summary_pb2.Summary(value=[val]))


def _loss(step: int) -> float:
    return NONFINITE.get(step, 2.0 * math.exp(-step / 50))


# ---- the oracle --------------------------------------------------------------------------

def oracle_points(path: Path) -> list[tuple[int, str, float]]:
    """Every scalar point as TensorBoard's own loader sees it (no sampling)."""
    points, plugins = [], {}
    for ev in event_file_loader.EventFileLoader(str(path)).Load():
        for v in ev.summary.value:
            if v.metadata.plugin_data.plugin_name:
                plugins.setdefault(v.tag, v.metadata.plugin_data.plugin_name)
            if plugins.get(v.tag) != "scalars":
                continue
            arr = tensor_util.make_ndarray(v.tensor)
            points.append((ev.step, v.tag, float(arr.item())))
    return points


def our_points(path: Path, verify: bool = False) -> list[tuple[int, str, float]]:
    ef, buf = scan_event_file(str(path), verify=verify)
    rec, tag, val = ef.values(buf)
    return [(ef.steps[r], ef.tags[t], v) for r, t, v in zip(rec.tolist(), tag.tolist(), val.tolist())]


def same_points(a: list[tuple[int, str, float]], b: list[tuple[int, str, float]]) -> bool:
    def key(p: tuple[int, str, float]) -> tuple[int, str, str]:
        return p[0], p[1], repr(p[2])  # nan == nan, -inf != inf

    return [key(p) for p in a] == [key(p) for p in b]


# ---- event files --------------------------------------------------------------------------

def test_simple_value_scalars_match_the_oracle_with_nan_and_inf(tmp_path: Path) -> None:
    steps = [0, 1, 2, 3, 7, 8, 200, 70_000, 2**40]  # step 0 (omitted on the wire), multi-byte varints
    events = [_simple(s, train__loss=_loss(s), train__lr=1e-3) for s in steps]
    events.insert(4, _simple(5, **{"eval__loss": 1.5}))
    path = _write_events(tmp_path, events)
    expected = oracle_points(path)
    assert len(expected) == 2 * len(steps) + 1
    assert same_points(our_points(path), expected)
    series = read_tfevents(str(path))
    f = series.frame
    assert len(f) == len(expected)
    loss = f[f["metric"] == "loss"]
    assert loss["step"].tolist() == steps
    assert [repr(v) for v in loss["value"]][3:6] == ["nan", "inf", "-inf"]
    assert f.loc[f["metric"] == "eval_loss", "phase"].tolist() == ["eval"]
    assert set(f["metric"].astype(str)) == {"loss", "lr", "eval_loss"}
    first_nan_line = int(loss[loss["step"] == 3]["line"].iloc[0])
    assert "train/loss=nan" in series.texts[first_nan_line]


def test_tf2_tensor_scalars_match_the_oracle(tmp_path: Path) -> None:
    events = [_tf2_scalar(s, "epoch_loss", _loss(s), first=s == 0) for s in range(12)]
    events += [_tensor_event(s, "val/acc", 0.5 + s / 100, "float") for s in range(12, 15)]
    events += [_tensor_event(s, "grad_norm", 1e300 if s < 17 else math.inf, "double") for s in range(15, 18)]
    path = _write_events(tmp_path, events)
    expected = oracle_points(path)
    assert len(expected) == 18
    assert same_points(our_points(path), expected)
    f = read_tfevents(str(path)).frame
    assert f.loc[f["metric"] == "loss", "value"].map(repr).tolist()[3] == "nan"  # Keras epoch_loss -> loss
    assert f.loc[f["metric"] == "grad_norm", "value"].tolist()[:2] == [1e300, 1e300]  # double kept in double
    assert set(f.loc[f["metric"] == "eval_acc", "phase"]) == {"eval"}


def test_histograms_text_and_images_are_not_scalars(tmp_path: Path) -> None:
    events = []
    for s in range(5):
        events.append(_simple(s, loss=_loss(s)))
        events.append(event_pb2.Event(step=s, wall_time=1.7e9 + s,
                                      summary=histogram_summary.histogram_pb("weights", np.arange(10.0) * s)))
        events.append(event_pb2.Event(step=s, wall_time=1.7e9 + s, summary=text_summary.text_pb("note", f"s{s}")))
    path = _write_events(tmp_path, events)
    ours = our_points(path)
    assert same_points(ours, oracle_points(path))
    assert {tag for _, tag, _ in ours} == {"loss"}


def test_truncated_tail_of_a_crashed_writer(tmp_path: Path) -> None:
    path = _write_events(tmp_path, [_simple(s, loss=_loss(s)) for s in range(50)])
    data = path.read_bytes()
    path.write_bytes(data[:-9])  # the last record cut inside its data
    expected = oracle_points(path)
    assert len(expected) == 49
    assert same_points(our_points(path), expected)
    series = read_tfevents(str(path))
    assert len(series.frame) == 49
    assert any("truncated" in note for note in series.notes)
    d = diagnose(series)
    assert any("truncated" in w for w in d.warnings)


def test_crc_verification_skips_a_damaged_record(tmp_path: Path) -> None:
    path = _write_events(tmp_path, [_simple(s, loss=float(s)) for s in range(20)])
    assert same_points(our_points(path, verify=True), oracle_points(path))
    data = bytearray(path.read_bytes())
    offsets, off = [], 0
    while off < len(data):
        (length,) = struct.unpack_from("<Q", data, off)
        offsets.append(off)
        off += 16 + length
    (length,) = struct.unpack_from("<Q", data, offsets[5])
    data[offsets[5] + 12 + length - 3] ^= 0xFF  # a byte of the float of record 6 (step 4)
    path.write_bytes(bytes(data))
    assert len(our_points(path)) == 20  # not verified: read as written
    checked = our_points(path, verify=True)
    assert [p[0] for p in checked] == [s for s in range(20) if s != 4]
    ef, _ = scan_event_file(str(path), verify=True)
    assert ef.crc_failures == 1


def test_a_damaged_length_field_is_skipped_and_the_nan_after_it_read(tmp_path: Path) -> None:
    values = [2.0 * 0.99 ** s for s in range(200)]
    values[150] = math.nan
    path = _write_events(tmp_path, [_simple(s, loss=v) for s, v in enumerate(values)])
    data = bytearray(path.read_bytes())
    offsets, off = [], 0
    while off < len(data):
        offsets.append(off)
        off += 16 + struct.unpack_from("<Q", data, off)[0]
    struct.pack_into("<Q", data, offsets[51], 1 << 60)  # record 51's length: absurd
    path.write_bytes(bytes(data))
    series = read_tfevents(str(path))
    steps = sorted(int(s) for s in series.frame["step"])
    assert steps == [s for s in range(200) if s != 50]  # record 51 (step 50: the first is the file version)
    assert any("damaged record length at byte" in note for note in series.notes)
    assert not any("truncated" in note for note in series.notes)
    d = diagnose(series)
    assert d.first_nonfinite is not None and d.first_nonfinite.step == 150 and d.verdict.code != "H001"


def test_crc32c_matches_tensorboard() -> None:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c as tb_crc32c
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    rng = random.Random(7)
    blobs = [bytes(rng.getrandbits(8) for _ in range(n)) for n in (0, 1, 8, 33, 64, 200, 3000)]
    assert [crc32c(b) for b in blobs] == [tb_crc32c(b) for b in blobs]
    buf = b"".join(blobs)
    lengths = np.array([len(b) for b in blobs])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    assert crc32c_many(buf, starts, lengths).tolist() == [tb_crc32c(b) for b in blobs]
    assert [int(mask(crc32c(b))) for b in blobs] == [masked_crc32c(b) for b in blobs]


def test_torch_writer_scalars_old_and_new_style(tmp_path: Path) -> None:
    tensorboard_writer = pytest.importorskip("torch.utils.tensorboard")
    writer = tensorboard_writer.SummaryWriter(str(tmp_path))
    for step in range(10):
        writer.add_scalar("Loss/train", _loss(step), step)
        writer.add_scalar("Loss/test", _loss(step) + 0.1, step, new_style=True)
        writer.add_scalar("lr", 1e-3, step, new_style=True, double_precision=True)
    writer.close()
    (path,) = [p for p in tmp_path.iterdir() if "tfevents" in p.name]
    expected = oracle_points(path)
    assert len(expected) == 30
    assert same_points(our_points(path), expected)
    f = read_artifact(path).frame
    assert set(f["metric"].astype(str)) == {"loss", "eval_loss", "lr"}
    assert math.isnan(f.loc[(f["metric"] == "loss") & (f["step"] == 3), "value"].iloc[0])


def test_keras_train_and_validation_dirs_are_one_run(tmp_path: Path) -> None:
    _write_events(tmp_path / "train", [_tf2_scalar(e, "epoch_loss", _loss(e), e == 0) for e in range(5)])
    _write_events(tmp_path / "validation", [_tf2_scalar(e, "epoch_loss", 0.9, e == 0) for e in range(5)])
    series = read_artifact(tmp_path)
    f = series.frame
    assert sorted(f["metric"].astype(str).unique()) == ["eval_loss", "loss"]
    assert f.loc[f["metric"] == "eval_loss", "phase"].unique().tolist() == ["eval"]
    assert f["line"].is_monotonic_increasing and len(f) == 10
    assert (f.loc[f["metric"] == "loss", "epoch"] == f.loc[f["metric"] == "loss", "step"].astype(float)).all()


def test_event_series_diagnoses_like_a_log(tmp_path: Path) -> None:
    events = [_simple(s, loss=2.0 * math.exp(-s / 300) if s < 600 else math.nan) for s in range(0, 700, 10)]
    series = read_artifact(_write_events(tmp_path, events))
    d = diagnose(series)
    assert d.first_nonfinite is not None and d.first_nonfinite.step == 600
    assert d.failed


def test_frame_dtypes_match_read_log(tmp_path: Path) -> None:
    reference = read_log(REAL_LOGS / "caffe_bvlc_361.log").frame.dtypes
    path = _write_events(tmp_path, [_simple(s, loss=_loss(s)) for s in range(5)])
    for frame in (read_artifact(path).frame, read_artifact(_write_state(tmp_path)).frame):
        assert list(frame.columns) == list(reference.index)
        for col in frame.columns:
            assert str(frame[col].dtype).split("(")[0] == str(reference[col]).split("(")[0], col


def test_sniffing_event_files_by_framing(tmp_path: Path) -> None:
    path = _write_events(tmp_path, [_simple(1, loss=1.0)])
    renamed = tmp_path / "scalars.bin"
    renamed.write_bytes(path.read_bytes())
    assert is_event_file(str(renamed)) and artifact_kind(str(renamed)) == "tfevents"
    assert not is_event_file(str(REAL_LOGS / "caffe_bvlc_361.log"))


# ---- trainer_state.json ------------------------------------------------------------------

def _write_state(tmp_path: Path) -> Path:
    path = tmp_path / "trainer_state.json"
    state = {"global_step": 30, "max_steps": 30, "train_batch_size": 8, "log_history": [
        {"epoch": 0.33, "grad_norm": 1.5, "learning_rate": 5e-05, "loss": 2.3, "step": 10},
        {"epoch": 0.66, "grad_norm": math.nan, "learning_rate": 4e-05, "loss": 0.0, "step": 20},
        {"epoch": 0.66, "eval_loss": math.inf, "eval_runtime": 1.2, "step": 20},
        {"epoch": 1.0, "grad_norm": None, "loss": 1.9, "step": 30},
        {"epoch": 1.0, "total_flos": 1e12, "train_loss": 1.1, "train_runtime": 30.0, "step": 30}]}
    path.write_text(json.dumps(state))  # NaN / Infinity, as Python's json writes them
    return path


def test_trainer_state_log_history(tmp_path: Path) -> None:
    series = read_artifact(_write_state(tmp_path))
    f = series.frame
    assert series.format == "hf_trainer_state"
    rows = list(zip(f["line"], f["step"], f["metric"].astype(str), f["value"].map(repr), f["phase"].astype(str)))
    assert rows == [(1, 10, "grad_norm", "1.5", "train"), (1, 10, "lr", "5e-05", "train"),
                    (1, 10, "loss", "2.3", "train"), (2, 20, "grad_norm", "nan", "train"),
                    (2, 20, "lr", "4e-05", "train"), (2, 20, "loss", "0.0", "train"),
                    (3, 20, "eval_loss", "inf", "eval"), (4, 30, "loss", "1.9", "train"),
                    (5, 30, "train_loss_avg", "1.1", "train")]
    assert series.texts[2].startswith("log_history[1]: ") and "NaN" in series.texts[2]
    assert series.hparams["train_batch_size"].value == 8
    d = diagnose(series)
    assert d.first_nonfinite is not None and (d.first_nonfinite.step, d.first_nonfinite.metric) == (20, "grad_norm")


def test_trainer_state_that_is_not_one(tmp_path: Path) -> None:
    bad = tmp_path / "trainer_state.json"
    bad.write_text('{"log_history": [1, 2')
    with pytest.raises(InputError, match="not valid JSON"):
        read_artifact(bad)


# ---- CSV: Lightning and Keras ---------------------------------------------------------------

def test_lightning_metrics_csv(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train_loss_step,val_loss,train_loss_epoch,lr-Adam\n"
                    "0,9,0.9,,,0.001\n0,19,nan,,,0.001\n0,19,,0.8,,\n0,19,,,0.85,\n1,29,0.7,,,\n")
    series = read_artifact(path)
    f = series.frame
    assert series.format == "lightning_csv"
    got = list(zip(f["line"], f["step"], f["metric"].astype(str), f["value"].map(repr), f["epoch"]))
    assert got == [(2, 9, "loss", "0.9", 0.0), (2, 9, "lr", "0.001", 0.0), (3, 19, "loss", "nan", 0.0),
                   (3, 19, "lr", "0.001", 0.0), (4, 19, "eval_loss", "0.8", 0.0),
                   (5, 19, "train_loss_epoch_avg", "0.85", 0.0), (6, 29, "loss", "0.7", 1.0)]
    assert series.texts == {3: "0,19,nan,,,0.001"}


def test_keras_csvlogger_restart_and_spellings(tmp_path: Path) -> None:
    path = tmp_path / "training.log"  # CSVLogger's usual name: told by content, not by name
    path.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,0.9,0.6,0.8\n1,0.6,-nan,oops,1.#INF\n"
                    "0,0.5,0.95,0.6,0.8\n1,0.55,0.7,0.6,0.75\n")
    assert artifact_kind(str(path)) == "keras_csv"
    series = read_csv_metrics(str(path))
    f = series.frame
    loss = f[f["metric"] == "loss"]
    assert loss["step"].tolist() == [0, 1, 0, 1] and loss["segment"].tolist() == [0, 0, 1, 1]
    assert math.isnan(loss["value"].iloc[1])
    assert f.loc[(f["metric"] == "eval_loss") & (f["line"] == 3), "value"].iloc[0] == math.inf
    assert series.unparsed == 1 and "oops" in series.unparsed_examples[0][1]
    assert "eval_accuracy" in set(f["metric"].astype(str))


# ---- MLflow ---------------------------------------------------------------------------------

def test_mlflow_file_store_run(tmp_path: Path) -> None:
    run = tmp_path / "mlruns" / "0" / "4f2a"
    (run / "metrics" / "train").mkdir(parents=True)
    (run / "params").mkdir()
    (run / "meta.yaml").write_text("run_id: 4f2a\nstatus: 4\n")
    (run / "metrics" / "train" / "loss").write_text("1000 0.5 0\n1010 0.4 1\n1020 nan 2\n")
    (run / "metrics" / "lr").write_text("1000 0.001 0\n1010 0.001 1\n")
    (run / "params" / "learning_rate").write_text("0.001")
    series = read_mlflow(str(run / "metrics" / "lr"))
    f = series.frame
    assert series.source == str(run) and series.format == "mlflow"
    assert list(zip(f["metric"].astype(str), f["step"], f["line"])) == [
        ("lr", 0, 1), ("loss", 0, 2), ("lr", 1, 3), ("loss", 1, 4), ("loss", 2, 5)]
    assert series.texts[5] == "metrics/train/loss line 3: 1020 nan 2"
    assert series.hparams["learning_rate"].value == 0.001
    assert [e.kind for e in series.events] == ["error"]
    assert read_artifact(run).frame.equals(f)


def test_read_artifact_refuses_what_it_does_not_know(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a run artefact"):
        read_artifact(REAL_LOGS / "caffe_bvlc_361.log")
    with pytest.raises(InputError, match="no such file"):
        read_artifact(tmp_path / "missing")
    with pytest.raises(InputError, match="without event files"):
        read_artifact(tmp_path)


def test_damaged_event_files_never_crash_the_reader(tmp_path: Path) -> None:
    good = _write_events(tmp_path / "good", [_simple(s, loss=_loss(s), lr=1e-3) for s in range(300)]).read_bytes()
    rng = random.Random(11)
    damaged = tmp_path / "events.out.tfevents.damaged"
    for _trial in range(40):
        data = bytearray(good)
        for _ in range(rng.randint(1, 30)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        damaged.write_bytes(bytes(data[: rng.randrange(len(data) // 2, len(data) + 1)]))
        for verify in (False, True):
            try:
                series = read_tfevents(str(damaged), verify=verify)
            except InputError:
                continue
            assert len(series.frame) <= 600 and series.frame["line"].is_monotonic_increasing


def test_diagnose_command_reads_artefacts(tmp_path: Path) -> None:
    """`logsleuth diagnose` takes what `audit` takes: trainer_state.json, event files, run dirs."""
    from click.testing import CliRunner

    from logsleuth.cli import main

    result = CliRunner().invoke(main, ["diagnose", str(_write_state(tmp_path)), "--format", "json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["input"][0]["format"] == "hf_trainer_state"
    assert doc["first_nonfinite"]["step"] == 20
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    result = CliRunner().invoke(main, ["diagnose", str(empty)])
    assert result.exit_code == 2 and "no training log or run artefact here" in result.output
