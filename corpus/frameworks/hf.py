"""Hugging Face ``Trainer`` runs (both generations: the one installed in the running venv).

The model is built from code, never downloaded: a 2-layer MLP (``variant`` ``tqdm`` /
``tqdm-nofilter``) or a 2-layer ``BertForSequenceClassification`` with hidden size 32
(``bert``), wrapped so that the loss is the project's (hand-written unsafe ones included)
and so that the wrapper can hand the loss the code computed to a ``TrainerCallback``,
which writes the trace (``state.global_step``, the step the tqdm bar counts). What is
printed is the Trainer's own: the tqdm bar, the logged dicts (``tqdm.write``), the
``***** Running training *****`` block when the script sets ``log_level="info"`` (half
of the runs, as the example scripts do), checkpoints (``out/checkpoint-N`` with
``trainer_state.json``) and the resume banner on a re-queued attempt.
``logging_nan_inf_filter`` is on (the default) except in ``tqdm-nofilter``; ``notqdm``
runs with ``disable_tqdm=True`` (only the dicts: no step is printed at all).
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from corpus.frameworks import common as C


class Wrapped(nn.Module):
    """The inner model plus the run's loss; remembers the last loss for the trace callback."""

    def __init__(self, inner: nn.Module, spec: dict):
        super().__init__()
        self.inner, self.spec, self.last_loss = inner, spec, float("nan")

    def forward(self, x=None, input_ids=None, labels=None):
        if input_ids is not None:
            logits = self.inner(input_ids=input_ids).logits
        else:
            logits = self.inner(x)
        loss = C.loss_fn(self.spec, logits, labels)
        self.last_loss = float(loss.detach())
        return {"loss": loss, "logits": logits}


class Data(torch.utils.data.Dataset):
    def __init__(self, x, y, key):
        self.x, self.y, self.key = torch.from_numpy(x), torch.from_numpy(y), key

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {self.key: self.x[i], "labels": self.y[i]}


def build_model(spec: dict) -> nn.Module:
    if spec.get("model") == "bert":
        from transformers import BertConfig, BertForSequenceClassification
        cfg = BertConfig(vocab_size=spec["vocab"], hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=32, num_labels=2)
        inner = BertForSequenceClassification(cfg)
        C.init_model(inner, spec)
    else:
        inner = C.make_model(spec)
    return Wrapped(inner, spec)


def trace_callback(spec: dict, trace: C.Trace, model: nn.Module, last_loss):
    """The ``TrainerCallback`` that writes the trace at each optimizer step: the loss the
    step computed (``last_loss()``), the grad norm before the optimizer (clipping aside),
    and, for a run that stops on nan, the ``RuntimeError`` a user's callback would raise."""
    from transformers import TrainerCallback

    class TraceCallback(TrainerCallback):
        gn = None

        def on_pre_optimizer_step(self, args, state, control, **kw):
            self.gn = C.grad_norm(model.parameters())

        def on_train_begin(self, args, state, control, optimizer=None, **kw):
            if not hasattr(TrainerCallback, "on_pre_optimizer_step") and optimizer is not None:
                # transformers < 4.46 has no such event: a pre-step hook on the optimizer instead
                inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper holds the torch one
                inner.register_step_pre_hook(lambda *a: setattr(self, "gn", C.grad_norm(model.parameters())))

        def on_step_end(self, args, state, control, **kw):
            trace.step(state.global_step, last_loss(), self.gn)
            if spec.get("on_nonfinite") == "raise" and not math.isfinite(last_loss()):
                raise RuntimeError(f"non-finite loss {last_loss()} at step {state.global_step}")

    return TraceCallback()


def main() -> None:
    spec = C.load_spec()
    C.seed_all(spec["seed"])
    from transformers import Trainer, TrainingArguments, set_seed
    set_seed(spec["seed"])
    x, y = C.make_data(spec)
    C.resolve_lr(spec, x)
    model = build_model(spec)
    trace = C.Trace(spec)

    args = TrainingArguments(**trainer_args(spec))
    key = "input_ids" if spec.get("model") == "bert" else "x"
    trainer = Trainer(model=model, args=args, train_dataset=Data(x, y, key), optimizers=optimizers(spec, model),
                      callbacks=[trace_callback(spec, trace, model, lambda: model.last_loss)])
    train(trainer, spec)
    trace.close()


def trainer_args(spec: dict) -> dict:
    """The ``TrainingArguments`` (and TRL ``SFTConfig``) keywords of a run: constant lr,
    logging and checkpoints every N steps, clipping, bf16, the nan filter, tqdm or not."""
    return dict(
        output_dir="out", max_steps=spec["steps"], per_device_train_batch_size=spec["batch_size"],
        learning_rate=spec["lr"], lr_scheduler_type="constant", logging_steps=spec["log_every"],
        save_strategy="steps", save_steps=spec["ckpt_every"], save_total_limit=2, report_to="none",
        use_cpu=True, seed=spec["seed"], max_grad_norm=spec.get("hf_clip", 1.0), bf16=spec.get("precision") == "bf16",
        logging_nan_inf_filter="nofilter" not in spec["variant"], dataloader_num_workers=0,
        log_level="info" if spec.get("hf_info") else "passive", disable_tqdm=spec["variant"] == "notqdm")


def optimizers(spec: dict, model: nn.Module) -> tuple:
    """The run's optimizer with a constant schedule (the Trainer's ``optimizers=``)."""
    opt = C.make_optimizer(spec, model.parameters())
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


def train(trainer, spec: dict) -> None:
    """``trainer.train()``, resuming from the last checkpoint when a re-queued run has one."""
    resume = spec.get("resume") and any(d.startswith("checkpoint-") for d in os.listdir("out")) \
        if os.path.isdir("out") else False
    trainer.train(resume_from_checkpoint=True if resume else None)


if __name__ == "__main__":
    main()
