"""Caffe / NVCaffe glog logs, every generation.

``Iteration N, loss = X`` (classic), ``Iteration N (x iter/s, ...), loss = X`` (1.0),
``Iteration N, lr = X`` (+ NVCaffe ``, m = .9, wd = 5e-4, gs = 1``), ``Train/Test net
output #k: name = v (* w = v loss)``, ``Test score #k: v`` (2014), any prefix (glog,
unix epoch + ``INFO: src/caffe/solver.cpp : line 218 :``, a first line cut mid-prefix),
and the solver / net parameters echoed at start-up (prototxt, parsed with pyparsing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..engine import NUM, Batch, ColumnRule, Format, Rule, event, line_at, snake
from .hparams import flatten_prototxt, parse_prototxt

_EXTRA_RX = re.compile(rb", (\w+) = (" + NUM.encode() + rb")")
_EXTRA_NAMES = {b"m": "momentum", b"wd": "weight_decay", b"gs": "grad_scale"}
_HEADLINE = {"loss", "lr"}


_ITER_RX = re.compile(rb"Iteration (\d+)")


def _extras(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """NVCaffe's ``Iteration N, lr = X, m = 0.9, wd = 0.0005, gs = 1`` extra fields."""
    for m in matches:
        start, _ = line_at(m.string, m.start())
        it = _ITER_RX.search(m.string, start, m.start())
        step = int(it.group(1)) if it else None
        for k, v in _EXTRA_RX.findall(m.group(0)):
            out.metric_record(m.start(), step, _EXTRA_NAMES.get(k, snake(k.decode())), v)


def _output_name(phase: str):
    """Train outputs keep their names (``output_`` when they collide with a headline
    metric); test outputs become ``eval_<name>``."""

    def name(raw: str) -> str:
        base = snake(raw) or "output"
        if phase == "eval":
            return f"eval_{base}"
        return f"output_{base}" if base in _HEADLINE else base

    return name


def _test_score(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        out.add(m.start(), None, f"eval_score_{int(m.group('idx'))}", m.group("value"), "eval",
                            None, None, None)


def _key_position(body: bytes, key: str) -> int:
    """Offset in the echo of the line that printed ``key`` (``layer.pool1.stride`` is the
    ``stride:`` after ``name: "pool1"``); 0 when not found."""
    parts = key.split(".")
    start = 0
    if len(parts) == 3 and parts[0] == "layer":
        start = max(body.find(f'name: "{parts[1]}"'.encode()), 0)
    at = body.find(f"{parts[-1]}:".encode(), start)
    return max(at, 0)


def _prototxt_echo(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        body = m.group("body")
        flat = flatten_prototxt(parse_prototxt(body.decode("utf-8", "replace")))
        for key, value in flat.items():
            pos = m.start("body") + _key_position(body, key)
            out.hparams.append((pos, key, value))
            if key.endswith(".batch_size"):
                out.hparams.append((pos, "batch_size", value))
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
        ColumnRule("iteration", b"Iteration ",
                   r"Iteration (?P<step>\d+)(?: \([^)\r\n]*\))?, (?:(?P<key>loss|lr) = (?P<value>{VAL})"
                   r"|Testing net)", names=str, native="caffe_iteration"),
        Rule("nvcaffe-extras", b", m = ", r", m = {VAL}(?:, \w+ = {VAL})*", _extras),
        ColumnRule("train-output", b"Train net output #",
                   r"Train net output #\d+: (?P<name>[^=\r\n]+?) = (?P<value>{VAL})"
                   r"(?: \(\\?\* (?P<weight>{VAL}) = [^)\r\n]* loss\))?",
                   names=_output_name("train"), hparam=("loss_weight.{metric}", "weight"), native="caffe_output"),
        ColumnRule("test-output", b"Test net output #",
                   r"Test net output #\d+: (?P<name>[^=\r\n]+?) = (?P<value>{VAL})", names=_output_name("eval"),
                   phase="eval", native="caffe_output"),
        Rule("test-score", b"Test score #", r"Test score #(?P<idx>\d+): (?P<value>{NUM})", _test_score),
        Rule("solving", b"Solving ", r"Solving (?P<net>[^\r\n]+)", event("restart", cause="start")),
        Rule("param-echo", b"Initializing ",
             r"Initializing (?P<what>solver|net) from parameters: ?\r?\n"
             r"(?P<body>(?:(?![IWEF]\d{4} )[^\r\n]*\r?\n)*)", _prototxt_echo),
    ),
)
