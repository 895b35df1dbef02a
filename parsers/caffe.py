"""Caffe / NVCaffe glog logs, every generation.

``Iteration N, loss = X`` (classic), ``Iteration N (x iter/s, ...), loss = X`` (1.0),
``Iteration N, lr = X`` (+ NVCaffe ``, m = .9, wd = 5e-4, gs = 1``), ``Train/Test net
output #k: name = v (* w = v loss)``, ``Test score #k: v`` (2014), any prefix (glog,
unix epoch + ``INFO: src/caffe/solver.cpp : line 218 :``, a first line cut mid-prefix),
and the solver / net parameters echoed at start-up (prototxt, parsed with pyparsing).
"""

from __future__ import annotations

import re
from typing import Iterator

from ._base import Batch, Format, Rule, event
from ._grammar import NUM, snake
from .hparams import flatten_prototxt, parse_prototxt

_EXTRA_RX = re.compile(rb", (\w+) = (" + NUM.encode() + rb")")
_EXTRA_NAMES = {b"m": "momentum", b"wd": "weight_decay", b"gs": "grad_scale"}
_HEADLINE = {"loss", "lr"}


_KEYS = {b"loss": "loss", b"lr": "lr", None: None}


def _iteration(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """``Iteration N, loss|lr = X``; ``Iteration N, Testing net`` only sets the step (a marker)."""
    found = [(m.start(), *m.groups()) for m in matches]  # pos, step, key, value, extra
    if not found:
        return
    out.block([f[0] for f in found], [f[1] for f in found], [_KEYS[f[2]] for f in found],
              [f[3] for f in found])
    for pos, step, _, _, extra in found:
        if extra:  # NVCaffe: ", m = 0.9, wd = 0.0005, gs = 1"
            for k, v in _EXTRA_RX.findall(extra):
                out.metric_record(pos, int(step), _EXTRA_NAMES.get(k, snake(k.decode())), v)


def _output_name(raw: bytes, phase: str) -> str:
    base = snake(raw.decode("utf-8", "replace")) or "output"
    if phase == "eval":
        return f"eval_{base}"
    return f"output_{base}" if base in _HEADLINE else base


def _outputs(phase: str):
    """``Train|Test net output #k: name = v (* w = v loss)``; the step is inherited."""

    def handle(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        found = [(m.start(), *m.groups()) for m in matches]  # pos, name, value, weight
        if not found:
            return
        names = {raw: _output_name(raw, phase) for raw in {f[1] for f in found}}
        out.block([f[0] for f in found], None, [names[f[1]] for f in found], [f[2] for f in found], phase)
        weights = {names[f[1]]: (f[0], f[3]) for f in reversed(found) if f[3] is not None}
        for name, (pos, weight) in weights.items():
            out.hparams.append((pos, f"loss_weight.{name}", float(weight)))

    return handle


def _test_score(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        out.add(m.start(), None, f"eval_score_{int(m.group('idx'))}", m.group("value"), "eval",
                            None, None, None)


def _prototxt_echo(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        flat = flatten_prototxt(parse_prototxt(m.group("body").decode("utf-8", "replace")))
        for key, value in flat.items():
            out.hparams.append((m.start(), key, value))
            if key.endswith(".batch_size"):
                out.hparams.append((m.start(), "batch_size", value))
        out.events.append((m.start(), None, "config", {"source": m.group("what").decode()}))


FORMAT = Format(
    name="caffe",
    title="Caffe / NVCaffe glog (solver.cpp)",
    samples=(
        "I0425 10:13:21.206111  9167 solver.cpp:65] Iteration 220, loss = nan",
        "I0502 17:48:26.913466 22378 solver.cpp:218] Iteration 100 (0.948815 iter/s, 105.395s/100 iters), "
        "loss = 1746.73",
        "I0502 17:48:26.913609 22378 solver.cpp:237]     Train net output #1: cross_entropy_loss = 87.3365 "
        "(* 20 = 1746.73 loss)",
        "I0331 11:06:36.754066 24302 sgd_solver.cpp:106] Iteration 500, lr = 0.001",
        "I0331 11:06:38.593856 24302 solver.cpp:404]     Test net output #0: accuracy = 0.6054",
        "I0918 02:06:02.779747  5721 solver.cpp:270] Test score #1: 2.30258",
        "1494585600 INFO: src/caffe/solver.cpp : line 218 : Iteration 300, loss = 0.61",
        "I0101 00:00:00.000000  1000 solver.cpp:353] Iteration 400, lr = 0.01, m = 0.9, wd = 0.0005, gs = 1",
    ),
    sniff=(
        r"solver\.cpp ?:(?: line)? ?\d+ ?\]? ?:? ?Iteration \d+",
        r"Iteration \d+(?: \([^)\n]*\))?, (?:loss|lr) = ",
        r"(?:Train|Test) net output #\d+: ",
        r"Test score #\d+: ",
        r"Initializing (?:solver|net) from parameters",
    ),
    rules=(
        Rule("iteration", b"Iteration ",
             r"Iteration (\d+)(?: \([^)\r\n]*\))?, (?:(loss|lr) = ({VAL})((?:, \w+ = {VAL})*)|Testing net)",
             _iteration),
        Rule("train-output", b"Train net output #",
             r"Train net output #\d+: ([^=\r\n]+?) = ({VAL})(?: \(\\?\* ({VAL}) = {VAL} loss\))?",
             _outputs("train")),
        Rule("test-output", b"Test net output #",
             r"Test net output #\d+: ([^=\r\n]+?) = ({VAL})(?: \(\\?\* ({VAL}) = {VAL} loss\))?",
             _outputs("eval")),
        Rule("test-score", b"Test score #", r"Test score #(?P<idx>\d+): (?P<value>{NUM})", _test_score),
        Rule("solving", b"Solving ", r"Solving (?P<net>[^\r\n]+)", event("restart", cause="start")),
        Rule("param-echo", b"Initializing ",
             r"Initializing (?P<what>solver|net) from parameters: ?\r?\n"
             r"(?P<body>(?:(?![IWEF]\d{4} )[^\r\n]*\r?\n)*)", _prototxt_echo),
    ),
)
