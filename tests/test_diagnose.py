"""Diagnosis per signature, on real-looking logs in several formats: code, step, top cause;
the JSON schema; CLI exit codes; the library entry point."""

from __future__ import annotations

import json
import math
import random

import pytest
from click.testing import CliRunner

import logsleuth
from logsleuth.api import diagnose
from logsleuth.catalog import load_catalog
from logsleuth.cli import main
from logsleuth.explain import EVIDENCE_RULES

from .conftest import REAL_LOGS

G = "I0523 10:13:21.205826  9167 solver.cpp:228] "


def caffe(losses: list[tuple[int, str]], header: str = "", restart_at: int | None = None) -> str:
    out = [header] if header else []
    for step, loss in losses:
        out.append(f"{G}Iteration {step}, loss = {loss}")
        out.append(f"{G}    Train net output #0: loss = {loss} (* 1 = {loss} loss)")
        out.append(f"{G}Iteration {step}, lr = 0.01")
    return "\n".join(out) + "\n"


def descending(n: int, every: int = 20, start: float = 2.3, seed: int = 0) -> list[tuple[int, str]]:
    rnd = random.Random(seed)
    loss, out = start, []
    for i in range(n):
        out.append((i * every, f"{loss:.5f}"))
        loss = max(0.3, loss * 0.97 + rnd.gauss(0, 0.01))
    return out


def solver_header(kernel: int, stride: int) -> str:
    """A Caffe solver + net echo with a batch size and one pooling layer."""
    return (f"{G}Initializing solver from parameters: \nbase_lr: 0.01\nmomentum: 0.9\nclip_gradients: -1\n"
            f"{G}Initializing net from parameters: \nname: \"Net\"\nlayer {{\n  name: \"data\"\n"
            f"  data_param {{\n    batch_size: 64\n  }}\n}}\nlayer {{\n  name: \"pool1\"\n  pooling_param {{\n"
            f"    pool: MAX\n    kernel_size: {kernel}\n    stride: {stride}\n  }}\n}}\n")


def run(write, name: str, text: str):
    return diagnose(write(name, text))


def test_l301_early_blowup_caffe(write) -> None:
    d = run(write, "early.log", caffe([(0, "2.30"), (20, "87.33"), (40, "nan"), (60, "nan")]))
    assert d.verdict.code == "L301" and d.first_nonfinite.step == 40
    assert d.causes[0].slug == "learning-rate-too-high"
    assert any("base_lr" in fix for fix in d.causes[0].fixes)  # in Caffe's terms


def test_n202_same_step_after_restart_names_the_samples(write) -> None:
    part = descending(30) + [(600, "nan"), (620, "nan")]
    header = solver_header(3, 2)
    text = caffe(part, header) + f"{G}Restoring previous solver status from snap_iter_400.solverstate\n" \
        + caffe([(s, v) for s, v in part if s >= 400])
    d = run(write, "recur.log", text)
    assert d.verdict.code == "N202"
    assert d.causes[0].slug == "corrupt-data-sample"
    assert d.bad_sample["first_index"] == 600 * 64 and d.bad_sample["batch_size"] == 64
    assert any("attempt 2: non-finite again at step 600" in e.why for e in d.evidence)


def test_n201_sudden_nan_after_descent_tensorflow(write) -> None:
    lines = [f"INFO:tensorflow:loss = {loss}, step = {step} (3.1 sec)" for step, loss in descending(60, every=100)]
    lines.append("INFO:tensorflow:loss = nan, step = 6000 (3.1 sec)")
    lines.append("ERROR:tensorflow:Model diverged with loss = NaN.")
    d = run(write, "tf.log", "\n".join(lines) + "\n")
    assert d.verdict.code == "N201" and d.first_nonfinite.step == 6000
    assert d.causes[0].slug in ("unsafe-loss-arithmetic", "zero-count-division", "unstable-softmax", "fp16-overflow")


def test_x101_exploding_pytorch_free_form(write) -> None:
    losses = [(step, 0.5 * 1.6 ** max(0, (step - 1000) / 100)) for step in range(0, 3000, 100)]
    lines = [f"epoch 1 iter {s} loss {v:.6g} lr 0.1" for s, v in losses] + ["epoch 1 iter 3000 loss inf lr 0.1",
                                                                          "epoch 1 iter 3100 loss nan lr 0.1"]
    d = run(write, "x.log", "\n".join(lines) + "\n")
    assert d.verdict.code == "X101"
    assert d.causes[0].slug in ("gradient-explosion", "learning-rate-too-high")


def test_h001_healthy_hf_exits_0(write) -> None:
    lines = [f"{{'loss': {2.0 * 0.97 ** i:.4f}, 'grad_norm': 1.2, 'learning_rate': 5e-05, 'epoch': {i / 50:.2f}}}"
             for i in range(1, 60)]
    path = write("hf.log", "\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["diagnose", str(path)])
    assert result.exit_code == 0 and result.stdout.startswith("H001")


def test_s401_stalled_keras(write) -> None:
    rnd = random.Random(1)
    lines = []
    for epoch in range(1, 30):
        lines += [f"Epoch {epoch}/30", f"100/100 - 2s - loss: {2.302 + rnd.gauss(0, 0.002):.4f} - accuracy: 0.1000"]
    d = run(write, "k.log", "\n".join(lines) + "\n")
    assert d.verdict.code == "S401"


def test_f501_benign_overflow_then_training_continues(write) -> None:
    over = "[2024-01-01 10:00:00,000] [INFO] [loss_scaler.py:183:update_scale] [deepspeed] OVERFLOW! Rank 0 " \
           "Skipping step. Attempted loss scale: {a}, reducing to {b}"
    lines = [over.format(a=2 ** (16 - i), b=2 ** (15 - i)) for i in range(4)]
    lines += [f"[2024-01-01 10:00:00,000] [INFO] [logging.py:96:log_dist] [Rank 0] step={s}, skipped=4, lr=[0.0001], "
              f"mom=[(0.9, 0.999)]" for s in range(10, 200, 10)]
    d = run(write, "ds.log", "\n".join(lines) + "\n")
    assert d.verdict.code == "F501" and d.verdict.benign and not d.failed


def test_f502_loss_scale_collapse_fairseq(write) -> None:
    d = diagnose(REAL_LOGS / "fairseq_fairseq_1529.log")
    assert d.verdict.code == "F502"
    assert any("--bf16" in fix or "--fp16" in fix for c in d.causes for fix in c.fixes)


def test_n203_hidden_by_logger_keeps_the_curve_shape() -> None:
    d = diagnose(REAL_LOGS / "megatron_megatrondeepspeed_pr434.log")
    assert d.verdict.code == "N203" and d.verdict.shape == "L301" and d.first_nonfinite.step == 9
    # the logger hiding the nan is always named, beside the cause of the nan itself (which
    # the cause model, learned from runs with injected causes, may rank first)
    assert "logger-hides-nonfinite" in [c.slug for c in d.causes[:2]]


def test_r601_recovered_spike(write) -> None:
    losses = descending(80, every=10, seed=3)
    losses[40] = (losses[40][0], "9.5")
    d = run(write, "spike.log", caffe(losses))
    assert d.verdict.code == "R601" and not d.failed


def test_i000_too_short(write) -> None:
    d = run(write, "one.log", caffe([(0, "2.30")]))
    assert d.verdict.code == "I000" and not d.failed


def test_pooling_stride_over_kernel_is_the_top_cause(write) -> None:
    text = caffe(descending(10) + [(200, "nan"), (220, "nan")], solver_header(2, 3))
    d = run(write, "pool.log", text)
    assert d.causes[0].slug == "caffe-pooling-stride-gt-kernel"
    assert any("stride" in e.why for e in d.evidence)


def test_nan_with_lr_zero_points_at_the_data() -> None:
    d = diagnose(REAL_LOGS / "darknet_alexeyabdarknet_5836.log")
    assert d.verdict.code == "N202" and d.first_nonfinite.step == 182


@pytest.mark.parametrize("name", ["tf_tensor2tensor_106.log", "keras_jax_19595.log", "nanogpt_tinyuniverse_31.log",
                                  "tf_tflitedetectionandroid_183.log"])
def test_no_curve_before_a_late_nan_is_no_explosion(name: str) -> None:
    """One finite record or none before the nan, past the first steps (or a pasted window of
    counted records, or an lr that only reached 0 at the end of its schedule): nothing grew."""
    d = diagnose(REAL_LOGS / name)
    assert d.verdict.code == "N201", d.verdict.decided_by


def test_late_nan_after_one_record_is_sudden_not_exploding(write) -> None:
    d = run(write, "late.log", caffe([(5000, "2.30"), (5020, "nan")]))
    assert d.verdict.code == "N201" and "no growth" in d.verdict.decided_by
    grown = run(write, "grown.log", caffe([(5000 + 20 * i, f"{2.3 * 3 ** i:.1f}") for i in range(8)] + [(5160, "nan")]))
    assert grown.verdict.code == "X101"


def test_a_stall_needs_more_than_one_logging_interval(write) -> None:
    """Every rank printing the same two steps is no stall (torchtitan prints a step per rank)."""
    d = diagnose(REAL_LOGS / "torchtitan_torchtitan_pr2389.log")
    assert d.verdict.code == "H001" and "S401" not in d.verdict.probabilities


def test_cross_file_recurrence_is_evidence(write) -> None:
    part = caffe(descending(30) + [(600, "nan")])
    # two attempts print the same curve, but never the same bytes (times, pids differ)
    d = diagnose([write("a1.log", "attempt 1\n" + part), write("a2.log", "attempt 2\n" + part)])
    assert d.verdict.code == "N202" and len(d.inputs) == 2


def test_json_report_is_strict_and_versioned(write) -> None:
    path = write("early.log", caffe([(0, "2.30"), (20, "nan")]))
    result = CliRunner().invoke(main, ["diagnose", "--format", "json", str(path)])
    assert result.exit_code == 1

    def no_constants(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    doc = json.loads(result.stdout, parse_constant=no_constants)
    assert doc["schema_version"] == 1
    assert {"code", "slug", "title", "confidence"} <= doc["verdict"].keys()
    assert {"step", "line", "metric", "text"} <= doc["first_nonfinite"].keys()
    assert doc["causes"] and {"code", "title", "probability", "fixes"} <= doc["causes"][0].keys()
    assert doc["evidence"] and {"step", "line", "text", "why"} <= doc["evidence"][0].keys()
    assert {"path", "format", "size", "sha256"} <= doc["input"][0].keys() and len(doc["input"][0]["sha256"]) == 64
    assert isinstance(doc["warnings"], list)


def test_cli_oneline_markdown_report_file_and_errors(write, tmp_path) -> None:
    path = write("early.log", caffe([(0, "2.30"), (20, "nan")]))
    one = CliRunner().invoke(main, ["diagnose", "--oneline", str(path)])
    assert one.exit_code == 1 and len(one.stdout.strip()) <= 200 and "\n" not in one.stdout.strip()
    md = CliRunner().invoke(main, ["diagnose", "--format", "markdown", str(path)])
    assert "`L301`" in md.stdout
    report = tmp_path / "r.json"
    out = CliRunner().invoke(main, ["diagnose", "--oneline", "--report", str(report), str(path)])
    assert out.exit_code == 1 and json.loads(report.read_text())["verdict"]["code"] == "L301"
    again = CliRunner().invoke(main, ["diagnose", "--report", str(report), str(path)])
    assert again.exit_code == 2  # never overwrites without --force
    missing = CliRunner().invoke(main, ["diagnose", str(tmp_path / "nope.log")])
    assert missing.exit_code == 2 and missing.stderr.startswith("logsleuth: error:")


def test_library_accepts_a_series(write) -> None:
    path = write("early.log", caffe([(0, "2.30"), (20, "nan")]))
    assert diagnose(logsleuth.read_log(path)).verdict.code == diagnose(path).verdict.code


def test_explain_and_signatures_commands() -> None:
    assert "How to confirm" in CliRunner().invoke(main, ["explain", "N202"]).stdout
    listed = CliRunner().invoke(main, ["signatures"]).stdout
    for code in ("H001", "X101", "N201", "N202", "L301", "S401", "F501", "F502", "N203", "R601", "I000"):
        assert code in listed
    assert CliRunner().invoke(main, ["explain", "Z999"]).exit_code == 2


def test_evidence_rules_name_catalog_causes() -> None:
    slugs = {c.slug for c in load_catalog().causes.values()}
    assert {rule.cause for rule in EVIDENCE_RULES} <= slugs


def test_features_are_finite_numbers_or_nan(write) -> None:
    d = run(write, "early.log", caffe([(0, "2.30"), (20, "nan")]))
    assert all(isinstance(v, float) and not math.isinf(v) for v in d.features.values())


# ---- what the corpus taught: loggers that hide or shift the failure --------------------

MEGATRON = (" iteration {it:8d}/    1000 | consumed samples: {s:12d} | learning rate: 1.000E-04 | global batch size:"
            "     8 |{loss} loss scale: {scale} | number of skipped iterations: {skipped:3d} | "
            "number of nan iterations: {nans:3d} |")


def megatron_line(it: int, loss: str | None, skipped: int = 0, nans: int = 0, scale: str = "65536.0") -> str:
    field = f" lm loss: {loss} |" if loss is not None else ""
    return MEGATRON.format(it=it, s=it * 8, loss=field, scale=scale, skipped=skipped, nans=nans)


def test_megatron_interval_of_skips_is_an_overflow_not_a_hidden_nan(write) -> None:
    lines = [megatron_line(10, None, skipped=10, scale="8388608.0")]
    lines += [megatron_line(it, f"{2.0 * 0.98 ** it:.6E}") for it in range(20, 600, 10)]
    series = logsleuth.read_log(write("m.log", "\n".join(lines) + "\n"))
    kinds = [e.kind for e in series.events]
    assert "overflow" in kinds and "loss_missing" not in kinds
    d = diagnose(series)
    assert d.verdict.code == "F501" and not d.failed


def test_megatron_nan_counter_is_a_nonfinite_event(write) -> None:
    lines = [megatron_line(it, f"{2.0 * 0.98 ** it:.6E}") for it in range(10, 300, 10)]
    lines.append(megatron_line(300, None, skipped=1, nans=1))
    series = logsleuth.read_log(write("m.log", "\n".join(lines) + "\n"))
    assert any(e.kind == "nonfinite" and e.step == 300 for e in series.events)


def test_visible_nan_after_a_missing_loss_is_not_hidden(write) -> None:
    """Megatron printed INF itself before dropping the field: nothing was hidden."""
    lines = [megatron_line(it, f"{27.0 * 40 ** (it - 1):.6E}") for it in range(1, 6)]
    lines += [megatron_line(6, "INF"), megatron_line(7, None), megatron_line(8, None)]
    d = run(write, "m.log", "\n".join(lines) + "\n")
    assert d.verdict.code == "L301" and d.first_nonfinite.step == 6


def test_hf_filtered_nan_prints_an_isolated_zero(write) -> None:
    losses = [2.0 * 0.99 ** i for i in range(1, 80)]
    losses[30] = 0.0  # logging_nan_inf_filter at logging_steps=1: the nan step prints 0.0
    lines = [f"{{'loss': {v:.4f}, 'learning_rate': 5e-05, 'epoch': {i / 40:.2f}}}" for i, v in enumerate(losses, 1)]
    d = run(write, "hf.log", "\n".join(lines) + "\n")
    assert d.verdict.code == "N203"


def test_zero_loss_in_other_loggers_is_just_a_small_loss(write) -> None:
    """TensorFlow rounds: a printed 0 between 0.17 and 0.19 is no hidden nan."""
    values = [1.5] + [0.17, 0.0, 0.19, 0.1, 0.12] * 12
    lines = [f"INFO:tensorflow:loss = {v}, step = {i * 100} (3.1 sec)" for i, v in enumerate(values)]
    d = run(write, "tf.log", "\n".join(lines) + "\n")
    assert d.verdict.code != "N203" and not d.failed


def test_hf_fp16_skipped_step_with_inf_grad_norm_is_benign(write) -> None:
    head = "TrainingArguments(\nfp16=True,\nlogging_nan_inf_filter=False,\n)\n"
    lines = [f"{{'loss': {2.0 * 0.99 ** i:.4f}, 'grad_norm': {'inf' if i == 1 else 1.1}, 'learning_rate': 5e-05, "
             f"'epoch': {i / 40:.2f}}}" for i in range(1, 80)]
    d = run(write, "hf.log", head + "\n".join(lines) + "\n")
    assert d.verdict.code == "F501" and not d.failed


def test_detectron2_requeued_attempts_that_fail_before_printing(write) -> None:
    attempt = ["[03/29 00:23:28 d2.engine.train_loop]: Starting training from iteration 0",
               "ERROR [03/29 00:23:32 d2.engine.train_loop]: Exception during training:",
               "Traceback (most recent call last):",
               '  File "/detectron2/detectron2/engine/train_loop.py", line 149, in train',
               "FloatingPointError: Loss became infinite or NaN at iteration=8!",
               "loss_dict = {'loss_cls': tensor(nan, device='cuda:0', grad_fn=<NllLossBackward0>)}"]
    d = run(write, "d2.log", "\n".join(attempt * 3) + "\n")
    assert d.verdict.code == "N202" and d.features["n_segments"] == 3


def test_keras_terminate_on_nan_step_counts_the_epoch(write) -> None:
    lines = ["Epoch 1/3", "207/207 - 10s - loss: 0.5000 - acc: 0.9000", "Epoch 2/3",
             "120/207 [================>.............] - ETA: 1:11 - loss: 0.4949 - acc: 0.9611"
             "Batch 135: Invalid loss, terminating training"]
    series = logsleuth.read_log(write("k.log", "\n".join(lines) + "\n"))
    # `Batch N` is Keras' 0-based batch index: the step is the bar's 1-based count N + 1
    assert [e.step for e in series.events if e.kind == "terminate_on_nan"] == [207 + 136]


def test_lightning_running_mean_does_not_collide_with_the_logged_loss(write) -> None:
    bar = "Epoch 0:  92%|█████████▏| {i}/24 [00:02<00:00, 7.73it/s, loss={avg}, v_num=0, train_loss={v}]"
    text = "\r".join(bar.format(i=i, avg="1.5" if i < 22 else "nan", v="nan" if i == 22 else "1.4")
                     for i in range(1, 24)) + "\n"
    series = logsleuth.read_log(write("pl.log", text))
    loss = series.frame[series.frame["metric"] == "loss"]
    assert loss["step"].is_unique and set(series.frame["metric"]) >= {"loss", "loss_avg"}


def test_shipped_trees_give_the_fitted_estimators_probabilities() -> None:
    """Diagnosis evaluates signatures.npz; it must agree with the scikit-learn estimator."""
    from importlib.resources import files

    import joblib
    import numpy as np

    from logsleuth.classify import _bounded, load_model
    from logsleuth.features import compute_features

    bundle = joblib.load(files("logsleuth.model").joinpath("signatures.joblib"))
    forest = load_model()
    assert forest.feature_names == list(bundle["feature_names"])
    assert forest.classes == [str(c) for c in bundle["classes"]]
    logs = sorted(REAL_LOGS.glob("*.log"))[::3]
    rows = np.array([[_bounded(f.get(n, math.nan)) for n in forest.feature_names]
                     for f in (compute_features(logsleuth.read_log(p)) for p in logs)])
    expected = bundle["pipeline"].predict_proba(rows)
    got = np.array([forest.predict_proba(r) for r in rows])
    assert np.allclose(got, expected, atol=1e-12) and len(rows) >= 10


def test_pytorch_failures_point_to_replay(write) -> None:
    lines = [f"epoch 0 step {s} loss {2.0 * 0.99 ** s:.4f} lr 0.01" for s in range(10, 400, 10)] + ["epoch 0 step 400 loss nan"]
    d = run(write, "pt.log", "\n".join(lines) + "\n")
    assert d.failed and any("logsleuth replay" in s for s in d.next_steps)
    caffe_d = run(write, "c.log", caffe([(0, "2.30"), (20, "87.33"), (40, "nan")]))
    assert not any("replay" in s for s in caffe_d.next_steps)  # replay re-runs PyTorch jobs only


RICH_END = ("Epoch 24/-2 " + "\u2501" * 40 + " 10/10 0:00:00 \u2022 0:00:00 62.11it/s v_num: 0.000 train_loss: {v}\n")
STOPPED = "`Trainer.fit` stopped: `max_steps=250` reached.\n"


def test_a_completed_run_with_one_ordinary_record_is_healthy(write) -> None:
    """A captured RichProgressBar keeps only the last state: with Lightning's own word that
    the run reached max_steps and nothing non-finite, the verdict is healthy, not I000."""
    d = run(write, "rich.log", "Seed set to 1\n" + STOPPED + RICH_END.format(v="0.002"))
    assert d.verdict.code == "H001" and d.verdict.confidence < 1.0
    assert "ran to its end" in d.verdict.decided_by
    # without the completion line, an absurd lone value, or a crash after it: too short to judge
    assert run(write, "rich2.log", RICH_END.format(v="0.002")).verdict.code == "I000"
    assert run(write, "rich3.log", STOPPED + RICH_END.format(v="25440249856.000")).verdict.code == "I000"
    assert run(write, "rich5.log", STOPPED + RICH_END.format(v="1.615")).verdict.code == "I000"  # a stall, perhaps
    crashed = STOPPED + RICH_END.format(v="0.002") + "Traceback (most recent call last):\nValueError: boom\n"
    assert run(write, "rich4.log", crashed).verdict.code == "I000"


def test_rich_bar_wrapped_at_the_console_width_keeps_its_value(write) -> None:
    line = RICH_END.format(v="").rstrip("\n") + " " * 14 + "\n" + " " * 82 + "25440249856.000" + " " * 20 + "\n"
    loss = logsleuth.read_log(write("wrap.log", line)).frame
    assert loss[loss["metric"] == "loss"]["value"].tolist() == [25440249856.0]


def test_cause_model_ranks_causes_it_was_trained_on() -> None:
    """The shipped cause model exists, matches the feature schema, and its probabilities
    enter the ranking with a reason a reader can see."""
    from logsleuth.explain import cause_probabilities, load_cause_model

    forest = load_cause_model()
    assert forest is not None and {"C01", "C09"} <= set(forest.classes)
    d = diagnose(REAL_LOGS / "darknet_alexeyabdarknet_5836.log")
    from logsleuth.features import compute_features

    p = cause_probabilities(compute_features(logsleuth.read_log(REAL_LOGS / "darknet_alexeyabdarknet_5836.log")),
                            d.verdict.code)
    assert abs(sum(p.values()) - 1) < 1e-9
    assert abs(sum(c.probability for c in d.causes) - 1) < 0.01


def test_the_same_failure_said_again_after_training_output_is_n202(write) -> None:
    """A re-queued job whose restart prints no banner: the same ``loss is nan at iter 16``
    in two attempts, with records between, is the bad-sample recurrence; the same message
    from two ranks at once (no record between) is one failure."""
    attempt = "".join(f"Epoch(train) [1][{i}/20]  lr: 1.0000e-02  loss: {1 - i / 40:.4f}\n" for i in range(5, 16, 5))
    said = "FloatingPointError: loss is nan at iter 16, stopping\n"
    d = run(write, "requeued.log", attempt + said + attempt + said)
    assert d.verdict.code == "N202" and any("again at step 16" in e.why for e in d.evidence)
    ranks = attempt + "[rank1]: " + said + "[rank0]: " + said
    assert run(write, "ranks.log", ranks).verdict.code != "N202"


def test_quoted_source_of_a_raise_is_no_failure_report(write) -> None:
    """A traceback quotes ``raise FloatingPointError(f"Loss is {loss} at step {step}")``,
    under torchrun's rank prefix too: not a failure at some step."""
    from logsleuth import read_log

    text = ('[rank1]:     raise FloatingPointError(f"Loss is {loss} at step {step}, stopping training")\n'
            "[rank1]: FloatingPointError: Loss is nan at step 4, stopping training\n")
    events = [e for e in read_log(write("rank.log", text)).events if e.kind == "nonfinite"]
    assert [e.step for e in events] == [4]


def test_a_printed_loss_scale_that_fell_is_overflow_skips(write) -> None:
    """A mixed-precision loop printing its dynamic loss scale (TF ``LossScaleOptimizer``,
    torch ``GradScaler``): the scale only goes down when a step overflowed, so a finite
    loss with a falling scale is the benign F501, not a plain healthy run."""
    lines = [f"Training loss (for one batch) at step {s}: {2 * 0.99 ** s:.4f}, loss scale: {2.0 ** max(15, 20 - s // 5):g}"
             for s in range(5, 200, 5)]
    d = run(write, "fp16.log", "\n".join(lines) + "\n")
    assert d.verdict.code == "F501" and not d.failed
    steady = [line.split(", loss scale")[0] + ", loss scale: 32768" for line in lines]
    assert run(write, "fp16b.log", "\n".join(steady) + "\n").verdict.code == "H001"


def lightning1_bars(epochs: int, per_epoch: int, nan_at: int, redraws: int = 1) -> str:
    """pytorch_lightning 1.x's TQDM bar captured to a file: every update of a run on one
    line (``\\r`` only), the running ``loss`` before the logged ``train_loss``, and the
    fit's end glued after the last update, then the bar's close on a line of its own."""
    parts, loss = [], 1.0
    for epoch in range(epochs):
        for i in range(1, per_epoch + 1):
            step = epoch * per_epoch + i
            loss = loss * 0.97
            shown = "nan" if step >= nan_at else f"{loss:.4g}"
            bar = (f"Epoch {epoch}:  50%|#####     | {i}/{per_epoch} [00:00<00:00, 300.00it/s, loss={shown}, "
                   f"v_num=0, train_loss={shown}]")
            parts += [bar] * redraws
    return ("\r".join(parts) + "`Trainer.fit` stopped: `max_steps=" + str(epochs * per_epoch) + "` reached.\n"
            + parts[-1] + "\n")


def test_lightning_bars_on_one_line_descend_before_a_sudden_nan(write) -> None:
    """Records before the nan on its own (``\\r``-joined) line are the curve before it: a
    sudden nan after 140 descending steps, not an early blowup; the bar after the glued
    end of the fit counts within its epoch and starts no second attempt."""
    d = run(write, "pl1.log", lightning1_bars(epochs=7, per_epoch=40, nan_at=144, redraws=3))
    assert d.verdict.code == "N201", d.verdict.decided_by
    assert d.first_nonfinite.step == 144 and d.attempts == 1
    assert d.features["n_logged_before_failure"] >= 140


def test_redrawn_bars_keep_the_format_that_knows_them(write) -> None:
    """A format that reads a redrawn bar once is not outread by one that reads every redraw."""
    path = write("redraw.log", lightning1_bars(epochs=30, per_epoch=1, nan_at=10_000, redraws=5))
    assert logsleuth.read_log(path).format == "lightning"
