"""The corpus builder (``corpus/``): the measured labeller and every printer.

Fast: no training except one 60-step run (determinism); the printers render hand-made
trajectories. Skipped when torch is not installed (the corpus needs it to train).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")

import logsleuth  # noqa: E402
from corpus import causes, compose, label, runs, variations  # noqa: E402
from corpus.printers import BY_NAME  # noqa: E402
from corpus.runs import Attempt, RunSpec, Trajectory  # noqa: E402

NAN, INF = math.nan, math.inf


def _cols(loss, grad=None, scale=None, overflow=None, start=1):
    loss = list(loss)
    cols = {"step": list(range(start, start + len(loss))), "loss": loss,
            "grad_norm": list(grad) if grad is not None else [1.0] * len(loss)}
    if scale is not None:
        cols["scale"], cols["overflow"] = list(scale), list(overflow)
    return cols


def _decay(n, start=2.0, end=0.3, tau=80.0):
    return [end + (start - end) * math.exp(-t / tau) for t in range(n)]


# ---- the labeller, one hand-made trajectory per signature ----------------------------


def test_healthy_and_stalled():
    assert label.measure_signature(_cols(_decay(300))).signature == "H001"
    flat = [2.3 + 0.01 * math.sin(t) for t in range(300)]
    assert label.measure_signature(_cols(flat)).signature == "S401"


def test_recovered_spike():
    loss = _decay(300)
    loss[150] = loss[149] * 12
    m = label.measure_signature(_cols(loss))
    assert m.signature == "R601" and m.evidence["spike_loss"] == pytest.approx(loss[150])


def test_early_blowup_nonfinite_and_absurd():
    loss = _decay(60) + [INF] + [NAN] * 20
    m = label.measure_signature(_cols(loss))
    assert (m.signature, m.fail_step, m.first_nonfinite_step) == ("L301", 61, 61)
    absurd = _decay(300)
    absurd[40] = 1e6
    assert label.measure_signature(_cols(absurd)).signature == "L301"


def test_exploding_then_nan_is_x101():
    loss = _decay(200) + [0.3 * 1.3 ** k for k in range(1, 60)]
    loss = [v if v < 3e38 else INF for v in loss] + [NAN] * 20
    m = label.measure_signature(_cols(loss))
    assert m.signature == "X101" and m.fail_step > 100 and m.evidence["growth"] > 10


def test_sudden_nan_after_descent_is_n201():
    loss = _decay(250) + [NAN] * 30
    m = label.measure_signature(_cols(loss))
    assert (m.signature, m.fail_step) == ("N201", 251)


def test_same_step_in_every_attempt_is_n202():
    first = _cols(_decay(230) + [NAN] * 10)
    second = _cols(_decay(31, 0.5) + [NAN] * 10, start=200)
    m = label.measure_signature(first, attempts=[first, second])
    assert m.signature == "N202" and m.evidence["attempt_fail_steps"] == [231, 231]
    other = _cols(_decay(40, 0.5) + [NAN] * 10, start=200)
    assert label.measure_signature(first, attempts=[first, other]).signature == "N201"


def test_isolated_nans_at_a_fixed_epoch_position_are_n202():
    loss = _decay(400)
    for s in (18, 68, 118, 168, 218):  # steps_per_epoch 50, position 17 of every epoch
        loss[s - 1] = NAN
    m = label.measure_signature(_cols(loss), steps_per_epoch=50)
    assert m.signature == "N202" and m.evidence["position_in_epoch"] == 17
    loss[100] = NAN  # a nan at another position of the epoch breaks the pattern
    assert label.measure_signature(_cols(loss), steps_per_epoch=50).signature != "N202"


def test_fp16_benign_and_collapse():
    n = 200
    over = [1] * 6 + [0] * (n - 6)
    scale = [65536.0 / 2 ** min(k, 6) for k in range(n)]
    grad = [INF if o else 1.0 for o in over]
    m = label.measure_signature(_cols(_decay(n), grad, scale, over))
    assert m.signature == "F501" and m.first_nonfinite_step == 1
    over = [1] * n
    scale = [max(1.0, 65536.0 / 2 ** k) for k in range(n)]
    m = label.measure_signature(_cols([5e8] * n, [INF] * n, scale, over))
    assert m.signature == "F502"


def test_labels_ignore_the_injected_cause():
    """The same numbers give the same label whatever the spec says was injected."""
    spec = _spec(cause="none")
    traj = Trajectory(spec, [_attempt(_decay(60) + [NAN] * 10, 20)], {})
    assert label.measure_trajectory(traj).signature == "L301"


# ---- printers: a tiny trajectory read back by logsleuth -------------------------------


def _spec(**over) -> RunSpec:
    fields = dict(run_id="t0", seed=3, cause="test", model="mlp", data="blobs", loss="ce", lr=0.05,
                  batch_size=16, n_train=16 * 20, max_steps=160, clip=1.0, ckpt_every=50,
                  extra={"classes": 4, "dim": 8})
    fields.update(over)
    return RunSpec(**fields)


def _attempt(loss, spe, grad=None, scale=None, overflow=None, index=0, start=1) -> Attempt:
    att = Attempt(index, start, None)
    for k, v in enumerate(loss):
        s = start + k
        g = grad[k] if grad is not None else (1.0 if math.isfinite(v) else NAN)
        row = dict(step=s, epoch=(s - 1) // spe, it=(s - 1) % spe, loss=v, grad_norm=g, lr=0.05,
                   acc=0.5 if math.isfinite(v) else 0.25)
        if scale is not None:
            row.update(scale=scale[k], overflow=overflow[k])
        att.add(**row)
    return att


def _nan_run() -> Trajectory:
    """Descending for 120 steps, nan from step 121 on (20 steps per epoch)."""
    return Trajectory(_spec(), [_attempt(_decay(120) + [NAN] * 40, 20)], {})


SAFE_OPTIONS = {
    "caffe": {"style": "new", "avg": 1, "neg_nan": True, "net_echo": True, "tid": 1234, "acc": True},
    "tensorflow": {"variant": "slim", "dup": False, "tid": 4321},
    "keras": {"verbose": 1, "terminate": False, "summary": True},
    "pytorch": {"variant": "free", "template": "epoch", "reduce": "last", "e_fmt": True, "grad": True},
    "hf_trainer": {"filter": False, "tqdm": True, "args": True, "extra_bars": 1},
    "lightning": {"colab": False, "train_loss": True, "v_num": 3},
    "fairseq": {"style": "old", "note": "overflow detected"},
    "megatron": {"variant": "lm", "seqlen": 1024},
    "mmcv": {"engine": False, "memory": 1000},
    "detectron2": {"mem": 1000, "old": False},
    "deepspeed": {"raise_at_min": False, "zero3": False, "desc": "loss", "steps_per_print": 10},
}


def _render(name: str, traj: Trajectory, interval: int, opts: dict | None = None, kinds=()):
    meas = label.measure_trajectory(traj)
    printer = BY_NAME[name]
    rng = np.random.default_rng(0)
    done = compose.render_with(traj, meas, printer, interval, dict(opts or SAFE_OPTIONS[name]), rng, list(kinds))
    assert done is not None
    return meas, done


@pytest.mark.parametrize("name", sorted(SAFE_OPTIONS))
def test_printer_round_trip(name, tmp_path):
    traj = _nan_run()
    interval = 20 if name == "detectron2" else 5
    meas, done = _render(name, traj, interval)
    path = tmp_path / f"{name}.log"
    path.write_text(done.text)
    series = logsleuth.read_log(str(path))
    assert series.format == name
    nf = series.first_nonfinite()
    assert nf is not None
    failed = BY_NAME[name].printed_step(121, traj, SAFE_OPTIONS[name])  # in the format's convention
    if name == "megatron":  # the nan step omits ``lm loss``: N203, labelled with the run's own step
        assert (done.signature, done.first_nonfinite_step) == ("N203", failed)
        assert nf.metric == "loss_missing" and failed <= nf.step <= failed + interval
        return
    assert done.signature == meas.signature == "N201"
    assert nf.step == done.first_nonfinite_step
    assert failed <= done.first_nonfinite_step <= failed + interval  # the first record printed after it


#: printer styles taken from real logs of the framework (``corpus.fidelity``), and the
#: format logsleuth reads each as (fairseq's JSON records: the generic reader)
STYLES = [("fairseq", {"style": "json"}, "generic"), ("fairseq", {"style": "new"}, "fairseq"),
          ("deepspeed", {"pipe": True, "steps_per_print": 1}, "deepspeed"),
          ("tensorflow", {"variant": "od_api"}, "tensorflow")]


@pytest.mark.parametrize("name,opts,reads_as", STYLES)
def test_printer_styles_round_trip(name, opts, reads_as, tmp_path):
    traj = _nan_run()
    meas, done = _render(name, traj, 5, {**SAFE_OPTIONS[name], **opts})
    path = tmp_path / f"{name}.log"
    path.write_text(done.text)
    series = logsleuth.read_log(str(path))
    assert series.format == reads_as
    assert done.signature == meas.signature == "N201"
    assert series.first_nonfinite().step == done.first_nonfinite_step


def test_fidelity_shapes_ignore_numbers_and_bar_length():
    from corpus.fidelity import best_likeness, shape

    assert shape("iter: 20 / 70000, total loss: nan") == shape("iter: 7 / 9, total loss: 1.5e-3")
    assert shape("[=====>....] - loss: 0.5") == shape("[=>..........................] - loss: nan")
    assert best_likeness(shape("loss = 1"), [shape("loss = 2")]) == 1.0
    assert best_likeness(shape("loss = 1"), [shape("lr: 0.1, eta: 0:01:00, time: 0.5")]) < 0.5


def test_trained_on_printers_look_like_their_frameworks_real_logs():
    """The printers kept for frameworks that cannot run here print the record lines the
    real logs of those frameworks show (``python -m corpus.fidelity`` prints the table)."""
    from corpus.fidelity import measure

    for name, floor in (("caffe", 0.9), ("megatron", 0.6), ("deepspeed", 0.6), ("detectron2", 0.6)):
        fid = measure(name, per_printer=12)
        assert fid.real_logs and fid.printed_logs == 12
        assert fid.real_covered >= floor, (name, fid.worst(3))
        assert fid.printed_formats[name] == 12


def test_hf_nan_filter_hides_the_nan():
    traj = _nan_run()
    _, done = _render("hf_trainer", traj, 5, {"filter": True, "tqdm": True, "args": False, "extra_bars": 0})
    assert done.signature == "N203" and done.first_nonfinite_step == 121
    assert "'loss': nan" not in done.text and "'loss': 0.0" in done.text


def test_fp16_overflow_printers(tmp_path):
    n = 100
    over = [1] * 5 + [0] * (n - 5)
    scale = [65536.0 / 2 ** min(k, 5) for k in range(n)]
    grad = [INF if o else 1.0 for o in over]
    traj = Trajectory(_spec(fp16={"init_scale": 65536.0, "growth_interval": 1000, "min_scale": 1.0},
                            max_steps=n), [_attempt(_decay(n), 20, grad, scale, over)], {})
    meas = label.measure_trajectory(traj)
    assert meas.signature == "F501"
    for name, opts in (("deepspeed", SAFE_OPTIONS["deepspeed"]), ("fairseq", {"style": "new",
                                                                              "note": "overflow detected"})):
        _, done = _render(name, traj, 10, opts)
        path = tmp_path / f"{name}.log"
        path.write_text(done.text)
        series = logsleuth.read_log(str(path))
        assert series.format == name
        assert any(ev.kind == "overflow" for ev in series.events)
        assert done.signature == "F501"


def test_truncation_keeps_the_failure_line():
    traj = _nan_run()
    for seed in range(5):
        meas = label.measure_trajectory(traj)
        rng = np.random.default_rng(seed)
        done = compose.render_with(traj, meas, BY_NAME["pytorch"], 5, dict(SAFE_OPTIONS["pytorch"]), rng,
                                   ["truncate_head", "truncate_tail", "noise"])
        assert done is not None
        lines = done.text.split("\n")
        assert "nan" in lines[done.first_nonfinite_line - 1]
        assert f"iter {done.first_nonfinite_step} " in lines[done.first_nonfinite_line - 1]


def test_ranks_prefix_every_line():
    lines = [variations.Line("epoch 0 iter 5 loss 0.5", step=5, exact=True)]
    out = variations.ranks(lines, np.random.default_rng(1))
    assert len(out) in (2, 4) and all(ln.text.endswith("epoch 0 iter 5 loss 0.5") for ln in out)


def test_runs_are_reproducible():
    spec = causes.make_spec("loss_spike", 11, "rt")
    spec = RunSpec(**{**spec.__dict__, "max_steps": 60, "extra": {**spec.extra, "spike_steps": [30]}})
    a, b = runs.train(spec), runs.train(spec)
    assert a.attempts[0].rows["loss"] == b.attempts[0].rows["loss"]
    assert len(a.attempts[0]) == 60
