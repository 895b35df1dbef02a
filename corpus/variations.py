"""Variations applied to a rendered log's tagged lines: what real captured logs look like.

* ``noise``: unrelated warnings, NCCL / wandb chatter, a traceback from another thread;
* ``ansi``: colour codes around prefixes or whole lines;
* ``ranks``: several ranks printing interleaved, each line prefixed ``[rankN]:`` or ``N:``;
* ``truncate_head`` / ``truncate_tail``: a pasted excerpt -- lines dropped and the first /
  last kept line cut mid-way (a cut line no longer counts as printing a loss value). Key
  lines (the first non-finite line of each attempt and epoch, the first hidden one) are
  never removed or cut.

Restarts are not a variation of the text: they are attempts of the real run (the
printers write them one after the other, each with its framework's resume banner).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .render import Line

NOISE: tuple[tuple[str, ...], ...] = (
    ("/opt/conda/lib/python3.8/site-packages/torch/optim/lr_scheduler.py:129: UserWarning: Detected call of "
     "`lr_scheduler.step()` before `optimizer.step()`. In PyTorch 1.1.0 and later, you should call them in the "
     "opposite order: `optimizer.step()` before `lr_scheduler.step()`.  Failure to do this will result in PyTorch "
     "skipping the first value of the learning rate schedule. See more details at "
     "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate",
     '  warnings.warn("Detected call of `lr_scheduler.step()` before `optimizer.step()`. "'),
    ("/opt/conda/lib/python3.8/site-packages/torch/utils/data/dataloader.py:557: UserWarning: This DataLoader will "
     "create 8 worker processes in total. Our suggested max number of worker in current system is 4, which is "
     "smaller than what this DataLoader is going to create. Please be aware that excessive worker creation might "
     "get DataLoader running slow or even freeze, lower the worker number to avoid potential slowness/freeze if "
     "necessary.", "  cpuset_checked))"),
    ("wandb: Network error (ReadTimeout), entering retry loop.",),
    ("node12:48213:48213 [0] NCCL INFO Bootstrap : Using eth0:10.1.4.12<0>",
     "node12:48213:48213 [0] NCCL INFO NET/Plugin : No plugin found (libnccl-net.so), using internal implementation",
     "node12:48213:48213 [0] NCCL INFO cudaDriverVersion 12020"),
    ("[W reducer.cpp:1303] Warning: find_unused_parameters=True was specified in DDP constructor, but did not find "
     "any unused parameters in the forward pass. This flag results in an extra traversal of the autograd graph "
     "every iteration, which can adversely affect performance. (function operator())",),
    ("huggingface/tokenizers: The current process just got forked, after parallelism has already been used. "
     "Disabling parallelism to avoid deadlocks...",
     "To disable this warning, you can either:",
     "\t- Avoid using `tokenizers` before the fork if possible",
     "\t- Explicitly set the environment variable TOKENIZERS_PARALLELISM=(true | false)"),
    ("Exception in thread Thread-3:",
     "Traceback (most recent call last):",
     '  File "/usr/lib/python3.8/threading.py", line 932, in _bootstrap_inner',
     "    self.run()",
     '  File "/opt/conda/lib/python3.8/site-packages/tensorboardX/event_file_writer.py", line 202, in run',
     "    self._record_writer.flush()",
     "OSError: [Errno 28] No space left on device"),
    ("W0523 10:13:21.205826 140328 deprecation.py:323] From /usr/lib/python3/dist-packages/tensorflow/python/"
     "training/saver.py:1276: checkpoint_exists (from tensorflow.python.training.checkpoint_management) is "
     "deprecated and will be removed in a future version.",
     "Instructions for updating:",
     "Use standard file APIs to check for files with this prefix."),
    ("/usr/local/lib/python3.6/dist-packages/torch/nn/functional.py:1340: UserWarning: nn.functional.tanh is "
     "deprecated. Use torch.tanh instead.",
     '  warnings.warn("nn.functional.tanh is deprecated. Use torch.tanh instead.")'),
    ("slurmstepd: error: Unable to create TMPDIR [/tmp/user/81234]: Permission denied",
     "slurmstepd: error: Setting TMPDIR to /tmp"),
)

_COLOURS = ("\x1b[32m", "\x1b[36m", "\x1b[1m", "\x1b[33m", "\x1b[34m")
_RESET = "\x1b[0m"


def mark_keys(lines: list[Line], epoch_of: dict[int, int] | None = None) -> None:
    """Key lines: first bad line per attempt and per epoch (up to three), first hidden line."""
    seen_attempts: set[int] = set()
    seen_epochs: set[int] = set()
    hidden = False
    for line in lines:
        if line.bad:
            ep = (epoch_of or {}).get(line.tstep or -1)
            if line.attempt not in seen_attempts:
                seen_attempts.add(line.attempt)
                line.key = True
            if ep is not None and ep not in seen_epochs and len(seen_epochs) < 3:
                seen_epochs.add(ep)
                line.key = True
        elif line.hidden and not hidden:
            hidden = line.key = True


def noise(lines: list[Line], rng: np.random.Generator) -> list[Line]:
    """Insert 1-6 blocks of unrelated output between complete lines."""
    breaks = [i for i, ln in enumerate(lines) if ln.end == "\n"]
    if not breaks:
        return lines
    at = sorted(rng.choice(breaks, size=min(len(breaks), int(rng.integers(1, 7))), replace=False).tolist())
    out: list[Line] = []
    for i, ln in enumerate(lines):
        out.append(ln)
        while at and at[0] == i:
            at.pop(0)
            block = NOISE[int(rng.integers(len(NOISE)))]
            out.extend(Line(t, step=ln.step, attempt=ln.attempt, rankable=False) for t in block)
    return out


def ansi(lines: list[Line], rng: np.random.Generator) -> list[Line]:
    """Colour some lines (whole, or just up to the first ``]`` like coloured logger prefixes)."""
    colour = _COLOURS[int(rng.integers(len(_COLOURS)))]
    share = float(rng.uniform(0.2, 1.0))
    for ln in lines:
        if ln.end == "\n" and ln.text and rng.random() < share:
            cut = ln.text.find("]") + 1
            if 0 < cut < 60:
                ln.text = f"{colour}{ln.text[:cut]}{_RESET}{ln.text[cut:]}"
            else:
                ln.text = f"{colour}{ln.text}{_RESET}"
    return lines


def ranks(lines: list[Line], rng: np.random.Generator) -> list[Line]:
    """Every rankable line printed by 2 or 4 ranks, prefixed, in a shuffled rank order."""
    world = int(rng.choice([2, 4]))
    style = ["[rank{r}]: ", "{r}: "][int(rng.integers(2))]
    out: list[Line] = []
    for ln in lines:
        if not ln.rankable or ln.end != "\n":
            out.append(ln)
            continue
        for r in rng.permutation(world).tolist():
            out.append(replace(ln, text=style.format(r=r) + ln.text, key=ln.key and r == 0))
    return out


def truncate(lines: list[Line], rng: np.random.Generator, head: bool, tail: bool) -> list[Line]:
    """Drop a head and / or a tail, cutting the boundary line mid-way; key lines survive."""
    keys = [i for i, ln in enumerate(lines) if ln.key]
    first_key = keys[0] if keys else len(lines)
    last_key = keys[-1] if keys else -1
    if head and first_key > 4:  # drop up to a third of the text, never past the first key line
        upto = _offsets(lines)
        starts = [i for i in range(1, first_key) if lines[i - 1].end == "\n" and upto[i] <= upto[-1] / 3]
        if starts:
            cut = starts[int(rng.integers(len(starts)))]
            lines = lines[cut:]
            last_key = last_key - cut if keys else -1
            first = lines[0]
            if not first.key and len(first.text) > 8:
                first.text = first.text[int(rng.integers(1, len(first.text) // 2)):]
                first.value = None  # its loss may be cut off: the label counts no value it may not show
    if tail and len(lines) - last_key > 4:  # keep at least half of the text and every key line
        upto = _offsets(lines)
        ends = [i for i in range(last_key + 1, len(lines) - 1) if lines[i].end == "\n" and upto[i] >= upto[-1] / 2]
        if ends:
            stop = ends[int(rng.integers(len(ends)))]
            lines = lines[:stop + 1]
            last = lines[-1]
            if not last.key and len(last.text) > 8:
                last.text = last.text[:int(rng.integers(len(last.text) // 2, len(last.text)))]
                last.end = ""
                last.value = None
    return lines


def _offsets(lines: list[Line]) -> list[int]:
    """Characters before each line (and the total, last)."""
    out = [0]
    for ln in lines:
        out.append(out[-1] + len(ln.text) + len(ln.end))
    return out


def apply(lines: list[Line], rng: np.random.Generator, kinds: list[str]) -> list[Line]:
    for kind in kinds:
        if kind == "noise":
            lines = noise(lines, rng)
        elif kind == "ansi":
            lines = ansi(lines, rng)
        elif kind == "ranks":
            lines = ranks(lines, rng)
    head, tail = "truncate_head" in kinds, "truncate_tail" in kinds
    if head or tail:
        lines = truncate(lines, rng, head, tail)
    return lines


def text_of(lines: list[Line]) -> str:
    return "".join(ln.text + ln.end for ln in lines)
