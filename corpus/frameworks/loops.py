"""Plain PyTorch training loops, printing the three ways people write them.

Variants (``spec["variant"]``):

* ``print``: ``print(f"epoch {e} step {s} loss {loss:.4f} lr {lr:g}")`` every
  ``log_every`` steps (stdout, block-buffered unless the job runs ``python -u``);
* ``logging``: Python ``logging`` to stderr,
  ``2024-..., INFO train: step=200 loss=0.5213 grad_norm=1.234 lr=0.01``;
* ``tqdm``: one ``tqdm`` bar per epoch with ``set_postfix(loss=...)`` every step
  (carriage returns in the captured file), ``tqdm.write`` at each epoch end.

Real mixed precision on the CPU: ``torch.autocast("cpu", dtype=torch.bfloat16)``, or
fp16 autocast with ``torch.amp.GradScaler("cpu")`` (dynamic loss scaling: a step whose
gradients overflow is skipped and the scale halves). A loop may check the loss
(``raise FloatingPointError`` on nan, as many do) or skip non-finite steps. Steps are
1-based optimizer steps; that is what the prints show.
"""

from __future__ import annotations

import logging
import math
import os

import torch

from corpus.frameworks import common as C


def main() -> None:
    spec = C.load_spec()
    C.seed_all(spec["seed"])
    x, y = (torch.from_numpy(a) for a in C.make_data(spec))
    C.resolve_lr(spec, x.numpy())
    model = C.make_model(spec)
    opt = C.make_optimizer(spec, model.parameters())
    variant, every, bs = spec["variant"], spec["log_every"], spec["batch_size"]
    prec = spec.get("precision", "fp32")
    scaler = torch.amp.GradScaler("cpu", init_scale=spec.get("init_scale", 2.0 ** 16)) if prec == "fp16" else None
    trace = C.Trace(spec)
    log = None
    if variant == "logging":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        log = logging.getLogger("train")
    ckpt = os.path.join(spec["workdir"], "ckpt.pt")
    step = 0
    if spec.get("resume") and os.path.exists(ckpt):
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        say(log, f"Resuming from checkpoint {ckpt} at step {step}")
    spe = math.ceil(len(x) / bs)
    say(log, f"Training {type(model).__name__} on {len(x)} samples: batch_size={bs} lr={spec['lr']} "
             f"steps={spec['steps']} precision={prec} clip={spec.get('clip')}")
    while step < spec["steps"]:
        epoch = step // spe
        bar = None
        if variant == "tqdm":
            from tqdm import tqdm
            bar = tqdm(total=spe, desc=f"Epoch {epoch}", initial=step % spe)
        running = 0.0
        for b in range(step % spe, spe):
            if step >= spec["steps"]:
                break
            xb, yb = x[b * bs:(b + 1) * bs], y[b * bs:(b + 1) * bs]
            step += 1
            loss, gn, scale, over = one_step(spec, model, opt, scaler, prec, xb, yb)
            trace.step(step, loss, gn, scale, over)
            running += loss
            if not math.isfinite(loss) and spec.get("on_nonfinite") == "raise":
                raise FloatingPointError(f"Loss is {loss} at step {step}, stopping training")
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4f}")
                bar.update(1)
            elif step % every == 0:
                lr = opt.param_groups[0]["lr"]
                extra = f" scale {scale:g}" if scaler is not None else ""
                if variant == "logging":
                    log.info(f"step={step} loss={loss:.4f} grad_norm={gn:.4f} lr={lr:g}{extra}")
                else:
                    print(f"epoch {epoch} step {step} loss {loss:.4f} lr {lr:g}{extra}")
            if spec.get("ckpt_every") and step % spec["ckpt_every"] == 0:
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, ckpt)
        if bar is not None:
            bar.close()
            bar.write(f"epoch {epoch} done, mean loss {running / max(1, spe):.4f}")
    say(log, "Training finished")
    trace.close()


def one_step(spec, model, opt, scaler, prec, xb, yb):
    """(loss, grad norm, loss scale, overflow) of one real optimizer step."""
    opt.zero_grad(set_to_none=True)
    if prec in ("bf16", "fp16"):
        with torch.autocast("cpu", dtype=torch.bfloat16 if prec == "bf16" else torch.float16):
            out = model(xb)
        loss = C.loss_fn(spec, out.float(), yb)
    else:
        loss = C.loss_fn(spec, model(xb), yb)
    if not torch.isfinite(loss) and spec.get("on_nonfinite") == "skip":
        return float(loss.detach()), float("nan"), None, False
    if scaler is None:
        loss.backward()
        gn = C.grad_norm(model.parameters())
        if spec.get("clip"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec["clip"])
        opt.step()
        return float(loss.detach()), gn, None, False
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    gn = C.grad_norm(model.parameters())
    if spec.get("clip"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec["clip"])
    before = scaler.get_scale()
    scaler.step(opt)
    scaler.update()
    over = scaler.get_scale() < before
    return float(loss.detach()), gn, before, over


def say(log, msg: str) -> None:
    if log is not None:
        log.info(msg)
    else:
        print(msg)


if __name__ == "__main__":
    main()
