"""The injected causes: for each, a sampler of :class:`~corpus.runs.RunSpec` knobs.

A cause is what we *did* to the run (``injected_cause`` in the labels); the signature
is what the run then *did* (measured by :mod:`corpus.label`). The two usually agree, but
not always -- a learning rate "far too high" may still converge, a class that "can be
absent" may never be absent in 300 steps -- and the labels follow the measurement.

Every sampler varies seeds, batch sizes, learning rates, model sizes, steps per epoch,
schedules and run lengths (150 .. 3000 steps).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .runs import RunSpec

#: models and their data, loss and a sane learning rate per optimiser
MODELS: dict[str, dict] = {
    "mlp": {"data": "blobs", "loss": "ce", "lr": {"sgd": 0.1, "momentum": 0.03, "adam": 2e-3}},
    "cnn": {"data": "images", "loss": "ce", "lr": {"sgd": 0.05, "momentum": 0.02, "adam": 2e-3}},
    "gru": {"data": "sequences", "loss": "mse", "lr": {"sgd": 0.05, "momentum": 0.01, "adam": 3e-3}},
    "linreg": {"data": "regression", "loss": "mse", "lr": {"sgd": 0.05, "momentum": 0.01, "adam": 5e-3}},
    "mlp_reg": {"data": "regression", "loss": "mse", "lr": {"sgd": 0.01, "momentum": 0.003, "adam": 2e-3}},
}
#: SGD (no momentum) stability edge of ``linreg`` on ``synth.regression`` (feature scales up to 2)
LINREG_EDGE = 2.0 / 8.0


def _logu(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _pick(rng: np.random.Generator, items: list) -> object:
    return items[int(rng.integers(len(items)))]


def base(rng: np.random.Generator, model: str, optimizer: str | None = None) -> dict:
    """A healthy configuration of ``model`` as RunSpec fields (causes then edit it)."""
    m = MODELS[model]
    optimizer = optimizer or ("sgd" if model == "linreg" else str(_pick(rng, ["sgd", "momentum", "momentum", "adam"])))
    batch = int(_pick(rng, [8, 16, 32, 64, 128] if model != "gru" else [8, 16, 32]))
    spe = int(_logu(rng, 10, 400))
    max_steps = int(_logu(rng, 150, 3000 if model != "gru" else 1500))
    lr = m["lr"][optimizer] * _logu(rng, 0.5, 2.0)
    if model == "linreg" and optimizer == "sgd":
        lr = LINREG_EDGE * rng.uniform(0.15, 0.7)
    extra: dict = {"dim": int(rng.integers(6, 21)) if model != "gru" else int(rng.integers(3, 7)),
                   "classes": int(rng.integers(3, 7)), "sep": float(rng.uniform(1.0, 2.0)),
                   "label_noise": float(rng.uniform(0.02, 0.12)), "seq_len": int(rng.integers(6, 15)),
                   "amp": float(rng.uniform(0.6, 1.4)), "gamma": 0.1,
                   "decay_every": max(50, int(max_steps * rng.uniform(0.3, 0.6)))}
    return dict(model=model, data=m["data"], loss=m["loss"], lr=float(lr), batch_size=batch, n_train=batch * spe,
                max_steps=max_steps, optimizer=optimizer,
                hidden=int(_pick(rng, [8, 16, 24, 32, 48, 64] if model != "gru" else [8, 12, 16, 24])),
                schedule=str(_pick(rng, ["constant", "constant", "warmup", "step", "warmup_step", "cosine"])),
                warmup=int(rng.integers(10, max(11, max_steps // 5))),
                clip=float(_pick(rng, [0.5, 1.0, 5.0])) if rng.random() < 0.3 or model == "gru" else None,
                tail=int(rng.integers(8, 60)), ckpt_every=int(_pick(rng, [50, 100, 200, 250])), extra=extra)


def _model(rng: np.random.Generator, models: list[str]) -> str:
    return str(_pick(rng, models))


def _epochs(f: dict, spe: int) -> None:
    f["n_train"] = f["batch_size"] * spe


Sampler = Callable[[np.random.Generator], dict]


def none(rng):  # noqa: ANN001, D103 -- healthy, sometimes preempted and resumed
    f = base(rng, _model(rng, ["mlp", "mlp", "cnn", "cnn", "gru", "linreg", "mlp_reg"]))
    if rng.random() < 0.15:
        f.update(restart="preempt", attempts=2)
    return f


def lr_far_too_high(rng):  # noqa: ANN001, D103
    model = _model(rng, ["mlp", "cnn", "linreg", "linreg", "mlp_reg", "mlp_reg"])
    f = base(rng, model, str(_pick(rng, ["sgd", "momentum"])) if model != "linreg" else "sgd")
    f.update(clip=None, schedule=str(_pick(rng, ["constant", "constant", "step"])))
    if model == "linreg":
        f["lr"] = LINREG_EDGE * rng.uniform(2, 20)
    else:
        f["lr"] *= _logu(rng, 50, 2000)
    return f


def lr_too_high_gradual(rng):  # noqa: ANN001, D103 -- just past the SGD stability edge
    f = base(rng, "linreg", "sgd")
    f.update(lr=LINREG_EDGE * rng.uniform(1.005, 1.04), batch_size=int(_pick(rng, [128, 256, 256])), clip=None,
             max_steps=int(_logu(rng, 800, 3000)), schedule=str(_pick(rng, ["constant", "constant", "warmup"])))
    _epochs(f, int(_logu(rng, 10, 200)))
    if rng.random() < 0.1:
        f.update(restart="resume_reshuffle", attempts=2)
    return f


def rnn_no_clip(rng):  # noqa: ANN001, D103 -- lr moderately too high, no clipping
    f = base(rng, "gru", "momentum")
    f.update(lr=_logu(rng, 0.3, 0.7), clip=None, schedule=str(_pick(rng, ["constant", "warmup", "warmup"])),
             warmup=int(rng.integers(100, 300)),
             max_steps=int(_logu(rng, 300, 1500)))
    return f


def loss_weight_too_large(rng):  # noqa: ANN001, D103
    f = base(rng, _model(rng, ["mlp", "cnn"]), str(_pick(rng, ["sgd", "momentum"])))
    f["clip"] = None
    f["extra"]["aux_weight"] = float(_pick(rng, [10, 20, 50, 100, 200, 500]))
    if rng.random() < 0.5:  # the weight becomes too large only once the warm-up is done
        f.update(schedule="warmup", warmup=int(rng.integers(100, 400)), max_steps=max(f["max_steps"], 500))
    return f


def unnormalised_input(rng):  # noqa: ANN001, D103 -- raw 0-255 style inputs
    f = base(rng, _model(rng, ["mlp", "cnn", "mlp_reg"]), str(_pick(rng, ["sgd", "momentum"])))
    f["clip"] = None
    f["extra"]["input_scale"] = float(_pick(rng, [255.0, 255.0, 100.0]))
    return f


def bad_init(rng):  # noqa: ANN001, D103 -- weights ~ N(0, std) with a huge std
    f = base(rng, _model(rng, ["mlp", "cnn", "mlp_reg", "mlp_reg"]), str(_pick(rng, ["sgd", "momentum"])))
    f.update(clip=None, lr=f["lr"] * 3)
    f["extra"]["init_std"] = _logu(rng, 3.0, 20.0)
    return f


def unsafe_log(rng):  # noqa: ANN001, D103 -- log of a saturating probability
    f = base(rng, "mlp", "momentum")
    loss = str(_pick(rng, ["unsafe_bce", "unsafe_bce", "unsafe_ce"]))
    f.update(loss=loss, lr=_logu(rng, 0.015, 0.06) if loss == "unsafe_bce" else _logu(rng, 0.1, 0.4), clip=None,
             schedule="warmup", warmup=int(rng.integers(50, 300)), max_steps=int(_logu(rng, 800, 3000)))
    f["extra"].update(spread=float(rng.uniform(0.0, 0.3)), sep=float(rng.uniform(2.0, 4.0)),
                      label_noise=float(rng.uniform(0.0, 0.02)))
    return f


def label_count_zero(rng):  # noqa: ANN001, D103 -- loss / count of a label that can be absent
    f = base(rng, "mlp")
    f["batch_size"] = int(_pick(rng, [8, 16, 32, 64]))
    _epochs(f, int(_logu(rng, 10, 400)))
    expected_first = _logu(rng, 30, 3000)  # steps until a batch without the rare class
    f.update(loss="class_normalised", clip=None)
    f["extra"]["rare"] = float(1 - expected_first ** (-1.0 / f["batch_size"]))
    if rng.random() < 0.2:
        f.update(restart="resume_reshuffle", attempts=2)
    return f


def softmax_overflow(rng):  # noqa: ANN001, D103 -- softmax without the max subtraction
    f = base(rng, "mlp", "momentum")
    f.update(loss="naive_softmax", lr=_logu(rng, 0.05, 0.15), clip=None, schedule="warmup",
             warmup=int(rng.integers(50, 300)), max_steps=int(_logu(rng, 800, 3000)))
    f["extra"].update(spread=float(rng.uniform(0.3, 0.6)), sep=float(rng.uniform(1.5, 3.0)))
    return f


def corrupt_sample(rng):  # noqa: ANN001, D103 -- nan/inf in one item, no shuffling
    f = base(rng, _model(rng, ["mlp", "cnn", "gru", "mlp_reg"]))
    spe = int(_logu(rng, 10, 120))
    _epochs(f, spe)
    f["shuffle"] = False
    variant = _pick(rng, ["guard", "guard", "resume_same", "resume_same", "rerun", "single"])
    if variant == "guard":  # a loop that skips non-finite steps: isolated nans every epoch
        f.update(guard=True, max_steps=max(f["max_steps"], spe * int(rng.integers(3, 8))))
    elif variant in ("resume_same", "rerun"):
        f.update(restart=variant, attempts=int(rng.integers(2, 4)), ckpt_every=int(_pick(rng, [20, 50, 100])))
    reach = min(spe, max(2, f["max_steps"] - 1))
    f["extra"].update(corrupt_index=int(rng.integers(0, f["batch_size"] * reach)),
                      corrupt_value=str(_pick(rng, ["nan", "nan", "inf"])))
    return f


def _fp16(rng: np.random.Generator, min_scale: float | None = None) -> dict:
    return {"init_scale": float(2 ** int(_pick(rng, [16, 16, 20, 24, 32]))),
            "growth_interval": int(_pick(rng, [100, 200, 500, 1000, 2000])),
            "min_scale": min_scale if min_scale is not None else float(_pick(rng, [1.0, 1e-4]))}


def fp16_benign(rng):  # noqa: ANN001, D103
    f = base(rng, _model(rng, ["mlp", "cnn", "gru", "mlp_reg"]))
    f["fp16"] = _fp16(rng)
    return f


def fp16_collapse(rng):  # noqa: ANN001, D103 -- gradients overflow fp16 at any scale
    if rng.random() < 0.65:  # unscaled regression targets: huge gradients from step 1
        f = base(rng, _model(rng, ["linreg", "mlp_reg"]))
        f["extra"]["target_scale"] = _logu(rng, 5e4, 5e5)
    else:  # growing gradients (just past the stability edge) until they overflow even at scale 1
        f = base(rng, "linreg", "sgd")
        f.update(lr=LINREG_EDGE * rng.uniform(1.0, 1.03), batch_size=int(_pick(rng, [128, 256])),
                 max_steps=int(_logu(rng, 500, 3000)), schedule="constant", clip=None)
        _epochs(f, int(_logu(rng, 10, 200)))
    f["fp16"] = _fp16(rng, 1.0)
    return f


def lr_far_too_low(rng):  # noqa: ANN001, D103
    f = base(rng, _model(rng, ["mlp", "cnn", "gru", "linreg", "mlp_reg"]))
    f["lr"] *= _logu(rng, 1e-5, 3e-4)
    return f


def dead_network(rng):  # noqa: ANN001, D103 -- first ReLU layer dead from the start
    f = base(rng, _model(rng, ["mlp", "cnn"]))
    f["extra"]["dead_bias"] = _logu(rng, 20.0, 100.0)
    return f


def loss_spike(rng):  # noqa: ANN001, D103 -- a one-off batch of outliers, clipped update
    f = base(rng, _model(rng, ["mlp", "cnn", "mlp_reg"]))
    n = f["max_steps"]
    f["clip"] = float(_pick(rng, [0.5, 1.0, 2.0]))
    f["extra"].update(spike_steps=sorted({int(rng.integers(max(30, n // 5), max(31, n * 4 // 5)))
                                          for _ in range(int(rng.integers(1, 3)))}),
                      spike_factor=_logu(rng, 8, 40))
    return f


NOTES = {
    "none": "a healthy configuration; 15% are preempted once and resumed from the last checkpoint",
    "lr_far_too_high": "learning rate 50-2000x a sane one (2-20x the SGD edge for linear regression)",
    "lr_too_high_gradual": "linear regression with SGD 0.5-4% past its stability edge: geometric growth; "
                           "10% re-queued with a new data order",
    "rnn_no_clip": "GRU, momentum SGD, learning rate 0.3-0.7, no gradient clipping, often with warm-up",
    "loss_weight_too_large": "an auxiliary MSE term weighted 10-500 (half with a warm-up that reaches it late)",
    "unnormalised_input": "inputs multiplied by 255 (or 100): raw-pixel style",
    "bad_init": "every weight drawn from N(0, std) with std 3-20",
    "unsafe_log": "hand-written BCE / cross-entropy taking log of a saturating probability (0 * log 0)",
    "label_count_zero": "loss divided by the count of a rare label that some batches lack (0 / 0); "
                        "20% re-queued with a new data order",
    "softmax_overflow": "softmax as exp(z) / sum(exp(z)) without subtracting the max (inf / inf)",
    "corrupt_sample": "one nan/inf item at a fixed index, no shuffling: a loop that skips non-finite steps "
                      "(isolated nans every epoch), or resumed / re-run 2-3 times (nan at the same step), or once",
    "fp16_benign": "simulated fp16 dynamic loss scaling (init 2^16-2^32): overflow skips while the scale settles",
    "fp16_collapse": "gradients overflow fp16 even at the minimum scale (unscaled regression targets, or "
                     "slowly growing gradients): the scale collapses and every step is skipped",
    "lr_far_too_low": "learning rate 1e-5 to 3e-4 of a sane one",
    "dead_network": "first-layer ReLU bias of -20 to -100: a dead network",
    "loss_spike": "one or two batches of outliers (inputs x8-40, labels shifted) with gradient clipping: "
                  "a recovered spike",
}

#: cause -> (sampler, relative frequency in the corpus)
CAUSES: dict[str, tuple[Sampler, float]] = {
    "none": (none, 2.0),
    "lr_far_too_high": (lr_far_too_high, 0.8),
    "lr_too_high_gradual": (lr_too_high_gradual, 1.6),
    "rnn_no_clip": (rnn_no_clip, 0.7),
    "loss_weight_too_large": (loss_weight_too_large, 0.8),
    "unnormalised_input": (unnormalised_input, 0.5),
    "bad_init": (bad_init, 0.6),
    "unsafe_log": (unsafe_log, 1.5),
    "label_count_zero": (label_count_zero, 1.3),
    "softmax_overflow": (softmax_overflow, 1.0),
    "corrupt_sample": (corrupt_sample, 1.8),
    "fp16_benign": (fp16_benign, 1.0),
    "fp16_collapse": (fp16_collapse, 1.4),
    "lr_far_too_low": (lr_far_too_low, 0.9),
    "dead_network": (dead_network, 0.7),
    "loss_spike": (loss_spike, 1.4),
}


def make_spec(cause: str, run_seed: int, run_id: str) -> RunSpec:
    """The spec of one run of ``cause``, drawn from ``run_seed``."""
    fields = CAUSES[cause][0](np.random.default_rng(run_seed))
    return RunSpec(run_id=run_id, seed=run_seed, cause=cause, **fields)


def plan(n_runs: int, seed: int) -> list[RunSpec]:
    """``n_runs`` specs, causes drawn by frequency (every cause at least once when n allows)."""
    rng = np.random.default_rng(seed)
    names = list(CAUSES)
    weights = np.array([CAUSES[c][1] for c in names])
    chosen = list(names[: min(n_runs, len(names))])
    chosen += list(rng.choice(names, size=max(0, n_runs - len(chosen)), p=weights / weights.sum()))
    specs = []
    for i, cause in enumerate(chosen):
        specs.append(make_spec(str(cause), seed * 100_003 + i, f"r{seed % 100:02d}{i:04d}"))
    return specs
