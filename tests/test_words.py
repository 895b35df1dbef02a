"""Failures said in words are non-finite events (never metrics), a visible nan is never a
silent exit 0, attempts appended to one log are split, and detection reads what the log
prints rather than who printed it."""

from __future__ import annotations

import pytest

import logsleuth
from logsleuth.api import diagnose
from logsleuth.report import to_text

DESCENT = "".join(f"epoch 1 step {s} loss {2.5 - s / 100:.3f}\n" for s in range(100, 200, 10))

SAID = [
    "WARNING: step 247 : loss is nan - skipping update",
    "Loss is nan, stopping training",
    "Loss is inf, stopping training",
    "Batch 247: Invalid loss, terminating training",
    "UserWarning: NaN or Inf found in input tensor.",
    "FloatingPointError: Loss became infinite or NaN at iteration=247!",
    "Rank 0: found NaN in local grad norm in backward pass before data-parallel communication collective",
    "Detected NaN in the loss at step 247",
    "RuntimeError: non-finite loss nan at step 247",
    "Function 'LogBackward0' returned nan values in its 0th output.",
    "NaN loss detected at iteration 247, skipping batch",
    'FloatingPointError: invalid value (nan) encountered in jit(compiled_train_step)',
]
NOT_SAID = [
    "number of nan iterations: 0 |",
    "no nan found in the gradients",
    "found nan: 0",
    "    if torch.isnan(loss): raise FloatingPointError('loss is nan')",
    "    raise FloatingPointError(",
    "args: skip_nan_loss=True, detect_anomaly=False",
]


@pytest.mark.parametrize("line", SAID)
def test_a_failure_said_in_words_is_a_nonfinite_event(write, line: str) -> None:
    series = logsleuth.read_log(write("said.log", DESCENT + line + "\n"))
    events = [e for e in series.events if e.kind in ("nonfinite", "terminate_on_nan")]
    assert events, series.events
    assert events[0].line == 11 and events[0].text.strip() == line.strip()
    assert "is" not in set(series.frame["metric"])  # `loss is nan` is no metric named "is"
    assert series.unparsed == 0  # the line was read: as an event


@pytest.mark.parametrize("line", SAID)
def test_no_healthy_verdict_beside_a_failure_said_in_words(write, line: str) -> None:
    d = diagnose(write("said.log", DESCENT + line + "\n"))
    assert d.verdict.code not in ("H001", "S401", "R601"), d.verdict
    assert d.first_nonfinite is not None and d.first_nonfinite.line == 11


def test_the_step_the_line_prints_is_the_events_step(write) -> None:
    series = logsleuth.read_log(write("said.log", DESCENT + SAID[0] + "\n"))
    assert series.first_nonfinite().step == 247


@pytest.mark.parametrize("line", NOT_SAID)
def test_lines_that_mention_nan_without_reporting_one_are_no_event(write, line: str) -> None:
    series = logsleuth.read_log(write("quiet.log", DESCENT + line + "\n"))
    assert not [e for e in series.events if e.kind == "nonfinite"], series.events
    assert diagnose(write("quiet2.log", DESCENT + line + "\n")).verdict.code in ("H001", "S401")


@pytest.mark.parametrize("line, metric", [
    ("steps: 18 loss: nan iter time (s): 3.235", "loss"),
    ('{"epoch": 299, "step": 264205, "loss": NaN, "lr": 1.28}', "loss"),
    ("train_loss_step=nan.0 v_num=0 loss=nan.0", "loss"),
    ("epoch: [2/500], global_step: 920, CTCLoss: nanxxx, loss: nanxxx", "loss"),
    ("step 920 loss: NAN grad_norm: INF", "grad_norm"),
])
def test_every_spelling_of_a_visible_nan_reaches_the_series(write, line: str, metric: str) -> None:
    series = logsleuth.read_log(write("spell.log", DESCENT + line + "\n"))
    bad = series.frame[series.frame["metric"] == metric]["value"].tail(1)
    assert len(bad) and not bad.map(lambda v: v == v and abs(v) != float("inf")).iloc[0], series.frame.tail()
    assert diagnose(write("spell2.log", DESCENT + line + "\n")).verdict.code not in ("H001", "S401")


def test_a_printed_nan_value_is_a_value_not_words(write) -> None:
    """Caffe's ``(* 1 = nan loss)`` is the weighted value, not a sentence about the loss."""
    line = "I0425 10:13:21.206111  9167 solver.cpp:244]     Train net output #0: loss = nan (* 1 = nan loss)"
    series = logsleuth.read_log(write("caffe.log", DESCENT + line + "\n"))
    assert not [e for e in series.events if e.kind == "nonfinite"]
    assert series.first_nonfinite().line == 11 and series.first_nonfinite().source == "value"


def test_info_is_no_inf(write) -> None:
    series = logsleuth.read_log(write("info.log", "[2023/10/06 13:31:29] ppocr INFO: epoch: 2, loss: 0.5\n" * 4))
    assert "ppocr" not in set(series.frame["metric"])


def test_a_custom_print_among_tensorflow_chatter_is_read(write) -> None:
    lines = []
    for s in range(0, 600, 100):
        lines.append(f"step: {s} total_loss: {'9.55' if s == 0 else 'nan'} obj_cls: 2.77\n")
        lines.append("INFO:tensorflow:global_step/sec: 2.1272\n")
    series = logsleuth.read_log(write("tf.log", "".join(lines)))
    assert series.first_nonfinite().step == 100
    assert diagnose(write("tf2.log", "".join(lines))).verdict.code == "L301"


def test_a_config_echo_is_no_record(write) -> None:
    echo = "args {'img_size': [256, 256], 'Batch_Size': 4, 'EPOCHS': 3000, 'loss_type': 'l2', 'lr_policy': 'step'}\n"
    series = logsleuth.read_log(write("cfg.log", echo + "Epoch:0, Train loss: 0.52\nEpoch:1, Train loss: 0.41\n"))
    assert set(series.frame["metric"]) == {"loss"} and series.unparsed == 0


def test_attempts_appended_to_one_log_fail_at_the_same_step(write) -> None:
    """A re-queued Hugging Face job: each attempt's bar starts at 0/T again; buffered stdout
    prints the attempt's dicts after its traceback, so only the bar shows the restart."""
    attempt = ("  0%|          | 0/160 [00:00<?, ?it/s]\n"
               " 10%|#         | 15/160 [00:01<00:10, 14.2it/s]Traceback (most recent call last):\n"
               "RuntimeError: non-finite loss nan at step 16\n"
               "{'loss': '1.285', 'grad_norm': '1.368', 'learning_rate': '0.01', 'epoch': '0.25'}\n"
               "{'loss': '0.4712', 'grad_norm': '0.7352', 'learning_rate': '0.01', 'epoch': '0.5'}\n")
    d = diagnose(write("requeued.log", attempt + attempt))
    assert d.verdict.code == "N202"
    assert d.features["n_segments"] == 2
    assert any("attempt 2: non-finite again at step 16" in e.why for e in d.evidence)
    assert "attempts: 2" in to_text(d)


def test_an_eval_bar_starting_at_zero_is_no_new_attempt(write) -> None:
    log = ("  0%|          | 0/160 [00:00<?, ?it/s]\n"
           " 10%|#         | 16/160 [00:01<00:10, 14.2it/s]{'loss': 1.2, 'learning_rate': 0.01, 'epoch': 0.25}\n"
           "  0%|          | 0/8 [00:00<?, ?it/s]\n"
           "{'eval_loss': 1.1, 'epoch': 0.25}\n"
           " 20%|##        | 32/160 [00:02<00:09, 14.2it/s]{'loss': 1.0, 'learning_rate': 0.01, 'epoch': 0.5}\n")
    series = logsleuth.read_log(write("eval.log", log))
    assert set(series.frame["segment"]) == {0}


def test_the_same_file_twice_is_one_attempt(write) -> None:
    text = DESCENT + "epoch 1 step 200 loss nan\n"
    path = write("once.log", text)
    d = diagnose([path, path])
    assert len(d.inputs) == 1 and d.verdict.code != "N202"
    assert any("same content" in w for w in d.warnings)
