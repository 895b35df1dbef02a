"""Lightning (``lightning`` package; ``pytorch_lightning`` 1.x for ``lightning1``) runs with the TQDM
or the Rich progress bar.

``variant`` ``tqdm``: ``TQDMProgressBar(refresh_rate=...)``; ``rich``: ``RichProgressBar()``
(the ``rich`` package), which on a non-terminal stdout writes no live updates. Both log
``train_loss`` with ``prog_bar=True`` and write ``lightning_logs/version_0/metrics.csv``
(``CSVLogger``, every ``log_every_n_steps``). Lightning keeps training on nan; a re-queued
run resumes with ``ckpt_path="last"``. The trace is written from ``on_train_batch_end``
with the loss ``training_step`` computed and the gradient norm from
``on_before_optimizer_step`` (before clipping): step = ``trainer.global_step``.
"""

from __future__ import annotations

import math
import os

import torch

from corpus.frameworks import common as C


def main() -> None:
    spec = C.load_spec()
    old = spec["framework"] == "lightning1"  # PyTorch Lightning 1.x: the pytorch_lightning package
    if old:
        import pytorch_lightning as L
        from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar, TQDMProgressBar
        from pytorch_lightning.loggers import CSVLogger
    else:
        import lightning as L
        from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar, TQDMProgressBar
        from lightning.pytorch.loggers import CSVLogger

    L.seed_everything(spec["seed"])
    C.seed_all(spec["seed"])
    x, y = C.make_data(spec)
    C.resolve_lr(spec, x)
    trace = C.Trace(spec)

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = C.make_model(spec)
            self.last, self.gn = float("nan"), None

        def training_step(self, batch, i):
            xb, yb = batch
            loss = C.loss_fn(spec, self.model(xb), yb)
            self.last = float(loss.detach())
            self.log("train_loss", loss, prog_bar=True)
            if spec.get("on_nonfinite") == "raise" and not math.isfinite(self.last):
                trace.step(self.global_step + 1, self.last, None)  # the step that raises never ends
                raise FloatingPointError(f"train_loss is {self.last} at global step {self.global_step + 1}")
            return loss

        if old:  # 1.x passes the optimizer's index too
            def on_before_optimizer_step(self, optimizer, optimizer_idx):
                self.gn = C.grad_norm(self.parameters())
        else:
            def on_before_optimizer_step(self, optimizer):
                self.gn = C.grad_norm(self.parameters())

        def on_train_batch_end(self, outputs, batch, i):
            trace.step(self.trainer.global_step, self.last, self.gn)

        def configure_optimizers(self):
            return C.make_optimizer(spec, self.parameters())

    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    dl = torch.utils.data.DataLoader(ds, batch_size=spec["batch_size"], shuffle=False)
    bar = RichProgressBar() if spec["variant"] == "rich" else TQDMProgressBar(refresh_rate=spec.get("refresh", 1))
    ckpt = ModelCheckpoint(dirpath="ckpt", save_last=True, every_n_train_steps=spec.get("ckpt_every") or 50)
    precision = "bf16-mixed" if spec.get("precision") == "bf16" else "32-true"
    if old:  # 1.x names them bf16 / 32
        precision = "bf16" if spec.get("precision") == "bf16" else 32
    trainer = L.Trainer(max_steps=spec["steps"], accelerator="cpu", devices=1, callbacks=[bar, ckpt],
                        logger=CSVLogger("."), log_every_n_steps=spec["log_every"], precision=precision,
                        gradient_clip_val=spec.get("clip"), enable_model_summary=True)
    last = "last" if spec.get("resume") and os.path.exists("ckpt/last.ckpt") else None
    trainer.fit(Module(), dl, ckpt_path=last)
    trace.close()


if __name__ == "__main__":
    main()
