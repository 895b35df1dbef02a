"""Keras 3 ``model.fit`` on the torch or TensorFlow backend (``KERAS_BACKEND``), verbose=1 or 2; Keras 2
(``tf.keras`` with ``TF_USE_LEGACY_KERAS=1``, the ``tf_keras`` package: family ``keras2``) the same way.

``verbose1``: the progress bar (``c/T ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step - loss: 0.4012``,
carriage-return updates in the captured file; the loss is the running mean over the
epoch); ``verbose2``: one line per epoch. Callbacks: ``CSVLogger("training.csv",
append=True)`` always, ``TerminateOnNaN`` in most runs (``Batch b: Invalid loss,
terminating training``, b 0-based within the epoch). The loss function is the project's,
written with ``keras.ops``; it hands the batch loss it computed to a callback that
writes the trace at ``on_train_batch_end``: step = ``epoch * T + batch + 1`` (the bar's
``(e - 1) * T + c``). No shuffling (``shuffle=False``): a corrupt sample recurs at
the same position of every epoch. A re-queued run starts from scratch.

The backend is the family's: ``keras`` runs on torch, ``keras_tf`` on TensorFlow
(``build.env_for``). Under TensorFlow ``fit`` traces the train step into a
``tf.function`` (graph mode; no XLA on a CPU-only machine), where the loss is a symbolic
tensor: the loss function ``assign``s it to a non-trainable ``tf.Variable`` that the
callback reads after the step. That keeps the default execution (not ``run_eagerly``)
and traces the batch loss itself; the ``logs["loss"]`` of ``on_train_batch_end`` would be
Keras' running mean over the epoch, not what the code computed.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

from corpus.frameworks import common as C  # noqa: E402


def main() -> None:
    spec = C.load_spec()
    keras, ops = import_keras()

    keras.utils.set_random_seed(spec["seed"])
    C.seed_all(spec["seed"])
    x, y = C.make_data(spec)
    C.resolve_lr(spec, x)
    trace = C.Trace(spec)
    keep, read = loss_box(keras)
    task, kind = spec["task"], spec.get("loss", "ce")
    out = 1 if task in ("binary", "regress") else spec.get("classes", 4)
    init = keras.initializers.RandomNormal(stddev=spec["init_std"]) if spec.get("init_std") else "glorot_uniform"
    layers = [keras.Input(x.shape[1:])]
    if task != "regress":
        layers += [keras.layers.Dense(32, activation="relu", kernel_initializer=init),
                   keras.layers.Dense(32, activation="relu", kernel_initializer=init)]
    layers += [keras.layers.Dense(out, kernel_initializer=init)]
    model = keras.Sequential(layers)

    def loss(y_true, y_pred):
        if ops.legacy:  # Keras 2 may squeeze a (b, 1) prediction to (b,) before the loss: flatten both
            y_true = ops.reshape(y_true, [-1])
            y_pred = y_pred if kind in ("ce", "count_norm") else ops.expand_dims(ops.reshape(y_pred, [-1]), -1)
        if kind == "mse":
            v = ops.mean((ops.squeeze(y_pred, -1) - y_true) ** 2)
        elif kind == "unsafe_bce":
            p = ops.sigmoid(ops.squeeze(y_pred, -1))
            v = -ops.mean(y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p))
        elif kind == "count_norm":
            per = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
            rare = ops.cast(ops.equal(y_true, 0), "float32")
            v = ops.mean(per * (1 - rare)) + ops.sum(per * rare) / ops.sum(rare)
        else:
            v = ops.mean(keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True))
        keep(v)
        return v

    spe = math.ceil(len(x) / spec["batch_size"])

    class TraceCallback(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            trace.step(self.epoch * spe + batch + 1, read())

    if spec.get("optimizer") == "adam":
        opt = keras.optimizers.Adam(learning_rate=spec["lr"])
    else:
        opt = keras.optimizers.SGD(learning_rate=spec["lr"], momentum=spec.get("momentum", 0.0))
    model.compile(optimizer=opt, loss=loss)
    cbs = [TraceCallback(), keras.callbacks.CSVLogger("training.csv", append=True)]
    if spec.get("terminate_on_nan"):
        cbs.append(keras.callbacks.TerminateOnNaN())
    epochs = max(2, round(spec["steps"] / spe))
    model.fit(x, y, batch_size=spec["batch_size"], epochs=epochs, shuffle=False, callbacks=cbs,
              verbose=1 if spec["variant"] == "verbose1" else 2)
    trace.close()


def import_keras():
    """(keras, ops): Keras 3 and its ``keras.ops``, or, with ``TF_USE_LEGACY_KERAS=1`` (family
    ``keras2``), TensorFlow's ``tf.keras`` (Keras 2, the ``tf_keras`` package) and the TF ops the loss uses."""
    from types import SimpleNamespace
    if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        import tensorflow as tf
        ops = SimpleNamespace(mean=tf.reduce_mean, squeeze=tf.squeeze, sigmoid=tf.sigmoid, log=tf.math.log,
                              cast=tf.cast, equal=tf.equal, sum=tf.reduce_sum, reshape=tf.reshape,
                              expand_dims=tf.expand_dims, legacy=True)
        return tf.keras, ops
    import keras
    from keras import ops
    return keras, SimpleNamespace(**{k: getattr(ops, k) for k in ("mean", "squeeze", "sigmoid", "log", "cast",
                                                                  "equal", "sum")}, legacy=False)


def loss_box(keras):
    """(keep, read): hand the batch loss from the loss function to the trace callback.

    torch runs the loss eagerly (a float is kept); TensorFlow in a ``tf.function``, so the
    symbolic loss is assigned to a variable and read after the step.
    """
    if keras.backend.backend() != "tensorflow":
        seen = {"loss": float("nan")}

        def keep(v):
            seen["loss"] = float(v.detach()) if hasattr(v, "detach") else float(v)
        return keep, lambda: seen["loss"]
    import tensorflow as tf
    box = tf.Variable(float("nan"), trainable=False, dtype=tf.float32)
    return (lambda v: box.assign(tf.cast(v, tf.float32))), (lambda: float(box.numpy()))


if __name__ == "__main__":
    main()
