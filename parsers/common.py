"""Messages every format may contain, whatever printed the metrics around them.

Overflow / skipped-step messages of DeepSpeed, apex and fairseq (with the loss-scale
trajectory), NaN messages (TF ``Model diverged``, CheckNumerics, Keras TerminateOnNaN,
``FloatingPointError ... iteration=N``), tracebacks and errors, checkpoints, restarts,
and hyperparameter echoes (``Namespace(...)``, ``TrainingArguments(...)``).
A DeepSpeed OVERFLOW glued to the end of a tqdm bar is found all the same: rules
search inside lines, not from their start.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from ..engine import Batch, Rule, canonical, event, line_at, to_float
from .hparams import parse_python_kwargs

_EXC_RX = re.compile(rb"(?:^|[\s:])((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception)): ?([^\r\n]*)")


def _scale_event(kind: str):
    """An overflow / loss-scale message: an event, and the new scale as a ``loss_scale``
    record, so the loss-scale trajectory is a series like any other."""

    def handle(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        for m in matches:
            g = m.groupdict()
            fields: dict[str, object] = {}
            if g.get("scale"):
                fields["loss_scale"] = to_float(g["scale"])
                out.add(m.start(), None, "loss_scale", g["scale"])
            if g.get("attempted"):
                fields["attempted_scale"] = to_float(g["attempted"])
            if g.get("rank"):
                fields["rank"] = int(g["rank"])
            out.events.append((m.start(), None, kind, fields))
    return handle


def _fpe(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """detectron2-style ``Loss became infinite or NaN at iteration=N``: event + step marker."""
    for m in matches:
        step = int(m.group("step"))
        out.events.append((m.start(), step, "nonfinite", {"message": m.group(0).decode("utf-8", "replace")}))
        out.add(m.start(), step, None, None, "train", None, None, None)


def _tensor_dict(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """``{'loss_cls': tensor(nan, device='cuda:0', ...), ...}``: each tensor value is a record."""


    for m in matches:
        for key, value in _TENSOR_KV.findall(m.group("body")):
            out.add(m.start(), None, canonical(key), value, "train", None, None, None)


def _fresh_bar(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """A tqdm bar at ``0/T`` with no description (the Hugging Face Trainer's main bar, a
    script's own loop) is a bar marker at step 0: printed again after training began, it
    is a new attempt appended to the log (the step goes back), even where buffered stdout
    printed the attempt's records after its crash. Bars with a description (``Map:``,
    ``Loading checkpoint shards:``) and eval bars (a smaller total) never count."""
    for m in matches:
        chunk = m.string
        start = line_at(chunk, m.start())[0]
        if chunk[start:m.start()].strip():
            continue
        # at the end of the line before: the bar comes before anything glued after it on its
        # line (``0/160 [00:00<?, ?it/s]12/02 ... Step 10: loss ...``, whose records sit at
        # the line's start)
        out.add(max(start - 1, 0), 0, None, None, "bar", None, None, int(m.group(1)))


def _checkpoint(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """A checkpoint saved at a printed step: an event, and the step carries forward."""
    for m in matches:
        step = int(m.group("step"))
        out.events.append((m.start(), step, "checkpoint", {}))
        out.add(m.start(), step, None, None, "train", None, None, None)


def _error(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """An exception line (``ValueError: ...``) or CUDA OOM, with the exception name."""
    seen: set[int] = set()
    for m in matches:
        chunk = m.string
        start = line_at(chunk, m.start())[0]
        if start in seen:
            continue
        end = chunk.find(b"\n", m.start())
        line = chunk[start:end if end != -1 else len(chunk)]
        exc = _EXC_RX.search(line)
        if exc is None:
            continue
        seen.add(start)
        name = exc.group(1).decode("utf-8", "replace")
        kind = "oom" if b"out of memory" in line.lower() else "error"
        out.events.append((start, None, kind, {"exception": name, "message": exc.group(2)[:200].decode("utf-8", "replace")}))


def _kwargs_echo(source: str):
    def handle(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        for m in matches:
            for key, value in parse_python_kwargs(m.group("body").decode("utf-8", "replace")).items():
                out.hparams.append((m.start(), key, value))
            out.events.append((m.start(), None, "config", {"source": source}))
    return handle


_TENSOR_KV = re.compile(rb"'(\w+)': tensor\(([^,)\s]+)")

# ---- failures said in words --------------------------------------------------------

#: phrases that say a loss, a gradient or an input went non-finite, or that a step was
#: dropped for it, in the wordings frameworks and training scripts use; each is
#: (literal anchor, pattern from it). The anchor is cut after the first letter where
#: both cases occur (``oss is nan`` for Loss/loss).
SAID_IN_WORDS: tuple[tuple[bytes, str], ...] = (
    (b"oss is ", r"oss is (?:nan|NaN|NAN|inf|Inf|INF|infinite|not finite|non-finite)"),
    (b"oss became ", r"oss became (?:nan|NaN|NAN|inf\b|Inf\b|INF\b)"),
    (b"oss went ", r"oss went (?:nan|NaN|inf|to nan|to NaN|to inf)"),
    (b"nvalid loss", r"nvalid loss"),
    (b"NaN or Inf found", r"NaN or Inf found"),
    (b"kipping update", r"kipping update"),
    (b"FloatingPointError", r"FloatingPointError"),
    (b"invalid value (", r"invalid value \((?:nan|inf)\) encountered"),
    (b"etected NaN", r"etected NaN"), (b"etected nan", r"etected nan"), (b"etected inf", r"etected inf"),
    (b"etected Inf", r"etected Inf"),
    (b"NaN detected", r"NaN detected"), (b"nan detected", r"nan detected"),
    (b"NaN loss", r"NaN loss"), (b"nan loss", r"nan loss"), (b"NAN loss", r"NAN loss"),
    (b"inf loss", r"inf loss"), (b"nfinite loss", r"nfinite loss"),
    (b"on-finite loss", r"on-finite loss"), (b"onfinite loss", r"onfinite loss"),
    (b"returned nan values", r"returned nan values"),
    (b"found NaN", r"found NaN"), (b"found nan", r"found nan"), (b"Found NaN", r"Found NaN"),
    (b"ncountered NaN", r"ncountered NaN"), (b"ncountered nan", r"ncountered nan"),
    (b"NaN found", r"NaN found"), (b"nan found", r"nan found"),
)
#: anchors cut after their first letter (its case varies): the word starts one byte earlier
_CUT = frozenset({b"oss is ", b"oss became ", b"oss went ", b"nvalid loss", b"kipping update", b"etected NaN",
                  b"etected nan", b"etected inf", b"etected Inf", b"nfinite loss", b"on-finite loss",
                  b"onfinite loss", b"ncountered NaN", b"ncountered nan"})
_LEAD = {pattern.encode(): 1 for anchor, pattern in SAID_IN_WORDS if anchor in _CUT}
#: where the line says the opposite ("no nan found", "found nan: 0", "skip_nan_loss")
_NEGATED = re.compile(rb"(?i)\b(?:no|not|without|zero|0)\s+(?:nan|inf)|(?:nan|inf)\w*\s*[:=]\s*(?:0\b|false|none)")
#: source lines quoted by a traceback, which mention a failure without reporting one
_CODE = re.compile(rb"^\s*(?:\[(?:rank|default)\d+\]:\s*)?(?:raise|except|if|elif|assert|def|return|warnings\.warn|"
                   rb"logger\.\w+|print)\b|"
                   rb"is(?:nan|inf|finite)\(")
_LINE_STEP = re.compile(rb"(?i)\b(?:global[_ ]step|step|iter(?:ation)?|it|batch|update)s?\b\s*[:=#]?\s*\[?\s*(\d+)")


def _said_in_words(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """A line that says a value went non-finite is a ``nonfinite`` event (never a metric),
    with the step the line prints; lines that another rule already made a non-finite or
    overflow event keep that one."""
    chunk, taken = None, set()
    for m in itertools.islice(matches, _MAX_SAID):
        if chunk is None:
            chunk = m.string
            taken = {line_at(chunk, e[0])[0] for e in out.events if e[2] in _FAILURE_KINDS}
        at = m.start() - _LEAD.get(m.re.pattern, 0)
        before = chunk[at - 1:at] if at > 0 else b" "
        if before.isalnum() or before in (b"_", b"-"):
            continue  # inside another word or identifier (skip_nan_loss, detect_anomaly)
        if chunk[max(0, at - 2):at] == b"= ":
            continue  # a value, not words: Caffe's `(* 1 = nan loss)`
        start, line = line_at(chunk, at)
        if start in taken or _NEGATED.search(line) or _CODE.search(line):
            continue
        taken.add(start)
        step = _LINE_STEP.search(line)
        out.events.append((start, int(step.group(1)) if step else None, "nonfinite",
                           {"message": line.strip()[:200].decode("utf-8", "replace"),
                            "said": chunk[at:m.end()].decode("utf-8", "replace")}))


#: phrases of one kind looked at per chunk: a log that says it on every line says it
#: often enough (the first ones are the evidence), and events are kept in memory
_MAX_SAID = 200
#: event kinds that already say a step was non-finite (the said-in-words rule defers to them)
_FAILURE_KINDS = frozenset({"overflow", "nonfinite", "loss_missing", "terminate_on_nan", "min_loss_scale"})


COMMON_RULES: tuple[Rule, ...] = (
    Rule("deepspeed-overflow", b"OVERFLOW! Rank",
         r"OVERFLOW! Rank (?P<rank>\d+) Skipping step\. Attempted loss scale: (?P<attempted>{NUM})"
         r"(?:, reducing to (?P<scale>{NUM}))?", _scale_event("overflow")),
    Rule("apex-overflow", b"Gradient overflow.",
         r"Gradient overflow\.\s+Skipping step(?:, loss scaler \d+ reducing loss scale to (?P<scale>{NUM}))?",
         _scale_event("overflow")),
    Rule("fairseq-overflow", b"overflow detected",
         r"overflow detected,(?: ignoring gradient,)? setting loss scale to: (?P<scale>{NUM})",
         _scale_event("overflow")),
    Rule("nonfinite-gradients", b"gradients are Nan/Inf", r"gradients are Nan/Inf", event("nonfinite")),
    Rule("nan-detector", b" detected in output of ", r" detected in output of (?P<module>[\w.]+)",
         event("nonfinite", message="NaN/Inf detected in a module output")),
    # DeepSpeed, when the scheduler is read before the optimizer ever stepped: every step
    # so far was skipped by the fp16 loss scaler (an overflow each)
    Rule("deepspeed-not-stepped", b"tried to get lr value before scheduler/optimizer started stepping",
         r"tried to get lr value before scheduler/optimizer started stepping", _scale_event("overflow")),
    Rule("min-loss-scale", b"Minimum loss scale reached",
         r"Minimum loss scale reached \(?(?P<scale>{NUM})?", _scale_event("min_loss_scale")),
    Rule("deepspeed-min-scale", b"Current loss scale already at minimum",
         r"Current loss scale already at minimum", _scale_event("min_loss_scale")),
    Rule("tf-diverged", b"Model diverged", r"Model diverged with loss = (?P<loss>\S+?)\.?(?=\s|$)",
         event("nonfinite", message="Model diverged")),
    Rule("check-numerics", b"Tensor had ", r"Tensor had (?P<what>NaN|Inf) values", event("nonfinite")),
    Rule("nonfinite-norm", b"is non-finite", r"is non-finite", event("nonfinite")),
    Rule("terminate-on-nan", b"Batch ", r"Batch (?P<batch>\d+): Invalid loss, terminating training",
         event("terminate_on_nan")),
    Rule("floating-point-error", b"Loss became infinite or NaN",
         r"Loss became infinite or NaN at iteration=(?P<step>\d+)", _fpe),
    Rule("loss-dict", b"loss_dict = {", r"loss_dict = \{(?P<body>[^}\r\n]*)", _tensor_dict),
    Rule("traceback", b"Traceback (most recent call last)", r"Traceback \(most recent call last\)",
         event("traceback")),
    Rule("error", b"Error: ", r"Error: ", _error),
    Rule("exception", b"Exception: ", r"Exception: ", _error),
    Rule("cuda-oom", b"out of memory", r"out of memory", _error),
    Rule("fresh-bar", b" 0%|", r" 0%\|[^|\r\n]*\| 0/(\d+) \[", _fresh_bar),
    Rule("tf-checkpoint", b"Saving checkpoints for", r"Saving checkpoints for (?P<step>\d+)", _checkpoint),
    Rule("caffe-snapshot", b"Snapshotting to", r"Snapshotting to (?P<path>[^\r\n]+)", event("checkpoint")),
    Rule("hf-checkpoint", b"Saving model checkpoint to", r"Saving model checkpoint to (?P<path>[^\r\n]+)",
         event("checkpoint")),
    Rule("saved-checkpoint", b"saved checkpoint", r"saved checkpoint (?P<path>\S+)", event("checkpoint")),
    Rule("megatron-checkpoint", b"saving checkpoint at iteration",
         r"saving checkpoint at iteration\s+(?P<step>\d+)", _checkpoint),
    Rule("caffe-restore", b"Restoring previous solver status", r"Restoring previous solver status",
         event("restart", cause="resume")),
    Rule("hf-restart", b"***** Running training *****", r"\*\*\*\*\* Running training \*\*\*\*\*",
         event("restart", cause="start")),
    Rule("lightning-restore", b"Restoring states from the checkpoint", r"Restoring states from the checkpoint",
         event("restart", cause="resume")),
    Rule("tf-restore", b"Restoring parameters from", r"Restoring parameters from", event("restart", cause="resume")),
    # the framework's own word that training ran to its end (not a crash or a kill)
    Rule("lightning-stopped", b"` stopped: `",
         r"` stopped: `(?P<limit>max_steps|max_epochs|max_time)=?[^`\r\n]*` reached", event("completed")),
    Rule("hf-completed", b"Training completed. Do not forget", r"Training completed\. Do not forget",
         event("completed")),
    Rule("hf-train-runtime", b"'train_runtime': ", r"'train_runtime': ", event("completed")),
    *(Rule(f"said-in-words-{i}", anchor, pattern, _said_in_words) for i, (anchor, pattern) in enumerate(SAID_IN_WORDS)),
    Rule("namespace", b"Namespace(", r"Namespace\((?P<body>[^\r\n]*)\)", _kwargs_echo("Namespace")),
    Rule("training-arguments", b"TrainingArguments(",
         r"TrainingArguments\((?P<body>(?:[^()]|\([^()]*\))*)\)", _kwargs_echo("TrainingArguments")),
)

__all__ = ["COMMON_RULES"]
