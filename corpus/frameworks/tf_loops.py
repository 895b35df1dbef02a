"""TensorFlow 2 custom training loops (``tf.GradientTape``), printing the ways people write them.

A ``tf.keras.Sequential`` model (two hidden ``Dense`` layers; one ``Dense`` for the
regression; a ``GRU`` for the sequence task) trained by a hand-written loop: the forward
pass and ``tape.gradient`` inside a ``train_step`` that is wrapped in ``@tf.function``
(most runs, ``spec["tf_function"]``) or run eagerly, ``optimizer.apply_gradients``, a
``tf.data.Dataset`` batched without shuffling (a corrupt sample recurs at the same
position of every epoch). Variants (``spec["variant"]``):

* ``print``: Python ``print`` every ``log_every`` steps, in one of three styles
  (``spec["print_style"]``): ``Step 40, loss: 0.6931`` with the TF quickstart's
  ``Epoch 2, Loss: 0.52134...`` at each epoch end (``step``); ``epoch 2 step 40
  loss=0.6931`` (``epoch``); the Keras guide's ``Start of epoch 1`` / ``Training loss (for
  one batch) at step 40: 0.6931`` / ``Seen so far: 1280 samples`` (``guide``);
* ``tfprint``: ``tf.print("step", step, "loss", loss)`` inside the ``tf.function``
  (written by the TF runtime to stderr, ``step 40 loss 0.693147``);
* ``logging``: absl logging under ``app.run`` (``I1202 17:10:00.123456 1402 tf_loops.py:88]
  step 40: loss = 0.6931 ...``) or Python ``logging`` (``spec["log_style"]``);
* ``check_numerics``: ``tf.debugging.check_numerics`` on the loss (``"loss"``) and on every
  gradient (``"gradient for sequential/dense/kernel"``): once one is non-finite TF raises
  ``InvalidArgumentError ... loss : Tensor had NaN values`` and the job dies with its
  traceback; otherwise prints as ``print`` does.

Precision: ``mixed_float16`` (the global Keras policy) with
``keras.mixed_precision.LossScaleOptimizer`` (dynamic loss scaling: a step whose
gradients overflow is skipped and the scale halves; the loop prints the scale), or
``mixed_bfloat16``. A loop may stop on a non-finite loss or gradient norm
(``on_nonfinite == "raise"``: ``ValueError``), skip the update of such a step, or go on. Checkpoints every ``ckpt_every`` steps
(``tf.train.CheckpointManager``); a resumed attempt restores the latest one. Every step
appends the loss it computed, the global gradient norm (unscaled) and the fp16 scale /
overflow to the trace (the norm summed in float64, so that a huge finite gradient is not
traced as inf); steps are 1-based global optimizer steps, as printed.

What TF itself does to a corrupt sample: in a ``tf.function`` grappler fuses
``MatMul + BiasAdd + Relu`` into oneDNN's ``_FusedMatMul``, whose ReLU maps NaN to 0, so a
nan input leaves the *loss* finite while its gradient is nan; the update poisons the
first layer's weights and the model goes quiet (loss stuck near ``log(classes)``) without
a non-finite loss: only a check of the gradients sees it (``check_numerics`` on them, the
``raise`` loop's norm check). Eagerly the nan reaches the loss. The trace keeps the
gradient norm, so the label sees the nan step.
"""

from __future__ import annotations

import logging as pylogging
import math
import os
import time

import tensorflow as tf
from absl import app, flags
from absl import logging as absl_logging

from corpus.frameworks import common as C

keras = tf.keras
flags.DEFINE_string("spec", None, "the run's spec.json")


def main(_argv=None) -> None:
    spec = C.load_spec()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(spec["seed"])
    x, y = C.make_data(spec)
    C.resolve_lr(spec, x)
    prec = spec.get("precision", "fp32")
    if prec in ("fp16", "bf16"):
        keras.mixed_precision.set_global_policy("mixed_float16" if prec == "fp16" else "mixed_bfloat16")
    model = make_model(spec)
    opt = make_optimizer(spec)
    opt.build(model.trainable_variables)
    out = Printer(spec)
    ckpt = tf.train.Checkpoint(step=tf.Variable(0, dtype=tf.int64), optimizer=opt, model=model)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(spec["workdir"], "tf_ckpts"), max_to_keep=3)
    if spec.get("resume") and manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        out.say(f"Restored from {manager.latest_checkpoint}")
    elif spec.get("ckpt_every"):
        out.say("Initializing from scratch.")
    train(spec, model, opt, ckpt, manager, out, x, y)


def make_model(spec: dict):
    d, task = spec.get("dim", 16), spec["task"]
    init = keras.initializers.RandomNormal(stddev=spec["init_std"]) if spec.get("init_std") else "glorot_uniform"
    if task == "seq":
        layers = [keras.Input((spec.get("seq_len", 12), d)), keras.layers.GRU(32), keras.layers.Dense(2)]
    elif task == "regress":
        layers = [keras.Input((d,)), keras.layers.Dense(1)]
    else:
        out = 1 if task == "binary" else spec.get("classes", 4)
        layers = [keras.Input((d,)), keras.layers.Dense(32, activation="relu", kernel_initializer=init),
                  keras.layers.Dense(32, activation="relu", kernel_initializer=init),
                  keras.layers.Dense(out, kernel_initializer=init)]
    return keras.Sequential(layers)


def make_optimizer(spec: dict):
    if spec.get("optimizer", "sgd") == "adam":
        opt = keras.optimizers.Adam(learning_rate=spec["lr"])
    else:
        opt = keras.optimizers.SGD(learning_rate=spec["lr"], momentum=spec.get("momentum", 0.0))
    if spec.get("precision") == "fp16":
        opt = keras.mixed_precision.LossScaleOptimizer(opt, initial_scale=spec.get("init_scale", 2.0 ** 15))
    return opt


def compute_loss(spec: dict, y, out):
    """The project's losses (:func:`corpus.frameworks.common.loss_fn`) written in TF."""
    out = tf.cast(out, tf.float32)
    kind = spec.get("loss", "ce")
    if kind == "mse":
        return tf.reduce_mean(tf.square(tf.squeeze(out, -1) - y))
    if kind == "unsafe_bce":
        p = tf.sigmoid(tf.squeeze(out, -1))
        return -tf.reduce_mean(y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p))
    per = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=out)
    if kind == "count_norm":
        rare = tf.cast(tf.equal(y, 0), tf.float32)
        return tf.reduce_mean(per * (1 - rare)) + tf.reduce_sum(per * rare) / tf.reduce_sum(rare)
    return tf.reduce_mean(per)


def global_norm(grads):
    """The global gradient norm in float64: float32's sum of squares overflows past 1.8e19."""
    return tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(tf.cast(g, tf.float64))) for g in grads]))


def gradients(spec: dict, model, opt, xb, yb, check: bool):
    """(loss, gradients, loss scale) of one batch; ``check``: check_numerics on the loss and every gradient."""
    fp16 = spec.get("precision") == "fp16"
    with tf.GradientTape() as tape:
        loss = compute_loss(spec, yb, model(xb, training=True))
        if check:
            loss = tf.debugging.check_numerics(loss, "loss")
        scaled = opt.scale_loss(loss) if fp16 else loss
    grads = tape.gradient(scaled, model.trainable_variables)
    if check:
        grads = [tf.debugging.check_numerics(g, f"gradient for {v.path}")
                 for g, v in zip(grads, model.trainable_variables)]
    scale = tf.identity(opt.dynamic_scale) if fp16 else tf.constant(1.0)
    return loss, grads, scale


def make_train_step(spec: dict, model, opt):
    """(train_step, probe): one optimizer step -> (loss, unscaled global grad norm, loss scale used);
    the probe computes the same loss and norm without the checks or the update."""
    skip, check = spec.get("on_nonfinite") == "skip", spec["variant"] == "check_numerics"
    tfprint, every, style = spec["variant"] == "tfprint", spec["log_every"], spec.get("print_style", "step")

    def train_step(xb, yb, step):
        loss, grads, scale = gradients(spec, model, opt, xb, yb, check)
        gn = global_norm(grads) / tf.cast(scale, tf.float64)
        if skip:
            if tf.math.is_finite(loss) and tf.math.is_finite(gn):
                opt.apply_gradients(zip(grads, model.trainable_variables))
        else:
            opt.apply_gradients(zip(grads, model.trainable_variables))
        if tfprint and step % every == 0:
            if style == "step":
                tf.print("step", step, "loss", loss)
            else:
                tf.print("Step:", step, "Loss:", loss, "grad norm:", tf.cast(gn, tf.float32))
        return loss, gn, scale

    def probe(xb, yb):
        loss, grads, scale = gradients(spec, model, opt, xb, yb, False)
        return loss, global_norm(grads) / tf.cast(scale, tf.float64)

    if spec.get("tf_function", True):
        return tf.function(train_step), tf.function(probe)
    return train_step, probe


def train(spec, model, opt, ckpt, manager, out, x, y) -> None:
    bs, total = spec["batch_size"], spec["steps"]
    spe = math.ceil(len(x) / bs)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(bs)
    train_step, probe = make_train_step(spec, model, opt)
    trace = C.Trace(spec)
    mean = keras.metrics.Mean(name="train_loss")
    step = int(ckpt.step)
    out.start(spec, len(x), step)
    while step < total:
        epoch, t0 = step // spe, time.time()
        out.epoch_start(epoch)
        mean.reset_state()
        for xb, yb in ds.skip(step % spe):
            if step >= total:
                break
            step += 1
            loss, gn, scale, over = run_step(spec, (train_step, probe), trace, opt, xb, yb, step)
            mean.update_state(loss)
            out.step(epoch, step, loss, gn, scale)
            if spec.get("on_nonfinite") == "raise" and not (math.isfinite(loss) and math.isfinite(gn)):
                raise ValueError(f"Non-finite loss or gradients at step {step}: loss={loss}, grad_norm={gn}")
            ckpt.step.assign(step)
            if spec.get("ckpt_every") and step % spec["ckpt_every"] == 0:
                out.say(f"Saved checkpoint for step {step}: {manager.save()}")
        out.epoch_end(epoch, float(mean.result()), time.time() - t0)
    out.say("Training finished.")
    trace.close()


def run_step(spec, steps, trace, opt, xb, yb, step):
    """Run one step and trace it; a check_numerics error is traced (by the probe) and re-raised."""
    train_step, probe = steps
    fp16 = spec.get("precision") == "fp16"
    try:
        loss, gn, scale = train_step(xb, yb, tf.constant(step, tf.int64))
    except tf.errors.InvalidArgumentError:
        # the check fired before apply_gradients: the same weights, in the same (graph or eager) mode
        loss, gn = probe(xb, yb)
        trace.step(step, float(loss), float(gn))
        raise
    loss, gn, scale = float(loss), float(gn), float(scale)
    over = fp16 and float(opt.dynamic_scale) < scale
    trace.step(step, loss, gn, scale if fp16 else None, over)
    return loss, gn, scale, over


class Printer:
    """What the loop writes: Python print (stdout), absl or Python logging (stderr), or nothing per step (tf.print)."""

    def __init__(self, spec: dict):
        self.variant, self.every, self.bs = spec["variant"], spec["log_every"], spec["batch_size"]
        self.style = spec.get("print_style", "step")
        self.fp16 = spec.get("precision") == "fp16"
        self.log = None
        if self.variant == "logging" and spec.get("log_style") == "python":
            pylogging.basicConfig(level=pylogging.INFO, format="%(asctime)s - %(name)s - %(levelname)s - %(message)s")
            self.log = pylogging.getLogger("train")
        elif self.variant == "logging":
            absl_logging.set_verbosity(absl_logging.INFO)
            self.log = absl_logging

    def say(self, msg: str) -> None:
        if self.log is not None:
            self.log.info(msg)
        else:
            print(msg)

    def start(self, spec: dict, n: int, step: int) -> None:
        self.say(f"Training {spec['task']} model on {n} samples: batch_size={self.bs} lr={spec['lr']} "
                 f"steps={spec['steps']} start_step={step} policy={keras.mixed_precision.global_policy().name}")

    def epoch_start(self, epoch: int) -> None:
        if self.variant != "logging" and self.style == "guide":
            print(f"\nStart of epoch {epoch}")

    def step(self, epoch: int, step: int, loss: float, gn: float, scale: float) -> None:
        if self.variant == "tfprint" or step % self.every:
            return
        extra = f", loss scale: {scale:g}" if self.fp16 else ""
        if self.log is not None:
            self.log.info(f"step {step}: loss = {loss:.4f} (grad_norm = {gn:.4f}){extra}")
        elif self.style == "guide":
            print(f"Training loss (for one batch) at step {step}: {loss:.4f}{extra}")
            print(f"Seen so far: {step * self.bs} samples")
        elif self.style == "epoch":
            print(f"epoch {epoch + 1} step {step} loss={loss:.4f}{extra}")
        else:
            print(f"Step {step}, loss: {loss:.4f}{extra}")

    def epoch_end(self, epoch: int, mean: float, seconds: float) -> None:
        if self.variant == "tfprint":
            return
        if self.log is not None:
            self.log.info(f"epoch {epoch + 1} done: mean loss = {mean:.4f} ({seconds:.2f}s)")
        elif self.style == "guide":
            print(f"Training loss over epoch: {mean:.4f}")
            print(f"Time taken: {seconds:.2f}s")
        elif self.style == "epoch":
            print(f"epoch {epoch + 1} done: mean loss={mean:.4f}")
        else:
            print(f"Epoch {epoch + 1}, Loss: {mean}")


if __name__ == "__main__":
    if C.load_spec().get("log_style") == "absl":
        app.run(main)  # absl's own log format (and flag parsing: --spec is a defined flag)
    else:
        main()
