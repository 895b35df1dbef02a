"""DeepSpeed logs: ``[Rank 0] step=10, skipped=2, lr=[0.0001]`` progress lines, overflow
/ skipped-step messages with the loss-scale trajectory (cross-format events in
:mod:`parsers.common`, found even glued to a tqdm bar), tqdm descriptions carrying
metrics (``[losses/total_loss: 1.64 | ...]: 16%|...| 1024/6400``), the pipeline engine's
``steps: 18 loss: nan iter time (s): 3.235 samples/sec: 0.309``, and the engine's
configuration echo (``gradient_clipping ............ 1.0``) as hyperparameters.

Overflow messages print no step: it comes from the tqdm bar printed before them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..engine import VAL, Batch, Format, Rule, canonical, phase_of, read_pairs

_DESC_KV = re.compile(rb"([A-Za-z_][\w/.\-]{0,127}+):\s+(" + VAL.encode() + rb")")


def _step_line(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        step = int(m.group(1))
        out.add(m.start(), step, "skipped_steps", m.group(2), "train", None, None, None)
        out.add(m.start(), step, "lr", m.group(3), "train", None, None, None)


def _pipe_line(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        out.add(m.start(), int(m.group(1)), "loss", m.group(2), "train", None, None, None)


def _bar_description(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        chunk = m.string
        bar = re.match(rb"[^\r\n]*?(\d+)/(\d+) \[", chunk[m.end():m.end() + 400])
        step = int(bar.group(1)) if bar else None
        for key, value in read_pairs(_DESC_KV, m.group(1), out.capped):
            name = canonical(key)
            out.add(m.start(), step, name, value, phase_of(name), None, None, None)


def _config_echo(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    for m in matches:
        value = m.group(2).strip().decode("utf-8", "replace")
        out.hparams.append((m.start(), m.group(1).decode(), value))


FORMAT = Format(
    name="deepspeed",
    replayable=True,
    title="DeepSpeed (engine steps, overflow / loss-scale messages, config echo)",
    samples=(
        "[2024-09-11 17:52:18,030] [INFO] [loss_scaler.py:183:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping "
        "step. Attempted loss scale: 4294967296, reducing to 2147483648",
        "[2023-01-01 10:00:00,000] [INFO] [logging.py:96:log_dist] [Rank 0] step=10, skipped=2, lr=[0.0001], "
        "mom=[(0.9, 0.999)]",
        "[losses/total_loss: 1.64 | losses/policy_loss: 0.12]:  16%|██        | 1024/6400 [1:14:23<1:13:02,  1.23it/s]",
        "steps: 18 loss: nan iter time (s): 3.235 samples/sec: 0.309",
    ),
    sniff=(r"\[deepspeed\]", r"OVERFLOW! Rank", r"\[deepscale\]", r"log_dist", r"loss_scaler\.py", r"DeepSpeed",
           r"\[(?=[^\]\[\n]*: [-\d.e])[^\]\[\n]*+\]:\s+\d+%\|",
           r"^steps: \d+ loss: \S+ iter time"),
    rules=(
        Rule("step", b"step=", r"step=(\d+), skipped=(\d+), lr=\[({VAL})", _step_line),
        Rule("pipe", b"steps: ", r"steps: (\d+) loss: ({VAL}) iter time", _pipe_line),
        Rule("bar-description", b"[", r"\[((?=[^\]\r\n\[]*?:\s+{VAL})[^\]\r\n\[]*+)\]:\s+\d+%", _bar_description),
        Rule("config", b":print]", r":print\]\s+(\w+) \.{2,} ([^\r\n]+)", _config_echo),
    ),
    bar_steps=True,
)
