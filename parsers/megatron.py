"""Megatron-LM and Megatron-DeepSpeed: `` iteration  200/ 500000 | consumed samples: ... |
learning rate: 1.5E-04 | lm loss: 7.3E+00 | loss scale: 65536.0 | grad norm: 1.2 |
number of skipped iterations: 0 | number of nan iterations: 0 |``.

A nan step shows in Megatron-DeepSpeed as a line *without* the ``lm loss`` field (and
the nan counter may stay 0): such a line is a ``loss_missing`` event -- non-finite
evidence -- rather than a made-up nan value. A line whose interval was all fp16 overflow
skips also prints no loss (the average over zero iterations is 0, and Megatron prints
only averages above 0): with ``number of skipped iterations`` above 0 it is an
``overflow`` event instead; ``number of nan iterations`` above 0 is a ``nonfinite`` event.
Validation: ``validation loss at iteration N | lm loss value: ... | lm loss PPL: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..engine import VAL, Batch, Format, Rule, canonical, is_noise, to_float

_FIELD = re.compile(rb"\|\s*([A-Za-z][^:|\r\n]*?):\s+(" + VAL.encode() + rb")\s*(?=\||$)")
ALIASES = {"number of skipped iterations": "skipped_iterations", "number of nan iterations": "nan_iterations",
           "lm loss value": "eval_loss", "lm loss ppl": "eval_ppl"}
_NOISE = frozenset({"consumed_samples", "consumed_tokens", "elapsed_time_per_iteration_ms", "global_batch_size",
                    "samples_per_second", "tokens_per_gpu_per_second_tgs", "tflops", "actual_seqlen",
                    "elapsed_time_per_iteration", "throughput_per_gpu"})


def _fields(payload: bytes) -> list[tuple[str, bytes]]:
    names = [(canonical(k, ALIASES), v) for k, v in _FIELD.findall(payload)]
    return [(n, v) for n, v in names if n not in _NOISE and not is_noise(n)]


def _iteration(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        step = int(m.group(1))
        fields = _fields(m.group(2))
        for name, value in fields:
            out.add(m.start(), step, name, value, "train", None, None, None)
        counts = dict(fields)
        skipped = _count(counts.get("skipped_iterations"))
        nans = _count(counts.get("nan_iterations"))
        complete = m.group(2).rstrip().endswith(b"|")  # a pasted log's last line may be cut short
        if complete and not skipped and not any("loss" in n and "scale" not in n for n, _ in fields):
            # no loss although no iteration of the interval was skipped: the average was nan
            out.event(m.start(), "loss_missing", step, message="iteration line without a loss field")
        if nans:
            out.event(m.start(), "nonfinite", step, message=f"{nans} nan iteration(s) in this logging interval")
        elif skipped:  # Megatron's fp16 overflow: the step was skipped (a window of skips prints no loss)
            out.event(m.start(), "overflow", step, skipped=skipped)
        if not fields:
            out.marker(m.start(), step)


def _count(value: bytes | None) -> int:
    """A count field; one that is no finite number (a damaged line) counts as none."""
    try:
        return int(to_float(value)) if value else 0
    except (ValueError, OverflowError):
        return 0


def _validation(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        for name, value in _fields(m.group(2)):
            out.add(m.start(), int(m.group(1)), name, value, "eval", None, None, None)


FORMAT = Format(
    name="megatron",
    replayable=True,
    title="Megatron-LM / Megatron-DeepSpeed iteration lines",
    samples=(
        " iteration      122/  250000 | consumed samples:       124928 | elapsed time per iteration (ms): 86545.2 "
        "| learning rate: 9.150E-06 | global batch size:  1024 | lm loss: 2.504220E+00 | loss scale: 1.0 "
        "| grad norm: 0.231 | number of skipped iterations:   0 | number of nan iterations:   0 |",
        " validation loss at iteration 1000 | lm loss value: 2.3E+00 | lm loss PPL: 1.0E+01 | ",
    ),
    sniff=(r"iteration\s+\d+/\s*\d+ \|", r"consumed samples:", r"lm loss:", r"number of skipped iterations"),
    rules=(
        Rule("iteration", b"iteration", r"iteration\s+(\d+)/\s*\d+\s*((?:\|[^\r\n|]*)+)", _iteration),
        Rule("validation", b"validation loss at iteration ",
             r"validation loss at iteration (\d+)\s*((?:\|[^\r\n|]*)+)", _validation),
    ),
)
