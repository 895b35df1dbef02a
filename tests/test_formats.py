"""Every format reads its own sample lines, and detection picks it for them (specific
formats must beat the generic fallback on their own samples)."""

from __future__ import annotations

import io

import pytest

import logsleuth
from logsleuth.detect import detect
from logsleuth.parsers import builtin_formats

FORMATS = builtin_formats()


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_samples_are_read(fmt) -> None:
    for sample in fmt.samples:
        series = logsleuth.read_log(io.BytesIO(sample.encode() + b"\n"), format=fmt.name)
        assert len(series.frame) or series.events, f"{fmt.name} does not read its sample {sample!r}"
        assert series.unparsed == 0


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.sniff], ids=[f.name for f in FORMATS if f.sniff])
def test_detection_picks_the_format_for_its_samples(fmt) -> None:
    head = "\n".join(fmt.samples).encode() + b"\n"
    assert detect(head).name == fmt.name


def test_names_are_unique_and_generic_is_last() -> None:
    names = [f.name for f in FORMATS]
    assert len(names) == len(set(names)) and names[-1] == "generic"


def test_megatron_damaged_count_field_is_no_crash() -> None:
    """A count field that is no number (``nan iterations:  #0``, a damaged line) counts as none."""
    from logsleuth.parsers.megatron import _count

    assert [_count(v) for v in (b"#0", b"nan", b"inf", b"3", None)] == [0, 0, 0, 3, 0]


def _loss(text: str):
    frame = logsleuth.read_log(io.BytesIO(text.encode())).frame
    return frame[frame["metric"] == "loss"]


@pytest.mark.parametrize("template", [
    "Training loss (for one batch) at step {s}: {v}",  # Keras' own custom-loop guide (TF2 loops copy it)
    "Training loss at step {s}: {v}",
    "loss at step {s}: {v}",
    "Step #{s} Loss: {v}",
    "Step {s}/1000 - loss: {v}",  # a counter and a Keras-style payload, no time field between
])
def test_free_form_phrasings_give_steps_and_the_nan(template) -> None:
    lines = [template.format(s=s, v=f"{2 * 0.99 ** s:.4f}") for s in range(10, 300, 10)] + [template.format(s=300, v="nan")]
    loss = _loss("\n".join(lines) + "\n")
    assert loss["step"].tolist() == list(range(10, 310, 10))
    assert loss["value"].isna().tolist()[-1] and loss["value"].notna().sum() == 29


def test_a_phase_word_before_the_metric_is_that_phase() -> None:
    """``Test Loss: 0.9`` is the eval loss (TensorFlow's quickstart loop), not a second train loss."""
    frame = logsleuth.read_log(io.BytesIO(b"Epoch 1, Loss: 0.50, Accuracy: 90.00, Test Loss: 0.55, Test Accuracy: 89.00\n"
                                          b"Epoch 2, Loss: 0.40, Accuracy: 91.00, Test Loss: 0.45, Test Accuracy: 90.00\n")).frame
    assert frame[frame["metric"] == "loss"]["value"].tolist() == [0.5, 0.4]
    assert set(frame[frame["metric"] == "eval_loss"]["phase"]) == {"eval"}


def test_a_step_counter_that_restarts_each_epoch_continues_it() -> None:
    """``Start of epoch N`` then ``step 0`` again counts batches within the epoch, not a
    re-queued attempt; the same step going back without a new epoch stays an attempt."""
    text = "".join(f"Start of epoch {e}\n" + "".join(f"Training loss (for one batch) at step {s}: {2 - e / 10 - s / 1000:.4f}\n"
                                                     for s in (0, 100, 200)) for e in range(3))
    series = logsleuth.read_log(io.BytesIO(text.encode()))
    loss = series.frame[series.frame["metric"] == "loss"]
    assert loss["step"].tolist() == [0, 100, 200, 300, 400, 500, 600, 700, 800]
    assert set(loss["segment"]) == {0}
    again = "".join(f"step {s} loss {1 - s / 1000:.3f}\n" for s in (0, 100, 200)) * 2
    assert set(_loss(again)["segment"]) == {0, 1}


def test_tf2_loop_chatter_does_not_make_it_a_tf1_log() -> None:
    """A TF2 custom loop mentions tensorflow in every traceback path; its prints are read
    free-form, not as the TF1 Estimator format that reads none of them."""
    head = (b"I0000 00:00:1796233352.5 16343 port.cc:153] oneDNN custom operations are on.\n"
            b"  File \"/venv/lib/python3.11/site-packages/tensorflow/python/eager/execute.py\", line 53\n"
            b"epoch 1 step 20 loss=0.0012\nepoch 1 step 21 loss=0.0011\n")
    assert detect(head).name != "tensorflow"
    assert _loss(head.decode())["step"].tolist() == [20, 21]


def test_mixed_precision_scale_epoch_means_and_averages_are_not_the_loss() -> None:
    frame = logsleuth.read_log(io.BytesIO(
        b"Training loss (for one batch) at step 5: 2.1906, loss scale: 1.04858e+06\n"
        b"Training loss over epoch: 8662273115553792.0000\n"
        b"epoch 1 step 20 loss=0.0001\nepoch 1 done: mean loss=0.1551\n")).frame
    assert frame[frame["metric"] == "loss"]["value"].tolist() == [2.1906, 0.0001]
    assert {"loss_scale", "train_loss_epoch", "mean_loss_epoch"} <= set(frame["metric"])
    assert "epoch" not in set(frame["metric"])


def test_epoch_summaries_beside_step_lines_are_epoch_metrics() -> None:
    """TensorFlow's quickstart prints ``Epoch N, Loss: ...`` (an epoch mean) between its
    step lines: a summary, not one more record of the per-step loss."""
    lines = []
    for e in range(1, 4):
        lines += [f"Step {(e - 1) * 3 + s}, loss: {1 / (e * s):.4f}" for s in range(1, 4)]
        lines.append(f"Epoch {e}, Loss: {0.5 / e:.2f}, Accuracy: 90.00, Test Loss: 0.55, Test Accuracy: 89.00")
    frame = logsleuth.read_log(io.BytesIO(("\n".join(lines) + "\n").encode())).frame
    assert frame[frame["metric"] == "loss"]["step"].tolist() == list(range(1, 10))
    assert frame[frame["metric"] == "loss_epoch"]["value"].tolist() == [0.5, 0.25, 0.17]
    alone = logsleuth.read_log(io.BytesIO(b"Epoch 1, Loss: 0.50\nEpoch 2, Loss: 0.40\n")).frame
    assert alone[alone["metric"] == "loss"]["value"].tolist() == [0.5, 0.4]  # only epochs: they are the loss


def test_a_global_step_counter_beside_the_epoch_is_the_step() -> None:
    """``epoch 3: step 70/160`` (an accelerate loop): n went on growing into the new
    epoch, so n/T counts all steps, not batches within the epoch."""
    text = "".join(f"epoch {(s - 1) // 20}: step {s}/160 loss={1 / s:.4f}\n" for s in range(1, 61))
    assert _loss(text)["step"].tolist() == list(range(1, 61))
    per_epoch = "".join(f"Epoch [{e}/3], Step [{s}/20], Loss: {1 / s:.4f}\n" for e in (1, 2) for s in (10, 20))
    assert _loss(per_epoch)["step"].tolist() == [10, 20, 30, 40]


def test_dataset_bars_do_not_set_the_trainer_step() -> None:
    """TRL's ``Dropping fully masked examples ...: 800/800 [..., 89347.44 examples/s]``
    is no training bar: the logged dict after it keeps the main bar's step."""
    text = ("  6%|▋         | 16/250 [00:00<00:05, 41.74it/s]\n"
            "Dropping fully masked examples from train dataset: 100%|██████████| 800/800 "
            "[00:00<00:00, 89347.44 examples/s]\n"
            "{'loss': '3.809', 'grad_norm': '1.0', 'learning_rate': '0.003', 'epoch': '0.68'}\n")
    assert _loss(text)["step"].tolist() == [16]


def test_a_fresh_bar_glued_before_a_line_is_not_a_restart_after_it() -> None:
    """``0/160 [00:00<?, ?it/s]`` with a logging line glued after it (tqdm and logging on
    one stream): the bar comes first, so the records after it do not go back to step 0."""
    text = ("\r  0%|          | 0/160 [00:00<?, ?it/s]12/02/2026 17:31:07 - INFO - __main__ - Step 10: loss 0.8340, lr 0.003\n"
            "12/02/2026 17:31:07 - INFO - __main__ - Step 20: loss nan, lr 0.003\n")
    loss = _loss(text)
    assert loss["step"].tolist() == [10, 20] and set(loss["segment"]) == {0}


def test_object_detection_api_loss_dict_is_read_at_its_step_once() -> None:
    """TF2 Object Detection API: the pretty-printed loss dict after ``Step N per-step time``
    belongs to step N; the absl copy of each message is no second record."""
    block = ("{{'Loss/classification_loss': {c},\n 'Loss/localization_loss': 0.3,\n"
             " 'Loss/regularization_loss': 0.15,\n 'Loss/total_loss': {t},\n 'learning_rate': 0.079}}\n")
    text = ""
    for step, (c, t) in ((100, ("0.5", "0.95")), (200, ("nan", "nan"))):
        text += (f"INFO:tensorflow:Step {step} per-step time 0.382s\n"
                 f"I0409 23:03:12.869635 140410452137792 model_lib_v2.py:705] Step {step} per-step time 0.382s\n"
                 f"INFO:tensorflow:{block.format(c=c, t=t)}"
                 f"I0409 23:03:12.869635 140410452137792 model_lib_v2.py:708] {block.format(c=c, t=t)}")
    series = logsleuth.read_log(io.BytesIO(text.encode()))
    assert series.format == "tensorflow"
    loss = series.frame[series.frame["metric"] == "loss"]
    assert loss["step"].tolist() == [100, 200] and loss["value"].iloc[0] == 0.95
    assert series.first_nonfinite().step == 200
    assert {"classification_loss", "localization_loss", "lr"} <= set(series.frame["metric"])


def test_deepspeed_pipeline_engine_loss_lines() -> None:
    text = ("[2026-07-30 09:16:29,681] [INFO] [logging.py:123:log_dist] [Rank 0] step=17, skipped=0, lr=[1e-06], "
            "mom=[0.0]\nsteps: 17 loss: 0.5994 iter time (s): 3.162 samples/sec: 0.316\n"
            "[2026-07-30 09:16:32,952] [INFO] [logging.py:123:log_dist] [Rank 0] step=18, skipped=0, lr=[1e-06], "
            "mom=[0.0]\nsteps: 18 loss: nan iter time (s): 3.235 samples/sec: 0.309\n")
    series = logsleuth.read_log(io.BytesIO(text.encode()))
    assert series.format == "deepspeed"
    assert _loss(text)["step"].tolist() == [17, 18]
    assert series.first_nonfinite().step == 18
