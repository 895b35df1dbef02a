"""TensorFlow 1 logs: Estimator, TF-slim and the cifar10 tutorial loop.

* ``estimator``: ``INFO:tensorflow:loss = L, step = N (t sec)`` (first at step 1, then
  every n) and ``global_step/sec`` lines; ``NanTensorHook`` checks every step and stops at
  the first *nan* (not inf) loss with ``ERROR:tensorflow:Model diverged with loss = NaN.``
  and a ``NanLossDuringTrainingError`` traceback. TF >= 1.14 often prints every message
  twice (``INFO:tensorflow:`` and an absl/glog ``I0523 ... basic_session_run_hooks.py]``).
* ``slim``: ``INFO:tensorflow:global step N: loss = L (t sec/step)``; keeps going on nan.
* ``cifar10``: ``<datetime>: step N, loss = L (x examples/sec; y sec/batch)`` with a 0-based
  step; ``assert not np.isnan(loss_value)`` stops it (``AssertionError: Model diverged``).
* ``od_api``: the TF2 Object Detection API's ``model_lib_v2`` loop: every ``interval``
  steps ``Step N per-step time 0.382s`` and the step's losses as a pretty-printed dict,
  one key per line (``{'Loss/classification_loss': 0.52,`` ... ``'learning_rate': 0.079}``),
  each message twice (``INFO:tensorflow:`` and absl's ``I0409 ... model_lib_v2.py:708]``);
  keeps going on nan.
"""

from __future__ import annotations

import math

import numpy as np

from ..render import Clock, Cols, Line, Printer, continues_after_nan, f32
from ..runs import Trajectory

_PKG = "/usr/local/lib/python3.6/dist-packages"
_NAN_TRACE = (
    "Traceback (most recent call last):",
    '  File "train.py", line 187, in <module>',
    "    tf.app.run()",
    f'  File "{_PKG}/tensorflow/python/platform/app.py", line 40, in run',
    "    _run(main=main, argv=argv, flags_parser=_parse_flags_tolerate_undef)",
    '  File "train.py", line 181, in main',
    "    estimator.train(input_fn=train_input_fn, max_steps=FLAGS.max_steps)",
    f'  File "{_PKG}/tensorflow_estimator/python/estimator/estimator.py", line 370, in train',
    "    loss = self._train_model(input_fn, hooks, saving_listeners)",
    f'  File "{_PKG}/tensorflow/python/training/monitored_session.py", line 754, in run',
    "    run_metadata=run_metadata)",
    f'  File "{_PKG}/tensorflow/python/training/basic_session_run_hooks.py", line 761, in after_run',
    "    raise NanLossDuringTrainingError",
    "tensorflow.python.training.basic_session_run_hooks.NanLossDuringTrainingError: NaN loss during training.",
)
_ASSERT_TRACE = (
    "Traceback (most recent call last):",
    '  File "cifar10_train.py", line 134, in <module>',
    "    tf.app.run()",
    '  File "cifar10_train.py", line 103, in train',
    "    assert not np.isnan(loss_value), 'Model diverged with loss = NaN'",
    "AssertionError: Model diverged with loss = NaN",
)


class TensorFlow(Printer):
    name = "tensorflow"
    intervals = (1, 5, 10, 20, 50, 100)

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        variant = str(rng.choice(["estimator", "estimator", "slim", "cifar10", "od_api"]))
        if continues_after_nan(traj) and variant not in ("slim", "od_api"):
            variant = str(rng.choice(["slim", "od_api"]))
        return {"variant": variant, "dup": bool(rng.random() < 0.35), "tid": int(rng.integers(1000, 140000))}

    def printed_step(self, tstep: int, traj: Trajectory, opts: dict) -> int:
        return tstep - 1 if opts["variant"] == "cifar10" else tstep

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        clock = Clock(rng)
        lines: list[Line] = []
        variant = opts["variant"]

        def info(text: str, src: str = "basic_session_run_hooks.py:262", level: str = "INFO", **kw: object) -> None:
            lines.append(Line(f"{level}:tensorflow:{text}", **kw))  # type: ignore[arg-type]
            if (opts["dup"] or variant == "od_api") and variant != "cifar10":
                now = clock.now
                lines.append(Line(f"{level[0]}{now:%m%d %H:%M:%S}.{now.microsecond:06d} {opts['tid']} {src}] {text}",
                                  **kw))  # type: ignore[arg-type]

        for att in traj.attempts:
            if att.index:
                clock.gap()
            c = Cols(att)
            self._header(info, lines, traj, att, variant)
            last_t = clock.elapsed()
            first = True
            for i in range(c.n):
                s = int(c.step[i])
                clock.advance()
                loss = float(c.loss[i])
                kw = dict(tstep=s, attempt=att.index)
                if variant not in ("slim", "od_api") and math.isnan(loss):  # NanTensorHook / the assert (nan only) run first
                    if variant == "estimator":
                        info("Model diverged with loss = NaN.", "basic_session_run_hooks.py:760", "ERROR",
                             bad="event", value=loss, **kw)
                        lines.extend(Line(t, attempt=att.index) for t in _NAN_TRACE)
                    else:
                        for t in _ASSERT_TRACE:  # the lines quoting ``Model diverged with loss = NaN`` show it
                            diverged = "diverged" in t
                            lines.append(Line(t, bad="event" if diverged else "", value=loss if diverged else None,
                                              **kw))
                    break
                if variant == "estimator" and (first or (s - att.start) % interval == 0):
                    took = clock.elapsed() - last_t
                    if not first:
                        info(f"global_step/sec: {interval / max(took, 1e-3):.5g}", "basic_session_run_hooks.py:692")
                    tail = "" if first else f" ({took:.3f} sec)"
                    info(f"loss = {f32(loss)}, step = {s}{tail}", step=s, exact=True,
                         bad="" if math.isfinite(loss) else "loss", value=loss, **kw)
                    last_t, first = clock.elapsed(), False
                elif variant == "slim" and s % interval == 0:
                    info(f"global step {s}: loss = {loss:.4f} ({clock.sps:.3f} sec/step)", "learning.py:507",
                         step=s, exact=True, bad="" if math.isfinite(loss) else "loss", value=loss, **kw)
                elif variant == "od_api" and s % interval == 0:
                    info(f"Step {s} per-step time {clock.sps:.3f}s", "model_lib_v2.py:705", step=s, exact=True,
                         attempt=att.index)
                    head, *rest = _od_losses(loss, {k: float(v[i]) for k, v in c.terms.items()}, float(c.lr[i]))
                    absl = f"I{clock.now:%m%d %H:%M:%S}.{clock.now.microsecond:06d} {opts['tid']} model_lib_v2.py:708] "
                    for prefix in ("INFO:tensorflow:", absl):  # each copy with the dict's other lines after it
                        lines.append(Line(prefix + head, step=s, bad="" if math.isfinite(loss) else "loss",
                                          value=loss, **kw))
                        lines.extend(Line(t, step=s, attempt=att.index) for t in rest)
                elif variant == "cifar10" and (s - 1) % interval == 0:
                    b = traj.spec.batch_size
                    lines.append(Line(f"{clock.now:%Y-%m-%d %H:%M:%S.%f}: step {s - 1}, loss = {loss:.2f} "
                                      f"({b / clock.sps:.1f} examples/sec; {clock.sps:.3f} sec/batch)",
                                      step=s - 1, exact=True, bad="" if math.isfinite(loss) else "loss",
                                      value=loss, **kw))
                if variant in ("estimator", "slim") and s % traj.spec.ckpt_every == 0:
                    info(f"Saving checkpoints for {s} into /tmp/model/model.ckpt.", "basic_session_run_hooks.py:606",
                         step=s, exact=True, attempt=att.index)
            else:
                if att.end == "max_steps" and variant == "estimator":
                    info(f"Loss for final step: {f32(float(c.loss[-1]))}.", "estimator.py:371",
                         bad="" if math.isfinite(float(c.loss[-1])) else "loss", attempt=att.index)
        return lines

    def _header(self, info, lines, traj, att, variant) -> None:  # noqa: ANN001
        if variant == "od_api":
            info("Reading unweighted datasets: ['train.record']", "dataset_builder.py:163", attempt=att.index)
            if att.resumed_from:
                info(f"Restoring from ckpt-{att.resumed_from // traj.spec.ckpt_every}", "model_lib_v2.py:563",
                     attempt=att.index)
            return
        if variant == "cifar10":
            lines.append(Line(f"Filling queue with {traj.spec.n_train // 5} CIFAR images before starting to train. "
                              "This will take a few minutes.", attempt=att.index))
            return
        info("Using config: {'_model_dir': '/tmp/model', '_tf_random_seed': None, '_save_summary_steps': 100, "
             f"'_save_checkpoints_steps': {traj.spec.ckpt_every}, '_keep_checkpoint_max': 5, "
             "'_log_step_count_steps': 100}", "estimator.py:201")
        for text in ("Calling model_fn.", "Done calling model_fn.", "Create CheckpointSaverHook.",
                     "Graph was finalized."):
            info(text, "estimator.py:1111")
        if att.resumed_from:
            info(f"Restoring parameters from /tmp/model/model.ckpt-{att.resumed_from}", "saver.py:1284",
                 attempt=att.index)
        info("Running local_init_op.", "session_manager.py:500")
        info("Done running local_init_op.", "session_manager.py:502")


def _od_losses(total: float, terms: dict[str, float], lr: float) -> list[str]:
    """The lines of the Object Detection API's pretty-printed loss dict: the run's loss
    terms (or the total split as a detector's would be), the total, the learning rate."""
    names = {"Loss/classification_loss": 0.55, "Loss/localization_loss": 0.35, "Loss/regularization_loss": 0.10}
    parts = dict(zip(names, terms.values())) if len(terms) >= 2 else {k: total * w for k, w in names.items()}
    parts["Loss/total_loss"] = total
    items = [f"'{k}': {f32(v)}" for k, v in parts.items()] + [f"'learning_rate': {f32(lr)}"]
    return ["{" + items[0] + ","] + [f" {t}," for t in items[1:-1]] + [f" {items[-1]}}}"]
