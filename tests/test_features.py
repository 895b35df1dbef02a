"""Features: every real log gives a complete, finite-or-nan row; targeted values on real
logs and on small synthetic logs written here as text; odd inputs never raise."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import logsleuth
from logsleuth.features import (
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    FEATURES,
    SUM_OF_COMPONENTS,
    compute_features,
    feature_vector,
    first_bad_component,
)
from logsleuth.types import COLUMNS, Event, Hparam, RunSeries

from .conftest import FIXTURES, REAL_LOGS, real_log_labels

LABELS = real_log_labels()
IDS = [row["file"] for row in LABELS]
_CACHE: dict[str, RunSeries] = {}


def real(name: str) -> RunSeries:
    if name not in _CACHE:
        _CACHE[name] = logsleuth.read_log(REAL_LOGS / name)
    return _CACHE[name]


def text_log(text: str) -> RunSeries:
    return logsleuth.read_log(io.BytesIO(text.encode()))


def features(runs) -> dict[str, float]:
    """compute_features with its 'a feature failed' warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compute_features(runs)
    assert list(out) == list(FEATURE_NAMES)
    for name, value in out.items():
        assert type(value) is float, name
        assert not math.isinf(value), name
    return out


def caffe(*entries: tuple[int, str], restarts_before: tuple[int, ...] = ()) -> str:
    """Caffe glog lines: (iteration, loss) entries; a restore message before the given indexes."""
    lines = []
    for i, (step, loss) in enumerate(entries):
        if i in restarts_before:
            lines.append("I0425 10:12:49.611122  9167 solver.cpp:228] Restoring previous solver status from "
                         "snap_iter_100.solverstate")
        lines.append(f"I0425 10:12:49.611122  9167 solver.cpp:65] Iteration {step}, loss = {loss}")
        lines.append(f"I0425 10:12:49.611122  9167 solver.cpp:106] Iteration {step}, lr = 0.01")
    return "\n".join(lines) + "\n"


# ---- the schema ------------------------------------------------------------------------

def test_schema_is_documented_and_ordered() -> None:
    assert FEATURE_SCHEMA_VERSION == 5
    assert len(set(FEATURE_NAMES)) == len(FEATURES) >= 45
    for f in FEATURES:
        assert f.name.isidentifier() and f.unit and len(f.doc) > 40, f
    required = {"has_nonfinite", "first_nonfinite_step", "loss_growth_rate", "recurs_same_step",
                "hp_pool_stride_gt_kernel", "hp_max_loss_weight", "loss_zero_with_nan_grad", "sampling_interval"}
    assert required <= set(FEATURE_NAMES)


def test_feature_vector_follows_the_schema_order() -> None:
    row = features(real("caffe_bvlc_361.log"))
    vec = feature_vector(row)
    assert vec.dtype == np.float64 and vec.shape == (len(FEATURES),)
    assert vec[FEATURE_NAMES.index("first_nonfinite_step")] == 220
    partial = feature_vector({"has_nonfinite": 1.0})
    assert partial[0] == 1.0 and np.isnan(partial[1:]).all()


def test_compute_features_rejects_what_is_not_a_run() -> None:
    with pytest.raises(TypeError):
        compute_features([])
    with pytest.raises(TypeError):
        compute_features(["train.log"])  # type: ignore[list-item]


# ---- every real log --------------------------------------------------------------------

@pytest.mark.parametrize("name", IDS)
def test_every_real_log_gives_a_complete_row(name: str) -> None:
    row = features(real(name))
    assert row["n_segments"] >= 1
    first = real(name).first_nonfinite()
    assert row["has_nonfinite"] == float(first is not None)
    assert math.isnan(row["first_nonfinite_is_event"]) == (first is None)
    if first is not None:  # the feature row and the evidence shown to the user agree
        assert row["first_nonfinite_is_event"] == float(first.source == "event")
        assert row["first_nonfinite_step"] == first.step or (first.step is None
                                                              and math.isnan(row["first_nonfinite_step"]))


def test_all_real_logs_together_as_one_job() -> None:
    row = features([real(n) for n in IDS])
    assert row["n_segments"] >= len(IDS) - 2


# ---- targeted values on real logs ------------------------------------------------------

def test_exploding_loss_grows_geometrically() -> None:
    row = features(real("pytorch_deepobjectpose_74.log"))
    assert row["loss_growth_rate"] > 1.0  # ~x18 per logged record
    assert row["loss_growth_rate_per_step"] > 0.01
    assert row["max_loss_over_initial"] > 1e9
    assert row["loss_trend"] > 1 and row["has_nonfinite"] == 0


def test_sudden_nan_shows_no_jump() -> None:
    row = features(real("caffe_bvlc_361.log"))
    assert row["first_nonfinite_step"] == 220
    assert 0.5 < row["jump_ratio"] < 1.5
    assert row["n_logged_before_failure"] == 2
    assert row["first_nonfinite_is_event"] == 0 and row["first_nonfinite_is_grad"] == 0
    assert row["lr_at_failure"] == 0.01 and row["lr_is_zero_at_failure"] == 0
    assert row["sampling_interval"] == 20


def test_hf_hidden_nan_is_seen_through_the_grad_norm() -> None:
    row = features(real("hf_modernbert_233.log"))
    assert row["loss_zero_with_nan_grad"] == 1
    assert row["first_nonfinite_is_grad"] == 1
    assert row["failure_epoch_position"] == pytest.approx(0.53)


def test_megatron_missing_loss_is_counted() -> None:
    row = features(real("megatron_megatrondeepspeed_pr434.log"))
    assert row["loss_missing_events"] == 1
    assert row["first_nonfinite_is_event"] == 1 and row["first_nonfinite_step"] == 9


def test_deepspeed_overflows_and_scale_trajectory() -> None:
    row = features(real("deepspeed_cogvideo_233.log"))
    assert row["n_overflow_events"] == 6
    assert row["loss_scale_final_over_initial"] == -6  # 2**32 attempted -> 2**26
    assert row["loss_scale_min"] == 2 ** 26
    assert row["hp_fp16"] == 1 and row["overflow_after_last_finite"] == 1
    assert row["min_loss_scale_reached"] == 0


def test_loss_scale_printed_as_zero_is_the_floor() -> None:
    assert features(real("fairseq_fairseq_1529.log"))["min_loss_scale_reached"] == 1


def test_component_that_went_nan_is_named() -> None:
    d2 = real("detectron2_detectron2_508.log")  # loss_cls nan, loss_box_reg finite
    assert first_bad_component(d2) == "loss_cls"
    assert features(d2)["first_nonfinite_is_component"] == 1
    assert first_bad_component(real("keras_maskrcnn_1162.log")) is None  # the total went first
    yolo = real("yolov5_yolov5_6907.log")  # all three components at once: nothing singles one out
    assert first_bad_component(yolo) is None
    assert features(yolo)["first_nonfinite_is_component"] == 0


def test_caffe_loss_weight_is_a_header_feature() -> None:
    assert features(real("caffe_updowncaptioner_2.log"))["hp_max_loss_weight"] == 20


def test_lr_zero_at_failure() -> None:
    row = features(real("darknet_alexeyabdarknet_5836.log"))
    assert row["first_nonfinite_step"] == 182 and row["lr_is_zero_at_failure"] == 1


# ---- recurrence: restarts and several files ---------------------------------------------

def test_restarts_failing_at_the_same_iteration_recur() -> None:
    log = caffe((0, 2.3), (100, 1.2), (200, 0.9), (300, "nan"), (100, 1.21), (200, 0.91), (300, "nan"),
                (100, 1.2), (200, 0.9), (300, "-nan"), restarts_before=(4, 7))
    row = features(text_log(log))
    assert row["n_segments"] == 3
    assert row["recurs_same_step"] == 1
    assert row["first_nonfinite_step"] == 300
    assert row["n_logged_before_failure"] == 3
    assert row["descent_before_failure"] == pytest.approx((2.3 - 0.9) / 2.3)


def test_restarts_failing_at_different_iterations_do_not_recur() -> None:
    log = caffe((0, 2.3), (100, 1.2), (200, "nan"), (100, 1.2), (200, 0.9), (300, "nan"), restarts_before=(3,))
    row = features(text_log(log))
    assert row["n_segments"] == 2 and row["recurs_same_step"] == 0


def test_two_files_failing_at_the_same_step_recur() -> None:
    a = text_log(caffe((0, 2.3), (100, 1.2), (200, "nan")))
    b = text_log(caffe((0, 2.2), (100, 1.1), (200, "inf")))
    c = text_log(caffe((0, 2.2), (100, "nan")))
    assert features(a)["recurs_same_step"] == 0
    both = features([a, b])
    assert both["recurs_same_step"] == 1 and both["n_segments"] == 2
    assert features([a, c])["recurs_same_step"] == 0
    assert features([a, b])["first_nonfinite_step"] == 200


def test_isolated_nan_steps_at_a_fixed_period() -> None:
    lines = [f"INFO:tensorflow:global step {s}: loss = {'nan' if s % 100 == 0 else 2.0 - s / 1000} (0.3 sec/step)"
             for s in range(10, 400, 10)]
    row = features(text_log("\n".join(lines)))
    assert row["nan_steps_periodic"] == 1 and row["nonfinite_then_finite"] == 1
    assert row["first_nonfinite_step"] == 100 and row["n_nonfinite_records"] == 3


# ---- curve shapes on synthetic logs ------------------------------------------------------

def test_explosion_before_nan_vs_sudden_nan() -> None:
    exploding = caffe(*[(i * 10, 0.5 * 3 ** i) for i in range(12)], (120, "inf"), (130, "nan"))
    sudden = caffe(*[(i * 10, 2.0 / (1 + i)) for i in range(12)], (120, "nan"))
    x, s = features(text_log(exploding)), features(text_log(sudden))
    assert x["loss_growth_rate"] == pytest.approx(math.log(3), rel=1e-6)
    assert x["loss_growth_rate_per_step"] == pytest.approx(math.log(3) / 10, rel=1e-6)
    assert x["jump_ratio"] > 100 and s["jump_ratio"] < 1
    assert s["loss_growth_rate"] < 0 and s["descent_before_failure"] > 0.8
    assert x["fraction_before_failure"] == pytest.approx(120 / 130)


def test_recovered_spike_and_stalled_run() -> None:
    spiky = caffe(*[(i * 10, 10.0 if i == 8 else 1.0 - i / 100) for i in range(16)])
    flat = caffe(*[(i * 10, 2.30 + (0.01 if i % 2 else 0.0)) for i in range(16)])
    sp, fl = features(text_log(spiky)), features(text_log(flat))
    assert sp["spike_recovered"] == 1 and fl["spike_recovered"] == 0
    assert abs(fl["loss_trend"]) < 0.01 and fl["loss_cv"] < 0.01
    assert fl["has_nonfinite"] == 0 and fl["fraction_before_failure"] == 1


def test_lr_warmup_and_lr_zero_at_failure() -> None:
    lines = [f"I0425 10:12:49.611122  9167 solver.cpp:65] Iteration {s}, loss = {1.0 if s < 40 else 'nan'}\n"
             f"I0425 10:12:49.611122  9167 solver.cpp:106] Iteration {s}, lr = {s / 1000}" for s in range(0, 50, 10)]
    row = features(text_log("\n".join(lines)))
    assert row["in_warmup_at_failure"] == 1 and row["lr_at_failure"] == 0.04 and row["lr_max"] == 0.04
    zero = caffe((0, 2.3), (10, "nan")).replace("lr = 0.01", "lr = 0")
    z = features(text_log(zero))
    assert z["lr_is_zero_at_failure"] == 1 and z["in_warmup_at_failure"] == 0


def test_a_schedule_that_reaches_zero_only_at_the_failure_froze_nothing() -> None:
    lines = [f"I0425 10:12:49.611122  9167 solver.cpp:65] Iteration {s}, loss = {1.0 if s < 40 else 'nan'}\n"
             f"I0425 10:12:49.611122  9167 solver.cpp:106] Iteration {s}, lr = {(40 - s) / 1000}"
             for s in range(0, 50, 10)]
    assert features(text_log("\n".join(lines)))["lr_is_zero_at_failure"] == 0
    lone = caffe((10, "nan")).replace("lr = 0.01", "lr = 0")
    assert math.isnan(features(text_log(lone))["lr_is_zero_at_failure"])


def test_hf_dict_lines_and_training_arguments() -> None:
    log = ("Namespace(lr=0.001, clip_norm=0.0, fp16=True, batch_size=32, warmup_steps=100)\n"
           "{'loss': 1.9, 'grad_norm': 3.1, 'learning_rate': 5e-05, 'epoch': 0.5}\n"
           "{'loss': 0.0, 'grad_norm': nan, 'learning_rate': 5e-05, 'epoch': 0.53}\n")
    row = features(text_log(log))
    assert row["loss_zero_with_nan_grad"] == 1 and row["first_nonfinite_is_grad"] == 1
    assert row["hp_lr"] == 0.001 and row["hp_clipping"] == 0 and row["hp_fp16"] == 1
    assert row["hp_batch_size"] == 32 and math.isnan(row["hp_bf16"])
    assert row["failure_epoch_position"] == pytest.approx(0.53)
    assert row["n_logged_before_failure"] == 1


def test_overflow_skips_that_training_survives_are_not_the_failure() -> None:
    line = ("2020-03-23 11:39:44 | INFO | train_inner | epoch 001:    {s} / 356 loss={v}, nll_loss=8.4, ppl=347.2, "
            "wps=30690.8, ups=0.07, num_updates={s}, lr=0.000175, gnorm=1.2, loss_scale={sc}, train_wall=12, wall=20")
    overflow = "2020-03-23 11:41:18 | INFO | fairseq.trainer | NOTE: overflow detected, setting loss scale to: 64.0"
    log = "\n".join([line.format(s=100, v=9.4, sc=128), overflow, line.format(s=200, v=8.1, sc=64),
                     line.format(s=300, v=7.5, sc=64)])
    row = features(text_log(log))
    assert row["has_nonfinite"] == 1 and row["n_overflow_events"] == 1 and row["first_nonfinite_is_event"] == 1
    assert row["fraction_before_failure"] == 1 and row["n_logged_before_failure"] == 3
    assert row["overflow_after_last_finite"] == 0 and row["loss_scale_final_over_initial"] == -1
    assert row["overflow_rate"] == pytest.approx(1 / 201) and row["hp_fp16"] == 1


def test_keras_epoch_position_from_integer_epochs() -> None:
    row = features(logsleuth.read_log(FIXTURES / "keras" / "glued_terminate_on_nan.log"))
    # `Batch 3` (0-based) of a 4-batch second epoch: step 4 + 3 + 1, the epoch's last batch
    assert row["first_nonfinite_step"] == 8 and row["failure_epoch_position"] == pytest.approx(0.0)


# ---- the header -------------------------------------------------------------------------

CAFFE_HEADER = """I0101 12:00:00.000000  4242 solver.cpp:48] Initializing solver from parameters: 
base_lr: 0.01
lr_policy: "fixed"
clip_gradients: {clip}
max_iter: 1000
I0101 12:00:00.000000  4242 net.cpp:42] Initializing net from parameters: 
name: "LeNet"
layer {{
  name: "data"
  type: "Data"
  data_param {{
    batch_size: 64
    shuffle: true
  }}
}}
layer {{
  name: "pool1"
  type: "Pooling"
  pooling_param {{
    pool: MAX
    kernel_size: {kernel}
    stride: {stride}
  }}
}}
layer {{
  name: "loss"
  type: "SoftmaxWithLoss"
  loss_weight: 2
}}
"""


def test_caffe_header_features() -> None:
    body = caffe((0, 2.3), (100, "nan"))
    bad = features(text_log(CAFFE_HEADER.format(kernel=2, stride=3, clip=10) + body))
    assert bad["hp_pool_stride_gt_kernel"] == 1
    assert bad["hp_lr"] == 0.01 and bad["hp_clipping"] == 1 and bad["hp_batch_size"] == 64
    assert bad["hp_shuffle"] == 1 and bad["hp_max_loss_weight"] == 2
    assert bad["fraction_before_failure"] == pytest.approx(100 / 1000)  # max_iter is the total
    good = features(text_log(CAFFE_HEADER.format(kernel=3, stride=2, clip=-1) + body))
    assert good["hp_pool_stride_gt_kernel"] == 0 and good["hp_clipping"] == 0
    assert math.isnan(features(text_log(body))["hp_pool_stride_gt_kernel"])


# ---- odd inputs never raise ------------------------------------------------------------------

def _series(rows: list[tuple], events: tuple[Event, ...] = (), hparams: dict | None = None) -> RunSeries:
    frame = pd.DataFrame(rows, columns=list(COLUMNS)).astype(
        {"step": "Int64", "value": "float64", "segment": "int64", "rank": "Int64", "epoch": "float64",
         "line": "int64", "metric": "category", "phase": "category"})
    return RunSeries(frame=frame, events=events, hparams=hparams or {}, source="<test>", format="test")


NA = pd.NA
ODD = {
    "empty": _series([]),
    "events_only": _series([], (Event("overflow", None, 1, "OVERFLOW!", {"loss_scale": "x"}),
                                Event("traceback", None, 2, "Traceback"))),
    "steps_all_na": _series([(NA, "loss", v, "train", 0, NA, math.nan, i) for i, v in
                             enumerate([1.0, math.nan, 0.5, math.inf, 2.0], 1)]),
    "one_record": _series([(5, "loss", 1.0, "train", 0, NA, math.nan, 1)]),
    "one_nan": _series([(5, "loss", math.nan, "train", 0, NA, math.nan, 1)]),
    "eval_only": _series([(5, "eval_loss", math.nan, "eval", 0, NA, 1.0, 1),
                          (9, "eval_loss", 1.0, "eval", 0, NA, 2.0, 2)]),
    "negative_and_zero": _series([(s, "loss", v, "train", 0, NA, math.nan, s + 1) for s, v in
                                  enumerate([0.0, -1.0, 0.0, -3.0, 1e308, -1e308, 0.0])]),
    "ranks": _series([(s, "loss", 1.0 / (s + 1), "train", 0, r, math.nan, 2 * s + r + 1)
                      for s in range(5) for r in (0, 1)] + [(5, "grad_norm", math.inf, "train", 0, 1, math.nan, 20)]),
    "components_no_steps": _series([(NA, "loss_a", math.nan, "train", 0, NA, math.nan, 1),
                                    (NA, "loss_b", 1.0, "train", 0, NA, math.nan, 1)]),
    "weird_hparams": _series([(1, "lr", 0.1, "train", 0, NA, 0.0, 1), (1, "loss", 1.0, "train", 0, NA, 0.0, 1)],
                             hparams={"lr": Hparam([], 1), "clip_norm": Hparam(None, 1), "fp16": Hparam("O0", 1),
                                      "bf16": Hparam({"a": 1}, 1), "layer.p.type": Hparam("Pooling", 1),
                                      "layer.p.kernel_size": Hparam("x", 1), "loss_weight.l": Hparam("2", 1),
                                      "max_iter": Hparam(-1, 1), "precision": Hparam("bf16-mixed", 1)}),
}


@pytest.mark.parametrize("name", list(ODD))
def test_odd_series_never_raise(name: str) -> None:
    row = features(ODD[name])
    assert row["n_train_records"] >= 0


def test_odd_series_values() -> None:
    assert features(ODD["empty"])["n_segments"] == 0
    assert features(ODD["events_only"])["has_nonfinite"] == 1
    na = features(ODD["steps_all_na"])
    assert math.isnan(na["first_nonfinite_step"]) and na["nonfinite_then_finite"] == 1
    assert na["fraction_before_failure"] == pytest.approx(1 / 5)
    assert features(ODD["eval_only"])["first_nonfinite_is_eval"] == 1
    assert features(ODD["ranks"])["loss_growth_rate"] < 0
    assert first_bad_component(ODD["components_no_steps"]) == "loss_a"
    weird = features(ODD["weird_hparams"])
    assert weird["hp_clipping"] == 0 and weird["hp_fp16"] == 0 and weird["hp_bf16"] == 1
    assert weird["hp_lr"] == 0.1 and weird["hp_max_loss_weight"] == 2
    assert math.isnan(weird["hp_pool_stride_gt_kernel"])  # a pooling layer, but no readable kernel


@pytest.mark.parametrize("data", [b"garbage", b"\x00\xff\xfe" * 50, b"loss = nan\n" * 3, b"Iteration 5, loss = \n",
                                  b"{'loss': nan}\n{'loss': inf}\n", b"step 1 loss 1e999 grad_norm -inf\n"])
def test_garbage_logs_never_raise(data: bytes) -> None:
    features(logsleuth.read_log(io.BytesIO(data)))


def test_sum_of_components_is_the_primary_loss_without_a_total() -> None:
    from logsleuth.features import _Run

    run = _Run(real("yolov5_yolov5_6907.log"))
    assert run.loss_name == SUM_OF_COMPONENTS and len(run.loss) == 5
