"""Series assembly: segments at restarts, ranks, inferred steps, absl/glog copies, hparams."""

from __future__ import annotations

import pytest

import logsleuth

GLOG = "I0425 10:12:49.611122  9167 solver.cpp:65] "


def test_restart_in_one_file_starts_a_segment(write) -> None:
    run = "".join(f"{GLOG}Iteration {i}, loss = {2 - i / 1000:.3f}\n" for i in range(0, 600, 100))
    text = f"{GLOG}Solving net\n" + run + f"{GLOG}Solving net\n" + run
    series = logsleuth.read_log(write("r.log", text))
    assert series.frame["segment"].tolist() == [0] * 6 + [1] * 6
    assert [e.segment for e in series.events if e.kind == "restart"] == [0, 1]


def test_counter_going_back_starts_a_segment_without_a_message(write) -> None:
    text = "".join(f"{GLOG}Iteration {i}, loss = 1.0\n" for i in (10, 20, 30, 10, 20))
    assert logsleuth.read_log(write("r.log", text)).frame["segment"].tolist() == [0, 0, 0, 1, 1]


def test_rank_prefixes_and_primary_rank_segments(write) -> None:
    text = "".join(f"[rank{r}]: step={s} loss={s / 10}\n" for s in (1, 2, 3) for r in (1, 0))
    series = logsleuth.read_log(write("ranks.log", text), format="generic")
    assert sorted(series.frame["rank"].unique().tolist()) == [0, 1]
    assert series.frame["segment"].max() == 0  # rank 1 printing step 1 after rank 0's step 1 is no restart


def test_srun_label_prefixes_are_ranks(write) -> None:
    text = "".join(f"{r}: epoch 1 iter {s} loss {1 / s:.3f}\n" for s in (1, 2, 3) for r in (0, 1))
    series = logsleuth.read_log(write("srun.log", text), format="generic")
    assert series.frame.groupby("rank")["step"].apply(list).to_dict() == {0: [1, 2, 3], 1: [1, 2, 3]}


def test_hf_steps_come_from_the_bar_before_each_dict(write) -> None:
    text = ("".join(f"\r {i}%|#   | {i}/100 [00:01<00:10, 9.0it/s]" for i in range(1, 11))
            + "\n{'loss': 0.5, 'grad_norm': nan, 'learning_rate': 5e-05, 'epoch': 0.1}\n"
            + "\r100%|####| 5/5 [00:01<00:00]\n{'eval_loss': 0.7, 'epoch': 0.1}\n"
            + "".join(f"\r {i}%|#   | {i}/100 [00:01<00:10, 9.0it/s]" for i in range(11, 21))
            + "\n{'loss': 0.4, 'grad_norm': 1.0, 'learning_rate': 4e-05, 'epoch': 0.2}\n")
    series = logsleuth.read_log(write("hf.log", text))
    assert series.format == "hf_trainer"
    loss = series.frame[series.frame["metric"] == "loss"]
    assert loss["step"].tolist() == [10, 20]
    assert series.frame[series.frame["metric"] == "eval_loss"]["step"].tolist() == [10]
    assert series.frame["segment"].max() == 0  # the eval bar (total 5) set no step
    assert series.first_nonfinite().metric == "grad_norm" and series.first_nonfinite().step == 10


def test_hf_without_bars_counts_records_and_says_so(write) -> None:
    text = "".join(f"{{'loss': {1 / i}, 'learning_rate': 5e-05, 'epoch': {i / 10}}}\n" for i in range(1, 4))
    series = logsleuth.read_log(write("hf.log", text))
    assert series.frame[series.frame["metric"] == "loss"]["step"].tolist() == [1, 2, 3]
    assert series.notes and "no step" in series.notes[0]


def test_absl_and_glog_copies_count_once(write) -> None:
    text = ("INFO:tensorflow:loss = 0.5, step = 100 (3.2 sec)\n"
            "I1015 10:00:00.000 140 basic_session_run_hooks.py:260] loss = 0.5, step = 100 (3.2 sec)\n"
            "ERROR:tensorflow:Model diverged with loss = NaN.\n"
            "E1015 10:00:01.000 140 basic_session_run_hooks.py:760] Model diverged with loss = NaN.\n")
    series = logsleuth.read_log(write("tf.log", text))
    assert len(series.frame) == 1
    assert [(e.kind, e.step) for e in series.events] == [("nonfinite", 100)]


def test_every_nonfinite_spelling_is_non_finite(write) -> None:
    spellings = ["nan", "-nan", "NaN", "inf", "-inf", "Inf", "Infinity", "1.#QNAN", "1.#INF", "-1.#IND", "nan(ind)"]
    text = "".join(f"{GLOG}Iteration {i}, loss = {s}\n" for i, s in enumerate(spellings))
    values = logsleuth.read_log(write("n.log", text)).frame["value"]
    assert values.isna().sum() + (values.abs() == float("inf")).sum() == len(spellings)
    assert (values == float("-inf")).sum() == 1 and (values == float("inf")).sum() == 4


def test_caffe_header_echo_becomes_hyperparameters(write) -> None:
    text = (f"{GLOG}Initializing solver from parameters: \n"
            "base_lr: 0.01\nlr_policy: \"step\"\nmomentum: 0.9\nclip_gradients: 10\n"
            f"{GLOG}Initializing net from parameters: \n"
            "name: \"Net\"\nlayer {\n  name: \"pool1\"\n  type: \"Pooling\"\n  pooling_param {\n    pool: MAX\n"
            "    kernel_size: 2\n    stride: 3\n  }\n}\nlayer {\n  name: \"data\"\n  data_param {\n    batch_size: 64\n"
            "  }\n}\n"
            f"{GLOG}Iteration 0, loss = 2.3\n")
    hp = logsleuth.read_log(write("c.log", text)).hparams
    assert hp["base_lr"].value == 0.01 and hp["lr_policy"].value == "step" and hp["clip_gradients"].value == 10
    assert hp["layer.pool1.kernel_size"].value == 2 and hp["layer.pool1.stride"].value == 3
    assert hp["batch_size"].value == 64 and hp["base_lr"].line == 2


def test_namespace_echo(write) -> None:
    text = ("Namespace(arch='transformer', clip_norm=0.0, lr=[0.0005], fp16=True, max_tokens=4096, seed=1)\n"
            "epoch 1 iter 1 loss 9.1\n")
    hp = logsleuth.read_log(write("ns.log", text)).hparams
    assert hp["clip_norm"].value == 0.0 and hp["fp16"].value is True and hp["lr"].value == [0.0005]


def test_unparsed_metric_lines_are_counted_not_dropped(write) -> None:
    text = f"{GLOG}Iteration 10, loss = 0.5\n{GLOG}Iteration 20, loss = garbage\n"
    series = logsleuth.read_log(write("u.log", text))
    assert series.unparsed == 1 and series.unparsed_examples[0][0] == 2


def test_wide_view(write) -> None:
    text = "".join(f"{GLOG}Iteration {i}, loss = 1.{i}\n{GLOG}Iteration {i}, lr = 0.01\n" for i in range(3))
    wide = logsleuth.read_log(write("w.log", text)).wide()
    assert list(wide.columns[-2:]) == ["loss", "lr"] and len(wide) == 3


def _read_in_chunks(monkeypatch, path, size: int, fmt: str | None = None):
    """``path`` read in chunks of about ``size`` bytes (the format still detected from the
    usual head, or given)."""
    from logsleuth import io as log_io

    with monkeypatch.context() as m:
        m.setattr(log_io, "CHUNK", size)
        return logsleuth.read_log(path, format=fmt)


def _chunk_independence_inputs() -> list:
    from .conftest import FIXTURES, REAL_LOGS

    return sorted([*REAL_LOGS.glob("*.log"), *FIXTURES.glob("*/*.log")])


@pytest.mark.parametrize("path", _chunk_independence_inputs(), ids=lambda p: p.name)
def test_chunk_boundaries_do_not_change_the_series(monkeypatch, path) -> None:
    """Chunks are scanned apart (and in threads): cutting the log at other line
    boundaries must give the same rows, events and hyperparameters."""
    whole = logsleuth.read_log(path)
    longest = max(len(line) for line in path.read_bytes().split(b"\n")) + 1
    for size in (max(longest, 300), max(longest, 1000)):
        cut = _read_in_chunks(monkeypatch, path, size, whole.format)
        assert cut.frame.astype({"metric": str}).equals(whole.frame.astype({"metric": str})), size
        assert cut.events == whole.events and cut.hparams == whole.hparams and cut.unparsed == whole.unparsed


def test_a_chunk_starting_at_a_dict_line_takes_the_bar_before_it(monkeypatch, write) -> None:
    bars = "".join(f"\r  1%|          | {i}/900 [00:0{i % 10}<01:30,  9.9it/s]" for i in range(1, 11))
    text = "".join(bars.replace("/900", "/900").replace(" 10/", f" {10 * k}/") + "\n"
                   + f"{{'loss': {1 / k:.4f}, 'learning_rate': 5e-05, 'epoch': {k / 100}}}\n" for k in range(1, 40))
    path = write("hf.log", text)
    steps = logsleuth.read_log(path).frame.query("metric == 'loss'")["step"].tolist()
    assert steps == [10 * k for k in range(1, 40)]
    for size in range(700, 1400, 37):
        cut = _read_in_chunks(monkeypatch, path, size)
        assert cut.frame.query("metric == 'loss'")["step"].tolist() == steps, size
