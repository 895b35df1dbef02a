"""The run list: which framework, printing variant and injected cause, with what knobs.

Deterministic given the seed (``random.Random(seed)``). The knobs of a cause are what we
*do* to a run; what the run then did is measured afterwards (:mod:`corpus.frameworks.build`).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent

# framework -> [(variant, [causes...], runs per (variant, cause) cell)]
CAUSES = ["none", "lr_far_too_high", "lr_too_high_gradual", "rnn_no_clip", "corrupt_sample", "unsafe_log",
          "label_count_zero", "unnormalised_input", "bad_init", "lr_far_too_low", "lr_zero", "bf16", "fp16"]
TABLE = {
    "hf": [("tqdm", ["none", "lr_far_too_high", "lr_too_high_gradual", "corrupt_sample", "unsafe_log",
                     "label_count_zero", "bad_init", "lr_far_too_low", "bf16"], 2),
           ("tqdm-nofilter", ["corrupt_sample", "unsafe_log", "lr_far_too_high"], 1),
           ("bert", ["none", "lr_far_too_high", "lr_far_too_low"], 1)],
    "hf4": [("tqdm", ["none", "lr_far_too_high", "lr_too_high_gradual", "corrupt_sample", "unsafe_log",
                      "label_count_zero", "lr_far_too_low"], 2),
            ("tqdm-nofilter", ["unsafe_log", "corrupt_sample"], 1),
            ("bert", ["none", "lr_far_too_high"], 1)],
    "torch": [(v, ["none", "lr_far_too_high", "lr_too_high_gradual", "rnn_no_clip", "corrupt_sample", "unsafe_log",
                   "label_count_zero", "unnormalised_input", "bad_init", "lr_far_too_low", "lr_zero", "bf16",
                   "fp16"], 1) for v in ("print", "logging", "tqdm")],
    "lightning": [(v, ["none", "lr_far_too_high", "lr_too_high_gradual", "rnn_no_clip", "corrupt_sample",
                       "unsafe_log", "bad_init", "lr_far_too_low", "bf16"], 1) for v in ("tqdm", "rich")],
    "keras": [(v, ["none", "lr_far_too_high", "lr_too_high_gradual", "corrupt_sample", "unsafe_log",
                   "unnormalised_input", "bad_init", "lr_far_too_low"], 1) for v in ("verbose1", "verbose2")],
}
# Drawn after TABLE (so adding here leaves the runs above unchanged): more failures and requeues.
EXTRA = [("hf", "notqdm", ["none", "unsafe_log", "lr_far_too_high", "corrupt_sample"], 1),
         ("torch", "print", ["corrupt_sample", "unsafe_log", "rnn_no_clip", "fp16"], 1),
         ("torch", "tqdm", ["corrupt_sample", "unsafe_log", "rnn_no_clip", "fp16"], 1),
         ("lightning", "tqdm", ["corrupt_sample", "label_count_zero"], 1),
         ("keras", "verbose1", ["corrupt_sample", "lr_too_high_gradual"], 1)]
# The TensorFlow families, drawn after EXTRA (so every run above keeps its spec).
TF_RUNS = [("tf", "print", ["none", "lr_far_too_high", "lr_too_high_gradual", "rnn_no_clip", "corrupt_sample",
                            "unsafe_log", "unnormalised_input", "lr_far_too_low", "fp16"], 1),
           ("tf", "tfprint", ["none", "lr_far_too_high", "corrupt_sample", "bad_init", "fp16", "bf16"], 1),
           ("tf", "logging", ["none", "rnn_no_clip", "unsafe_log", "label_count_zero", "lr_zero"], 1),
           ("tf", "check_numerics", ["none", "lr_far_too_high", "lr_too_high_gradual", "corrupt_sample",
                                     "unsafe_log"], 1),
           ("keras_tf", "verbose1", ["none", "lr_far_too_high", "lr_too_high_gradual", "corrupt_sample",
                                     "unsafe_log", "unnormalised_input", "bad_init", "lr_far_too_low"], 1),
           ("keras_tf", "verbose2", ["none", "lr_far_too_high", "corrupt_sample", "unsafe_log",
                                     "label_count_zero", "lr_zero"], 1)]
# TRL, Accelerate and mmengine, drawn after TF_RUNS (so every run above keeps its spec).
# No fp16 here: Trainer's and Accelerate's fp16 on the CPU are silently fp32, mmengine's AmpOptimWrapper
# asserts a GPU. No unsafe_log for TRL: a tiny LM's logits never spread far enough for a softmax to underflow.
EXTRA_FW = [("trl", "tqdm", ["none", "lr_far_too_high", "corrupt_sample", "label_count_zero", "bad_init",
                             "lr_far_too_low", "bf16", "lr_zero"], 1),
            ("trl", "tqdm-nofilter", ["none", "corrupt_sample", "label_count_zero"], 1),
            ("trl", "notqdm", ["none", "corrupt_sample", "lr_far_too_high"], 1),
            ("accelerate", "launch2-logging", ["none", "lr_far_too_high", "corrupt_sample", "unsafe_log", "bf16"], 1),
            ("accelerate", "launch2-print", ["none", "corrupt_sample", "label_count_zero"], 1),
            ("accelerate", "launch-cpu-print", ["bad_init", "lr_far_too_low"], 1),
            ("accelerate", "python-logging", ["none", "lr_too_high_gradual", "unnormalised_input", "rnn_no_clip"], 1),
            ("mmengine", "noclip", ["none", "lr_far_too_high", "lr_too_high_gradual", "corrupt_sample", "unsafe_log",
                                    "bad_init", "lr_far_too_low", "rnn_no_clip"], 1),
            ("mmengine", "clip", ["none", "corrupt_sample", "label_count_zero", "unnormalised_input", "unsafe_log"], 1),
            ("accelerate", "launch2-rankprint", ["none", "corrupt_sample"], 1)]
# Older releases of families above (keras2: Keras 2 as tf.keras; lightning1: pytorch_lightning 1.9;
# hf436: transformers 4.36), drawn after EXTRA_FW (so every run above keeps its spec).
OLD_FW = [("keras2", "verbose1", ["none", "lr_far_too_high", "lr_too_high_gradual", "corrupt_sample", "unsafe_log",
                                  "bad_init", "lr_far_too_low"], 1),
          ("keras2", "verbose2", ["none", "lr_far_too_high", "corrupt_sample", "unsafe_log", "unnormalised_input"], 1),
          ("lightning1", "tqdm", ["none", "lr_far_too_high", "lr_too_high_gradual", "rnn_no_clip", "unsafe_log",
                                  "bad_init", "lr_far_too_low", "bf16", "label_count_zero"], 1),
          ("lightning1", "tqdm", ["corrupt_sample"], 2),
          ("hf436", "tqdm", ["none", "lr_far_too_high", "lr_too_high_gradual", "unsafe_log", "label_count_zero",
                             "bad_init", "lr_far_too_low"], 1),
          ("hf436", "tqdm", ["corrupt_sample"], 2),
          ("hf436", "tqdm-nofilter", ["corrupt_sample", "unsafe_log"], 1),
          ("hf436", "bert", ["none"], 1)]
PACKAGE = {"hf": ("requirements.txt", "transformers"), "hf4": ("requirements-hf4.txt", "transformers"),
           "torch": (None, "torch"), "lightning": ("requirements.txt", "lightning"),
           "keras": ("requirements.txt", "keras"),
           "tf": ("requirements-tf.txt", "tensorflow-cpu"), "keras_tf": ("requirements-tf.txt", "keras"),
           "trl": ("requirements-extra.txt", "trl"), "accelerate": ("requirements-extra.txt", "accelerate"),
           "mmengine": ("requirements-extra.txt", "mmengine"),
           "keras2": ("requirements-keras2.txt", "tf-keras"), "lightning1": ("requirements-old.txt", "pytorch-lightning"),
           "hf436": ("requirements-old.txt", "transformers")}
HF = ("hf", "hf4", "hf436")  # the Trainer families
KERAS = ("keras", "keras_tf", "keras2")


def version(fw: str) -> str:
    req, pkg = PACKAGE[fw]
    if req is None:
        return "torch==2.13.0"
    m = re.search(rf"^{pkg}==(\S+)", (HERE / req).read_text(), re.M)
    return f"{pkg}=={m.group(1)}"


def knobs(cause: str, r: random.Random) -> dict:
    """The spec fields of one injected cause (task, model, optimizer, lr, corruption)."""
    s = {"task": "blobs", "classes": r.choice([3, 4, 5]), "dim": 16, "optimizer": "adam",
         "lr": r.choice([3e-3, 1e-2]), "sep": 2.0, "loss": "ce"}
    if cause == "lr_far_too_high":
        s.update(optimizer="sgd", momentum=0.9, lr=r.choice([30.0, 100.0, 300.0, 1000.0]))
    elif cause == "lr_too_high_gradual":
        s.update(task="regress", optimizer="sgd", lr_edge_factor=r.uniform(1.005, 1.03), loss="mse", batch_all=True)
    elif cause == "rnn_no_clip":
        s.update(task="seq", optimizer="sgd", momentum=0.9, lr=r.uniform(0.5, 3.0), seq_len=12, dim=8)
    elif cause == "corrupt_sample":
        s.update(corrupt=True, corrupt_value=r.choice(["nan", "inf"]))
    elif cause == "unsafe_log":
        opt, lr, sep = r.choice([("sgd", 0.01, 1.0), ("adam", 0.003, 2.0), ("adam", 0.002, 2.0), ("adam", 0.003, 1.0)])
        s.update(task="binary", loss="unsafe_bce", optimizer=opt, momentum=0.9, lr=lr, sep=sep)
    elif cause == "label_count_zero":
        s.update(loss="count_norm", classes=r.choice([5, 6, 8]))
    elif cause == "unnormalised_input":
        s.update(optimizer="sgd", momentum=0.9, lr=0.1, input_scale=255.0)
    elif cause == "bad_init":
        s.update(optimizer="sgd", lr=0.05, init_std=r.choice([5.0, 10.0, 20.0]))
    elif cause == "lr_far_too_low":
        s.update(optimizer="sgd", lr=r.choice([1e-6, 1e-7]))
    elif cause == "lr_zero":
        s.update(optimizer="sgd", lr=0.0)
    elif cause == "bf16":
        s.update(precision="bf16")
    elif cause == "fp16":
        s.update(precision="fp16", init_scale=2.0 ** r.choice([20, 24, 28, 32]))
    return s


def plan(seed: int = 1, only: list[str] | None = None, limit: int = 0) -> list[dict]:
    r = random.Random(seed)
    specs = []
    for fw, cells in TABLE.items():
        n = 0
        for variant, causes, reps in cells:
            for cause in causes:
                for rep in range(reps):
                    spec = make_spec(fw, variant, cause, r)
                    spec["id"] = f"{fw}-{variant}-{cause}-{rep}"
                    n += 1
                    if (not only or fw in only) and (not limit or n <= limit):
                        specs.append(spec)
    for cells, suffix in ((EXTRA, "x"), (TF_RUNS, ""), (EXTRA_FW, ""), (OLD_FW, "")):  # in this order, after TABLE
        specs += _drawn(cells, suffix, r, only)
    return specs


def _drawn(cells: list, suffix: str, r: random.Random, only: list[str] | None) -> list[dict]:
    """The specs of ``(framework, variant, causes, reps)`` cells, every one drawn from ``r``
    (kept or not), so that a list's runs do not depend on ``only``."""
    specs = []
    for fw, variant, causes, reps in cells:
        for cause in causes:
            for rep in range(reps):
                spec = make_spec(fw, variant, cause, r)
                spec["id"] = f"{fw}-{variant}-{cause}-{suffix}{rep}"
                if not only or fw in only:
                    specs.append(spec)
    return specs


def make_spec(fw: str, variant: str, cause: str, r: random.Random) -> dict:
    s = knobs(cause, r)
    s.update(framework=fw, framework_version=version(fw), variant=variant, cause=cause,
             seed=r.randrange(1, 10_000), unbuffered=r.random() < 0.5, attempts=1, requeue="",
             artefacts=[], options={})
    bs = r.choice([16, 32])
    n = bs * r.choice([20, 25, 40])
    if s.get("batch_all"):
        n, bs = 256, 256
    s.update(n_samples=n, batch_size=bs, steps_per_epoch=n // bs)
    s["steps"] = r.choice([120, 160, 200, 250])
    if cause in ("lr_too_high_gradual", "unsafe_log"):
        s["steps"] = r.choice([250, 300, 400])
    s["log_every"] = r.choice([1, 5, 10]) if fw not in HF else r.choice([1, 5, 10, 20])
    if s.get("corrupt"):
        s["corrupt_index"] = r.randrange(n // 3, n)
        s["attempts"] = r.choice([1, 2, 2, 3])
        s["requeue"] = r.choice(["scratch", "resume"]) if s["attempts"] > 1 else ""
        s["ckpt_every"] = 20
        s["on_nonfinite"] = "raise" if s["attempts"] > 1 else r.choice(["skip", "continue"])
    if fw in HF:
        s["hides_nan"] = "nofilter" not in variant
        s["hf_info"] = r.random() < 0.5
        s["hf_clip"] = 0.0 if cause in ("lr_far_too_high", "lr_too_high_gradual", "bad_init") else r.choice([1.0, 0.0])
        s["model"] = "bert" if variant == "bert" else "mlp"
        if variant == "bert":
            s.update(task="tokens", vocab=64, seq_len=16)
        s["artefacts"] = ["out/checkpoint-*/trainer_state.json"]
        s["ckpt_every"] = s.get("ckpt_every") or r.choice([50, 100])
    if fw in ("lightning", "lightning1"):
        s["artefacts"] = ["lightning_logs/*/metrics.csv"]
    if fw == "tf":  # how the loop is written: tf.function or eager, how it prints
        s["tf_function"] = variant == "tfprint" or r.choice([True, True, True, False])
        s["print_style"] = r.choice(["step", "epoch", "guide"])
        if variant == "logging":
            s["log_style"] = r.choice(["absl", "python"])
    if fw in KERAS:
        s["artefacts"] = ["training.csv"]
        s["requeue"] = "scratch" if s["requeue"] else ""
        s["terminate_on_nan"] = r.random() < 0.7 or s["attempts"] > 1
    s["options"] = {k: s[k] for k in ("optimizer", "precision", "init_std", "input_scale", "loss", "task",
                                      "on_nonfinite", "unbuffered", "batch_size", "tf_function", "print_style",
                                      "log_style") if k in s}
    if fw in ("trl", "accelerate", "mmengine"):
        extra_fw_knobs(s, r)
    return s


def extra_fw_knobs(s: dict, r: random.Random) -> None:
    """The TRL / Accelerate / mmengine fields (drawn last: the runs of the other families keep theirs)."""
    fw, variant, cause = s["framework"], s["variant"], s["cause"]
    no_clip = cause in ("lr_far_too_high", "lr_too_high_gradual", "bad_init", "rnn_no_clip")
    if fw == "trl":  # the Trainer's knobs, as for hf
        s["hides_nan"] = "nofilter" not in variant
        s["hf_info"] = r.random() < 0.5
        s["hf_clip"] = 0.0 if no_clip else r.choice([1.0, 0.0])
        s["ckpt_every"] = s.get("ckpt_every") or r.choice([50, 100])
        s["artefacts"] = ["out/checkpoint-*/trainer_state.json"]
        s["task"] = "text"
    if fw == "accelerate":
        s["ranks"] = 2 if variant.startswith("launch2") else 1
        s["steps_per_epoch"] = -(-s["n_samples"] // (s["batch_size"] * s["ranks"]))
        s["clip"] = 0.0 if no_clip else r.choice([1.0, 0.0])
        s["ckpt_every"] = s.get("ckpt_every") or 50
    if fw == "mmengine":
        s["clip"] = r.choice([1.0, 5.0]) if variant == "clip" else 0.0
        s["max_epochs"] = -(-s["steps"] // s["steps_per_epoch"])
        s["steps"] = s["max_epochs"] * s["steps_per_epoch"]  # by epochs: the whole last epoch runs
        s["val_interval"] = max(1, s["max_epochs"] // r.choice([3, 4, 5]))
        s["ckpt_every"] = s.get("ckpt_every") or 50
        s["artefacts"] = ["work_dir/*/*.log", "work_dir/*/vis_data/scalars.json"]
    s["options"].update({k: s[k] for k in ("task", "clip", "ranks", "hf_clip", "max_epochs") if k in s})
