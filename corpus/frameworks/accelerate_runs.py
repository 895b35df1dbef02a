"""Hand-written PyTorch loops driven by ``accelerate.Accelerator``, launched as users launch them.

The loop is the one of Accelerate's ``*_no_trainer`` examples: ``accelerator.prepare`` of
the project's model, optimizer and a ``DataLoader`` (no shuffling; with two ranks each
takes every other batch), ``accelerator.backward(loss)``, ``accelerator.clip_grad_norm_``
(or no clipping), ``accelerator.save_state`` every ``ckpt_every`` steps and
``load_state`` + ``skip_first_batches`` on a re-queued ``resume`` attempt. Mixed
precision: ``Accelerator(mixed_precision="bf16")`` (CPU autocast; Accelerate's fp16 on
the CPU is silently fp32, so there is no fp16 run).

Variants ``<launch>-<printer>``: the launch is ``launch2`` (``accelerate launch
--multi_gpu --num_processes 2``: torchrun, two CPU ranks on gloo writing to the same
captured log), ``launch-cpu`` (``accelerate launch --cpu --num_processes 2``, which runs
one process) or ``python`` (plain ``python``); see ``build.command``. The printer is
``logging`` (``accelerate.logging.get_logger`` over ``logging.basicConfig`` as the
examples set it, ``logger.info(accelerator.state, main_process_only=False)`` on every
rank, the ``***** Running training *****`` block, a tqdm bar over all steps on the main
process and ``Step s: loss ...`` lines), ``print`` (``accelerator.print``, main process
only) or ``rankprint`` (the builtin ``print`` on every rank, each its own local loss: two
lines per step, interleaved). The loss traced (and printed by ``logging`` / ``print``) is
the mean over ranks (``accelerator.reduce``); every rank decides on it, so a raise on nan
happens on both ranks. Only rank 0 writes the trace: 1-based optimizer steps, as printed.
"""

from __future__ import annotations

import json
import logging
import math
import os

import torch

from corpus.frameworks import common as C

CKPT = "ckpt"


def setup(spec: dict):
    """(accelerator, logger) as the examples build them."""
    from accelerate import Accelerator
    from accelerate.logging import get_logger
    if spec["variant"].endswith("logging"):
        logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
                            datefmt="%m/%d/%Y %H:%M:%S", level=logging.INFO)
    acc = Accelerator(cpu=True, mixed_precision="bf16" if spec.get("precision") == "bf16" else "no")
    logger = get_logger(__name__)
    if spec["variant"].endswith("logging"):
        logger.info(acc.state, main_process_only=False)
    return acc, logger


def resume_step(spec: dict, acc) -> int:
    """Load the last ``save_state`` of a re-queued ``resume`` attempt; the step it was saved at."""
    if not (spec.get("resume") and os.path.exists(os.path.join(CKPT, "step.json"))):
        return 0
    acc.load_state(CKPT)
    with open(os.path.join(CKPT, "step.json")) as f:
        step = json.load(f)["step"]
    acc.print(f"Resumed from checkpoint: {CKPT} (step {step})")
    return step


def banner(logger, spec: dict, acc, n: int) -> None:
    logger.info("***** Running training *****")
    logger.info(f"  Num examples = {n}")
    logger.info(f"  Instantaneous batch size per device = {spec['batch_size']}")
    logger.info(f"  Total train batch size (w. parallel, distributed & accumulation) = "
                f"{spec['batch_size'] * acc.num_processes}")
    logger.info(f"  Total optimization steps = {spec['steps']}")


def main() -> None:
    spec = C.load_spec()
    acc, logger = setup(spec)
    from accelerate.utils import set_seed
    set_seed(spec["seed"])
    C.seed_all(spec["seed"])
    x, y = (torch.from_numpy(a) for a in C.make_data(spec))
    C.resolve_lr(spec, x.numpy())
    model = C.make_model(spec)
    opt = C.make_optimizer(spec, model.parameters())
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=spec["batch_size"],
                                     shuffle=False)
    model, opt, dl = acc.prepare(model, opt, dl)
    trace = C.Trace(spec) if acc.is_main_process else None
    step = resume_step(spec, acc)
    logging_variant = spec["variant"].endswith("logging")
    bar = None
    if logging_variant:
        banner(logger, spec, acc, len(x))
        from tqdm.auto import tqdm
        bar = tqdm(range(spec["steps"]), disable=not acc.is_local_main_process, initial=step)
    spe = len(dl)
    while step < spec["steps"]:
        epoch, total, count = step // spe, 0.0, 0
        batches = acc.skip_first_batches(dl, step % spe) if step % spe else dl
        for xb, yb in batches:
            if step >= spec["steps"]:
                break
            loss, local, gn = one_step(spec, acc, model, opt, xb, yb)
            step += 1
            total, count = total + loss, count + 1
            if trace is not None:
                trace.step(step, loss, gn)
            if bar is not None:
                bar.update(1)
            if not math.isfinite(loss) and spec.get("on_nonfinite") == "raise":
                raise FloatingPointError(f"Loss is {loss} at step {step}, stopping training")
            if step % spec["log_every"] == 0:
                report(spec, acc, logger, epoch, step, (loss, local), gn, opt.param_groups[0]["lr"])
            if spec.get("ckpt_every") and step % spec["ckpt_every"] == 0:
                save(acc, step)
        if logging_variant:
            logger.info(f"epoch {epoch}: train_loss: {total / max(1, count):.4f}")
    acc.wait_for_everyone()
    acc.print("Training finished")
    if trace is not None:
        trace.close()
    acc.end_training()


def one_step(spec: dict, acc, model, opt, xb, yb) -> tuple[float, float, float]:
    """(mean loss over ranks, this rank's loss, grad norm) of one optimizer step; ``skip`` leaves out a
    non-finite one."""
    out = model(xb)
    loss = C.loss_fn(spec, out.float(), yb)
    mean = float(acc.reduce(loss.detach(), reduction="mean"))
    if not math.isfinite(mean) and spec.get("on_nonfinite") == "skip":
        opt.zero_grad(set_to_none=True)
        return mean, float(loss.detach()), float("nan")
    acc.backward(loss)
    if spec.get("clip"):
        gn = float(acc.clip_grad_norm_(model.parameters(), spec["clip"]))
    else:
        gn = C.grad_norm(model.parameters())
    opt.step()
    opt.zero_grad(set_to_none=True)
    return mean, float(loss.detach()), gn


def report(spec: dict, acc, logger, epoch: int, step: int, losses: tuple, gn: float, lr: float) -> None:
    """One step's line: (mean, local) losses; ``rankprint`` prints the local one, on every rank."""
    mean, local = losses
    if spec["variant"].endswith("logging"):
        logger.info(f"Step {step}: loss {mean:.4f}, grad_norm {gn:.4f}, lr {lr:g}")
    elif spec["variant"].endswith("rankprint"):
        print(f"epoch {epoch}: step {step}/{spec['steps']} loss={local:.4f} grad_norm={gn:.3f}")
    else:
        acc.print(f"epoch {epoch}: step {step}/{spec['steps']} loss={mean:.4f} grad_norm={gn:.3f}")


def save(acc, step: int) -> None:
    acc.save_state(CKPT)
    if acc.is_main_process:
        with open(os.path.join(CKPT, "step.json"), "w") as f:
            json.dump({"step": step}, f)
    acc.wait_for_everyone()


if __name__ == "__main__":
    main()
