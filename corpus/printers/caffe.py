"""Caffe / NVCaffe glog output.

Start-up: ``caffe.cpp`` GPU lines, the solver prototxt echo (``base_lr``, ``display``,
``clip_gradients``, ...), sometimes the net definition echo (layers, pooling
kernel/stride, ``loss_weight``), ``Solving <net>``. Every ``display`` iterations:
``Iteration N (x iter/s, ys/D iters), loss = L`` (BVLC >= 1.0; classic ``Iteration N,
loss = L``), where L is smoothed over ``average_loss`` iterations, then ``Train net output
#k: name = v (* w = wv loss)`` (this iteration's outputs) and ``Iteration N, lr = X``.
Iteration N is the loss of the (N+1)-th update (0-based). Caffe never stops on nan;
glibc may print ``-nan``. A resumed run echoes everything again and ``Restoring previous
solver status from ..._iter_K.solverstate``.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..render import Clock, Cols, Line, Printer, cfmt, mean
from ..runs import Trajectory

_POLICY = {"constant": "fixed", "warmup": "fixed", "step": "step", "warmup_step": "step", "cosine": "poly"}
_NAMES = {"mlp": "BlobNet", "cnn": "CIFAR8_quick", "gru": "SeqNet", "linreg": "LinReg", "mlp_reg": "RegNet"}


class Caffe(Printer):
    name = "caffe"
    intervals = (1, 10, 20, 50, 100)

    def options(self, rng: np.random.Generator, traj: Trajectory) -> dict:
        return {"style": str(rng.choice(["new", "new", "old"])), "avg": int(rng.choice([1, 1, 0])),
                "neg_nan": bool(rng.random() < 0.3), "net_echo": bool(rng.random() < 0.5),
                "tid": int(rng.integers(1000, 40000)), "acc": bool(rng.random() < 0.5)}

    def printed_step(self, tstep: int, traj: Trajectory, opts: dict) -> int:
        return tstep - 1

    def render(self, traj: Trajectory, interval: int, opts: dict, rng: np.random.Generator) -> list[Line]:
        clock = Clock(rng)
        lines: list[Line] = []
        spec = traj.spec
        average = interval if opts["avg"] == 0 else 1
        prefix_name = f"snapshots/{spec.model}_{spec.seed % 1000}"

        def glog(src: str, text: str, **kw: object) -> Line:
            now = clock.nudge()
            line = Line(f"I{now:%m%d %H:%M:%S}.{now.microsecond:06d} {opts['tid']:5d} {src}] {text}", **kw)  # type: ignore[arg-type]
            lines.append(line)
            return line

        for att in traj.attempts:
            if att.index:
                clock.gap()
            self._header(glog, lines, traj, interval, average, opts, prefix_name)
            if att.resumed_from:
                glog("solver.cpp:288", f"Restoring previous solver status from {prefix_name}_iter_"
                     f"{att.resumed_from}.solverstate", attempt=att.index)
                glog("sgd_solver.cpp:318", "SGDSolver: restoring history", attempt=att.index)
            self._train(glog, traj, Cols(att), interval, average, opts, clock, prefix_name)
        return lines

    def _header(self, glog, lines, traj, interval, average, opts, prefix) -> None:  # noqa: ANN001
        spec = traj.spec
        glog("caffe.cpp:204", "Using GPUs 0")
        glog("caffe.cpp:209", "GPU 0: GeForce GTX 1080 Ti")
        glog("solver.cpp:48", "Initializing solver from parameters: ")
        body = ["test_iter: 100", "test_interval: 100000", f"base_lr: {spec.lr:g}", f"display: {interval}",
                f"max_iter: {spec.max_steps}", f'lr_policy: "{_POLICY[spec.schedule]}"', "gamma: 0.1"]
        if "step" in spec.schedule:
            body.append(f"stepsize: {spec.extra.get('decay_every', spec.max_steps // 3)}")
        if spec.schedule == "cosine":
            body.append("power: 1")
        if spec.optimizer == "momentum":
            body.append("momentum: 0.9")
        body += ["weight_decay: 0.0005", f"snapshot: {spec.ckpt_every}", f'snapshot_prefix: "{prefix}"',
                 "solver_mode: GPU", f'net: "models/{spec.model}/train_val.prototxt"']
        if average > 1:
            body.append(f"average_loss: {average}")
        if spec.clip:
            body.append(f"clip_gradients: {spec.clip:g}")
        if spec.optimizer == "adam":
            body += ["momentum: 0.9", "momentum2: 0.999", 'type: "Adam"']
        lines.extend(Line(t, rankable=False) for t in body)
        glog("solver.cpp:91", f"Creating training net from net file: models/{spec.model}/train_val.prototxt")
        if opts["net_echo"]:
            glog("net.cpp:58", "Initializing net from parameters: ")
            lines.extend(Line(t, rankable=False) for t in _net_echo(traj))
        glog("net.cpp:283", "Network initialization done.")
        glog("solver.cpp:60", "Solver scaffolding done.")
        glog("caffe.cpp:252", "Starting Optimization")
        glog("solver.cpp:279", f"Solving {_NAMES[spec.model]}")
        glog("solver.cpp:280", f"Learning Rate Policy: {_POLICY[spec.schedule]}")

    def _train(self, glog, traj, c: Cols, interval, average, opts, clock, prefix) -> None:  # noqa: ANN001
        window: deque[float] = deque(maxlen=average)
        last_t = clock.elapsed()
        weights = traj.loss_weights
        for i in range(c.n):
            s = int(c.step[i])
            it = s - 1
            clock.advance()
            window.append(float(c.loss[i]))
            if it % interval == 0:
                smoothed = mean(list(window))
                took = clock.elapsed() - last_t
                last_t = clock.elapsed()
                nan = opts["neg_nan"]
                text = (f"Iteration {it} ({interval / took if took else 0:g} iter/s, {took:g}s/{interval} iters), "
                        f"loss = {cfmt(smoothed, nan)}" if opts["style"] == "new"
                        else f"Iteration {it}, loss = {cfmt(smoothed, nan)}")
                kw = dict(step=it, exact=True, tstep=s, attempt=c.att.index)
                glog("solver.cpp:218" if opts["style"] == "new" else "solver.cpp:209", text,
                     bad="" if math.isfinite(smoothed) else "loss", value=smoothed, **kw)
                self._outputs(glog, c, i, weights, opts, kw)
                glog("sgd_solver.cpp:105", f"Iteration {it}, lr = {cfmt(float(c.lr[i]))}", **kw)
            if s % traj.spec.ckpt_every == 0:
                glog("solver.cpp:464", f"Snapshotting to binary proto file {prefix}_iter_{s}.caffemodel",
                     step=it, attempt=c.att.index)
                glog("sgd_solver.cpp:284", f"Snapshotting solver state to binary proto file "
                     f"{prefix}_iter_{s}.solverstate", step=it, attempt=c.att.index)

    def _outputs(self, glog, c: Cols, i: int, weights: dict, opts: dict, kw: dict) -> None:  # noqa: ANN001
        k = 0
        nan = opts["neg_nan"]
        if opts["acc"] and c.acc is not None:
            glog("solver.cpp:237", f"    Train net output #{k}: accuracy = {cfmt(float(c.acc[i]))}", **kw)
            k += 1
        terms = {f"loss_{n}": (float(v[i]), weights[n]) for n, v in c.terms.items()} or {
            "loss": (float(c.loss[i]), 1.0)}
        for name, (value, w) in terms.items():
            bad = "" if math.isfinite(value) else "loss"
            glog("solver.cpp:237", f"    Train net output #{k}: {name} = {cfmt(value, nan)} "
                 f"(* {w:g} = {cfmt(value * w, nan)} loss)", bad=bad, **kw)
            k += 1


def _layer(name: str, kind: str, bottom: str, top: str, params: list[str]) -> list[str]:
    out = ["layer {", f'  name: "{name}"', f'  type: "{kind}"', f'  bottom: "{bottom}"', f'  top: "{top}"']
    return out + [f"  {p}" for p in params] + ["}"]


def _net_echo(traj: Trajectory) -> list[str]:
    spec = traj.spec
    out = [f'name: "{_NAMES[spec.model]}"', "state {", "  phase: TRAIN", "}"]
    scale = [] if spec.extra.get("input_scale") else ["  transform_param {", "    scale: 0.00390625", "  }"]
    out += ["layer {", '  name: "data"', '  type: "Data"', '  top: "data"', '  top: "label"', *scale,
            "  data_param {", '    source: "train_lmdb"', f"    batch_size: {spec.batch_size}",
            "    backend: LMDB", "  }", "}"]
    if spec.model == "cnn":
        c = max(2, spec.hidden // 4)
        out += _layer("conv1", "Convolution", "data", "conv1",
                      ["convolution_param {", f"  num_output: {c}", "  pad: 1", "  kernel_size: 3", "}"])
        out += _layer("relu1", "ReLU", "conv1", "conv1", [])
        out += _layer("pool1", "Pooling", "conv1", "pool1",
                      ["pooling_param {", "  pool: MAX", "  kernel_size: 2", "  stride: 2", "}"])
        out += _layer("conv2", "Convolution", "pool1", "conv2",
                      ["convolution_param {", f"  num_output: {2 * c}", "  pad: 1", "  kernel_size: 3", "}"])
        out += _layer("pool2", "Pooling", "conv2", "pool2",
                      ["pooling_param {", "  pool: MAX", "  kernel_size: 2", "  stride: 2", "}"])
        last = "pool2"
    else:
        out += _layer("ip1", "InnerProduct", "data", "ip1",
                      ["inner_product_param {", f"  num_output: {spec.hidden}", "}"])
        out += _layer("relu1", "ReLU", "ip1", "ip1", [])
        last = "ip1"
    classes = spec.extra.get("classes", 1) if spec.loss != "mse" else 1
    out += _layer("ip2", "InnerProduct", last, "ip2", ["inner_product_param {", f"  num_output: {classes}", "}"])
    kind = "EuclideanLoss" if spec.loss == "mse" else "SoftmaxWithLoss"
    if traj.loss_weights:
        out += _layer("loss_main", kind, "ip2", "loss_main", ["loss_weight: 1"])
        out += _layer("aux", "InnerProduct", last, "aux", ["inner_product_param {", "  num_output: 1", "}"])
        out += _layer("loss_aux", "EuclideanLoss", "aux", "loss_aux", [f"loss_weight: {traj.loss_weights['aux']:g}"])
    else:
        out += _layer("loss", kind, "ip2", "loss", [])
    return out
