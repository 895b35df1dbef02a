"""mmengine ``Runner`` runs: a tiny ``BaseModel`` trained by epochs, logged by ``LoggerHook``.

The model (the project's MLP / GRU / linear model inside a ``BaseModel``, the project's
losses in ``forward(mode="loss")``), the generated dataset and a validation metric are
registered in mmengine's registries, so the Runner is built from a plain config as
OpenMMLab projects build it: ``train_cfg=dict(by_epoch=True, max_epochs=E,
val_interval=V)``, ``default_hooks=dict(logger=dict(type="LoggerHook", interval=N),
checkpoint=...)``, ``optim_wrapper=dict(optimizer=..., clip_grad=...)`` (``variant``
``clip``: ``clip_grad=dict(max_norm=...)``, whose grad norm the log prints; ``noclip``:
none). What is printed is mmengine's own: the environment and config dump at start-up,
the hook table, ``Epoch(train)  [1][10/20]  lr: ...  eta: ...  time: ...  loss: ...``
(the loss smoothed over the log processor's 10-iteration window), ``Epoch(val)`` lines,
checkpoint saves; the same lines go to ``work_dir/<timestamp>/<timestamp>.log`` (kept as
an artefact with ``vis_data/scalars.json``). ``AmpOptimWrapper`` asserts a GPU, so no
mixed-precision run here.

The trace is written by a custom ``Hook`` (``after_train_iter``, after the LoggerHook) with
the loss ``forward`` computed, step = ``runner.iter + 1`` = (epoch - 1) x T + i for the
log's ``[epoch][i/T]``; the grad norm is the one ``clip_grad`` computed, or (no clipping)
taken in an optimizer step pre-hook. A re-queued run resumes with ``resume=True`` (the
latest epoch checkpoint in ``work_dir``) or starts from scratch.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from corpus.frameworks import common as C


def read(spec_file: str) -> dict:
    with open(spec_file) as f:
        return json.load(f)


def register(spec: dict, trace: C.Trace) -> None:
    """The model, datasets, metric and trace hook of this run, in mmengine's registries."""
    from mmengine.evaluator import BaseMetric
    from mmengine.hooks import Hook
    from mmengine.model import BaseModel
    from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS

    @MODELS.register_module()
    class SpecModel(BaseModel):
        def __init__(self, spec_file: str):
            super().__init__()
            self.spec = read(spec_file)
            self.net = C.make_model(self.spec)
            self.last, self.gn = float("nan"), None

        def forward(self, inputs, labels, mode="tensor"):
            out = self.net(inputs)
            if mode == "loss":
                loss = C.loss_fn(self.spec, out, labels)
                self.last = float(loss.detach())
                return dict(loss=loss)
            if mode == "predict":
                return [dict(loss=float(C.loss_fn(self.spec, out, labels)), n=len(labels),
                             correct=correct(self.spec, out, labels))]
            return out

    @DATASETS.register_module()
    class SpecData(torch.utils.data.Dataset):
        def __init__(self, spec_file: str, split: str = "train"):
            s = read(spec_file)
            if split == "val":  # the first 128 training samples, uncorrupted (no held-out draws of the task)
                s = {**s, "corrupt_index": None}
            self.x, self.y = (torch.from_numpy(a) for a in C.make_data(s))
            if split == "val":
                self.x, self.y = self.x[:128], self.y[:128]

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return dict(inputs=self.x[i], labels=self.y[i])

    @METRICS.register_module()
    class LossAcc(BaseMetric):
        def process(self, data_batch, data_samples):
            self.results.extend(data_samples)

        def compute_metrics(self, results):
            n = sum(r["n"] for r in results)
            m = {"val_loss": sum(r["loss"] * r["n"] for r in results) / n}
            if results[0]["correct"] is not None:
                m["accuracy"] = 100.0 * sum(r["correct"] for r in results) / n
            return m

    @HOOKS.register_module()
    class TraceHook(Hook):
        priority = "LOW"  # after the LoggerHook (BELOW_NORMAL): the step's line is printed first

        def before_train(self, runner):
            model = runner.model
            runner.optim_wrapper.optimizer.register_step_pre_hook(
                lambda opt, args, kw: setattr(model, "gn", C.grad_norm(model.parameters())))

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            model, step = runner.model, runner.iter + 1
            gn = model.gn
            if spec.get("clip") and runner.message_hub.get_scalar("train/grad_norm") is not None:
                gn = runner.message_hub.get_scalar("train/grad_norm").current()
            trace.step(step, model.last, gn)
            model.gn = None
            if spec.get("on_nonfinite") == "raise" and not math.isfinite(model.last):
                raise FloatingPointError(f"loss is {model.last} at iter {step}, stopping")


def correct(spec: dict, out: torch.Tensor, y: torch.Tensor):
    if spec["task"] == "regress":
        return None
    pred = (out.squeeze(-1) > 0).long() if spec["task"] == "binary" else out.argmax(-1)
    return int((pred == y.long()).sum())


def config(spec: dict, spec_file: str) -> dict:
    """The Runner's config, as an OpenMMLab config file would write it."""
    spe = spec["steps_per_epoch"]
    optimizer = dict(type="Adam", lr=spec["lr"]) if spec.get("optimizer") == "adam" else \
        dict(type="SGD", lr=spec["lr"], momentum=spec.get("momentum", 0.0))
    optim_wrapper = dict(type="OptimWrapper", optimizer=optimizer)
    if spec.get("clip"):
        optim_wrapper["clip_grad"] = dict(max_norm=spec["clip"], norm_type=2)
    loader = dict(batch_size=spec["batch_size"], num_workers=0, collate_fn=dict(type="default_collate"))
    return dict(
        model=dict(type="SpecModel", spec_file=spec_file),
        work_dir="work_dir",
        train_dataloader=dict(dataset=dict(type="SpecData", spec_file=spec_file),
                              sampler=dict(type="DefaultSampler", shuffle=spec.get("shuffle", True)), **loader),
        val_dataloader=dict(dataset=dict(type="SpecData", spec_file=spec_file, split="val"),
                            sampler=dict(type="DefaultSampler", shuffle=False), **loader),
        val_evaluator=dict(type="LossAcc"),
        train_cfg=dict(by_epoch=True, max_epochs=spec["max_epochs"], val_interval=spec["val_interval"]),
        val_cfg=dict(),
        optim_wrapper=optim_wrapper,
        param_scheduler=[dict(type="ConstantLR", factor=1.0, by_epoch=True)],
        default_hooks=dict(logger=dict(type="LoggerHook", interval=spec["log_every"]),
                           checkpoint=dict(type="CheckpointHook", interval=max(1, spec["ckpt_every"] // spe),
                                           max_keep_ckpts=2)),
        custom_hooks=[dict(type="TraceHook")],
        randomness=dict(seed=spec["seed"]),
        resume=bool(spec.get("resume")),
    )


def main() -> None:
    spec = C.load_spec()
    C.seed_all(spec["seed"])
    C.resolve_lr(spec, C.make_data(spec)[0])
    spec_file = "run_spec.json"  # the resolved spec (lr of the gradual cause), read by the registered classes
    with open(spec_file, "w") as f:
        json.dump(spec, f)
    trace = C.Trace(spec)
    register(spec, trace)
    from mmengine.config import Config
    from mmengine.runner import Runner
    np.seterr(all="ignore")
    runner = Runner.from_cfg(Config(config(spec, spec_file)))
    runner.train()
    trace.close()


if __name__ == "__main__":
    main()
