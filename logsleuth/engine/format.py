"""What a format is: data (name, sample lines, sniff patterns, rules) plus tiny handlers.

A :class:`Rule` is a bytes regex that must begin with a literal ``anchor``: the scanner
first checks ``anchor in chunk`` (C speed, GB/s) and only then runs ``finditer`` over
the whole chunk, so a rule costs nothing on logs that never print it and C-level
searching on logs that do. Python runs once per *match*, never once per line.

Handlers append to a :class:`Batch`, a columnar scratchpad. A record whose step is not
printed on its line gets ``step=None`` and inherits the last known step later (forward
fill in :mod:`logsleuth.series`), which keeps every chunk independent of the others --
that is what lets two processes split one file.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..bounds import MAX_LINE_BYTES, MAX_PAIRS, add_capped
from .columns import ColumnRule
from .grammar import KEY, KEY_BOUNDED, NUM, VAL, snake

#: phase codes of records held as arrays; a bar (a tqdm update) is a marker, never a row
TRAIN, EVAL, BAR = 0, 1, 2
PHASE_CODES = {"train": TRAIN, "eval": EVAL, "bar": BAR}
#: metric code of a record whose value is not a number: no row, but still a record (a
#: bar before it gives its step), as when a handler adds it and ``prepare`` drops it
UNREADABLE = -2


class Columns(NamedTuple):
    """Records found by compiled or column-wise rules, as numpy arrays. A row's metric is
    ``names[codes[i]]``; code -1 marks a marker (or a value a column rule could not read),
    :data:`UNREADABLE` a record that is no row."""

    pos: np.ndarray  # int64
    step: np.ndarray  # float64, NaN where the line prints none
    codes: np.ndarray  # int32
    names: list
    value: np.ndarray  # float64
    phase: str | np.ndarray  # one phase for every row, or int8 codes per row
    epoch: np.ndarray | None = None
    total: np.ndarray | None = None  # a bar's total
    it: np.ndarray | None = None  # the batch within the epoch, where the step is not printed


class Batch:
    """Output of one chunk: records as eight parallel columns (position, step, metric,
    value, phase, epoch, iteration in epoch, iterations per epoch), plus events,
    hyperparameters and unparsed lines. A ``None`` metric marks a *marker*: it only
    carries step/epoch state and is never output."""

    __slots__ = ("pos", "step", "metric", "value", "phase", "epoch", "it", "total", "arrays", "events",
                 "hparams", "unparsed", "head", "capped")

    def __init__(self, head: bytes = b"") -> None:
        #: the start of the log (``LogInput.head``): a header printed once is there
        self.head = head
        self.pos: list[int] = []
        self.step: list[int | None] = []
        self.metric: list[str | None] = []
        self.value: list[bytes | None] = []
        self.phase: list[str] = []
        self.epoch: list[float | None] = []
        self.it: list[int | None] = []
        self.total: list[int | None] = []
        #: records found column-wise (column rules, compiled rules, bars)
        self.arrays: list[Columns] = []
        self.events: list[tuple] = []  # (pos, step, kind, fields)
        self.hparams: list[tuple] = []  # (pos, key, value)
        self.unparsed: list[int] = []  # positions of metric-looking lines we could not read
        self.capped: dict[str, int] = {}  # what the input bounds cut (logsleuth.bounds)

    def add(self, pos: int, step: int | None, metric: str | None, value: bytes | None, phase: str = "train",
            epoch: float | None = None, it: int | None = None, total: int | None = None) -> None:
        """One record (``metric`` None: a marker)."""
        self.pos.append(pos)
        self.step.append(step)
        self.metric.append(metric)
        self.value.append(value)
        self.phase.append(phase)
        self.epoch.append(epoch)
        self.it.append(it)
        self.total.append(total)

    def extend(self, pos: list[int], step: list, metric: list, value: list, phase: list, epoch: list) -> None:
        """Many records from parallel lists (a handler collects locally, then adds once)."""
        n = len(pos)
        self.pos += pos
        self.step += step
        self.metric += metric
        self.value += value
        self.phase += phase
        self.epoch += epoch
        none = [None] * n
        self.it += none
        self.total += none

    def metric_record(self, pos: int, step: int | None, name: str, value: bytes, phase: str = "train") -> None:
        self.add(pos, step, name, value, phase)

    def block(self, pos: list[int], step: list[bytes] | None, metric: str | list[str | None],
              value: list[bytes | None] | None, phase: str = "train") -> None:
        """Many records at once: the fast path for hot rules (no per-record call)."""
        n = len(pos)
        if not n:
            return
        self.pos += pos
        self.step += [int(s) if s else None for s in step] if step is not None else [None] * n
        self.metric += metric if isinstance(metric, list) else [metric] * n
        self.value += value if value is not None else [None] * n
        self.phase += [phase] * n
        none = [None] * n
        self.epoch += none
        self.it += none
        self.total += none

    def marker(self, pos: int, step: int | None = None, epoch: float | None = None,
               it: int | None = None, total: int | None = None) -> None:
        self.add(pos, step, None, None, "train", epoch, it, total)

    def event(self, pos: int, kind: str, step: int | None = None, **fields: object) -> None:
        self.events.append((pos, step, kind, fields))

    @property
    def records(self) -> list[tuple]:
        """The records as tuples (for tests and tools; the pipeline uses the columns)."""
        return list(zip(self.pos, self.step, self.metric, self.value, self.phase, self.epoch, self.it, self.total))


def _literal_prefix(source: str) -> bytes:
    """The literal bytes every match of ``source`` starts with (what makes searching fast)."""
    from re import _parser  # type: ignore[attr-defined]

    prefix = bytearray()

    def walk(items) -> bool:  # type: ignore[no-untyped-def]
        for op, arg in items:
            if op is _parser.LITERAL:
                prefix.append(arg)
            elif op is _parser.SUBPATTERN:
                if not walk(arg[-1]):
                    return False
            else:
                return False
        return True

    walk(_parser.parse(source))
    return bytes(prefix)


Handler = Callable[[Iterator["re.Match[bytes]"], Batch], None]


@dataclass(frozen=True)
class Rule:
    """One line shape. ``pattern`` must start with ``anchor`` (checked at import)."""

    name: str
    anchor: bytes
    pattern: str
    handler: Handler
    flags: int = 0
    #: the same rule compiled (``logsleuth._native``): called with (chunk, batch) instead
    #: of ``handler`` when the extension is built; returns False to leave it to ``handler``
    native: Callable[[bytes, Batch], bool] | None = None
    rx: re.Pattern[bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        source = self.pattern.replace("{NUM}", NUM).replace("{KEY}", KEY).replace("{VAL}", VAL)
        object.__setattr__(self, "rx", re.compile(source.encode(), self.flags))
        if not _literal_prefix(source).startswith(self.anchor):
            raise ValueError(f"rule {self.name}: pattern must start with its anchor {self.anchor!r}")

    def apply(self, chunk: bytes, out: Batch) -> None:
        """Run the rule if its anchor occurs in ``chunk`` (a C-speed test)."""
        if self.anchor in chunk:
            self.handler(self.rx.finditer(chunk), out)

    def run(self, chunk: bytes, out: Batch) -> None:
        """Run the rule, the caller having checked that its anchor occurs."""
        if self.native is None or not self.native(chunk, out):
            self.handler(self.rx.finditer(chunk), out)


@dataclass(frozen=True)
class Format:
    """A log format: data first. ``samples`` are real-looking lines the rules must read."""

    name: str
    title: str
    samples: tuple[str, ...]
    sniff: tuple[str, ...]
    rules: tuple[Rule | ColumnRule, ...]
    #: per-format metric renames applied after generic canonicalisation
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: records without a printed step take it from the nearest tqdm bar before them
    bar_steps: bool = False
    #: number of the first epoch as printed (Keras ``Epoch 1/10`` is 1, Lightning 0)
    epoch_base: int = 0
    #: the framework prints each message twice (absl + glog): drop the copy
    dedupe: bool = False
    #: the log prints no step at all: count logging records, and say so
    infer_steps: bool = False
    #: free-form prints: once lines print a step, a line with only an epoch is that epoch's
    #: summary (its metrics become ``<name>_epoch``), not more records of the step metrics
    epoch_summaries: bool = False
    #: what an inferred step means, shown to the user
    step_note: str = ""
    #: the framework whose terms the fixes use (a key of ``logsleuth.catalog.frameworks``);
    #: empty: the format's own name (formats not named so take the generic advice)
    framework: str = ""
    #: logs of PyTorch jobs: ``logsleuth replay`` can re-run their failing step
    replayable: bool = False
    sniff_rx: tuple[re.Pattern[bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sniff_rx", tuple(re.compile(s.encode(), re.M) for s in self.sniff))


# ---- canonical names ---------------------------------------------------------------

#: Generic spellings -> canonical metric names (DOMAIN.md: loss, lr, grad_norm, loss_scale, eval_loss).
ALIASES: dict[str, str] = {
    "learning_rate": "lr", "learning rate": "lr", "lr": "lr", "rate": "lr", "current_lr": "lr",
    "grad_norm": "grad_norm", "gnorm": "grad_norm", "grad norm": "grad_norm", "gradnorm": "grad_norm",
    "grad_norm_": "grad_norm", "norm": "grad_norm", "total_norm": "grad_norm",
    "loss_scale": "loss_scale", "loss scale": "loss_scale", "scale": "loss_scale",
    "lm loss": "loss", "total_loss": "loss", "loss": "loss", "train_loss": "loss", "total loss": "loss",
    "val_loss": "eval_loss", "valid_loss": "eval_loss", "eval_loss": "eval_loss", "test_loss": "eval_loss",
    "validation_loss": "eval_loss",
}

_CANON_CACHE: dict[tuple[int, bytes], str] = {}


def canonical(key: bytes | str, aliases: Mapping[str, str] | None = None) -> str:
    """Map a printed key to its canonical snake_case metric name (cached: keys repeat)."""
    raw = key if isinstance(key, bytes) else key.encode()
    cache_key = (id(aliases), raw)
    hit = _CANON_CACHE.get(cache_key)
    if hit is not None:
        return hit
    text = raw.decode("utf-8", "replace").strip().lower()
    prefix = ""
    if "/" in text:  # wandb-style namespaces: "train/loss" -> loss, "eval/loss" -> eval_loss
        space, _, text = text.rpartition("/")
        prefix = "eval_" if space.split("/")[-1] in ("eval", "val", "valid", "validation", "test") else ""
    name = (aliases or {}).get(text) or ALIASES.get(text) or snake(text) or "value"
    if name.startswith(("val_", "valid_", "test_")):
        name = "eval_" + name.split("_", 1)[1]
    if prefix and not name.startswith("eval_"):
        name = prefix + name
    if len(_CANON_CACHE) < 100_000:
        _CANON_CACHE[cache_key] = name
    return name


def phase_of(metric: str) -> str:
    """Eval metrics are named so (``eval_*``, ``val_*``, ``test_*``); everything else is train."""
    return "eval" if metric.startswith(("eval_", "val_", "test_", "valid_")) else "train"


# ---- handler factories -------------------------------------------------------------

# a value must end the token: "3:18:45" (an eta) is not a number, but "44.41Batch" (text
# glued to a Keras bar) still ends the number before the capital letter
_END = rb"(?![a-z0-9_/.]|:[^\s])"
_KV_COLON = re.compile(rb"(" + KEY_BOUNDED.encode() + rb"):\s*(" + NUM.encode() + rb")" + _END)
_KV_EQUALS = re.compile(rb"(" + KEY_BOUNDED.encode() + rb")\s*=\s*(" + NUM.encode() + rb")" + _END)
#: "key value" and "key: value" and "key=value", for free-form prints (generic fallback);
#: JSON and Python dict items too (``"loss": NaN``, ``'loss': '0.68'``: quoted keys and values)
KV_ANY = re.compile(rb"(" + KEY_BOUNDED.encode() + rb")['\"]?(?:\s*[:=]\s*|\s+)['\"]?\[?\s*(?:tensor\()?(" + NUM.encode()
                     + rb")(?:\s*/\s*(\d+))?['\"]?" + _END)
KV_STYLES = {"colon": _KV_COLON, "equals": _KV_EQUALS}

#: keys that position a record rather than measure anything
STEP_KEYS = frozenset({"step", "iter", "iteration", "it", "global_step", "steps", "num_updates", "updates",
                       "batch", "train_iter", "iters", "global_steps"})
EPOCH_KEYS = frozenset({"epoch", "ep", "epochs"})
#: bookkeeping numbers that are not training metrics
NOISE_KEYS = frozenset({"eta", "time", "data_time", "data", "sec", "secs", "seconds", "elapsed", "v_num", "max_mem",
                        "memory", "mem", "it_s", "s_it", "samples_per_second", "steps_per_second", "wall",
                        "train_wall", "gpu_mem", "total", "images", "hours", "left", "remaining", "eta_seconds",
                        "rank", "local_rank", "world_size"})


#: words of a sentence, never metric names (``loss is nan`` is said in words: an event)
PROSE_KEYS = frozenset({"is", "was", "be", "been", "became", "become", "becomes", "to", "of", "the", "a", "an", "at",
                        "in", "and", "or", "not", "with", "for", "by", "on", "are", "has", "had", "have", "got",
                        "went", "as", "from", "found", "detected", "encountered", "returned", "value", "values"})


def is_noise(name: str) -> bool:
    """Bookkeeping rather than training signal (throughput, timing, memory)."""
    return name in NOISE_KEYS


#: bytes looked at first around a position for its line's ends (grows 8x while none is found)
_LINE_WINDOW = 512


def line_start(chunk: bytes, pos: int) -> int:
    """Start of the line -- or progress-bar update -- containing ``pos``.

    Both separators are searched in a window before ``pos`` that grows until one is
    found: ``rfind`` over the whole chunk would scan it to its start for the separator a
    chunk does not have (most logs have no ``\\r``), making each call cost the chunk's
    size rather than the line's."""
    width = _LINE_WINDOW
    while True:
        lo = max(0, pos - width)
        start = max(chunk.rfind(b"\n", lo, pos), chunk.rfind(b"\r", lo, pos))
        if start != -1 or lo == 0:
            return start + 1
        width *= 8


def line_end(chunk: bytes, pos: int) -> int:
    """End (exclusive, at its separator) of the line or bar update containing ``pos``."""
    width, n = _LINE_WINDOW, len(chunk)
    while True:
        hi = min(n, pos + width)
        ends = [e for e in (chunk.find(b"\n", pos, hi), chunk.find(b"\r", pos, hi)) if e != -1]
        if ends:
            return min(ends)
        if hi == n:
            return n
        width *= 8


def line_at(chunk: bytes, pos: int) -> tuple[int, bytes]:
    """(start, text) of the line -- or progress-bar update -- containing ``pos``; costs
    the line's length, not the chunk's (see :func:`line_start`)."""
    start = line_start(chunk, pos)
    return start, chunk[start:line_end(chunk, pos)]


#: a quoted key with a quoted word for a value (``'loss_type': 'l2'``): two on a line make
#: it a config echo, whose numbers are hyperparameters, not a record
WORD_VALUE = re.compile(rb"""['"]\s*:\s*['"](?![-+.\d]|nan|inf|NaN|Inf)[A-Za-z]""")


def read_pairs(rx: re.Pattern[bytes], text: bytes, capped: dict | None = None) -> list[tuple]:
    """``rx.findall(text)`` within the input bounds: the first :data:`MAX_PAIRS` pairs of
    the first :data:`MAX_LINE_BYTES` bytes (a cut is counted in ``capped``). A line of
    100,000 ``loss=1`` pairs is a broken printer, not 100,000 metrics."""
    end = len(text)
    if end > MAX_LINE_BYTES:
        end = MAX_LINE_BYTES
        if capped is not None:
            add_capped(capped, "bytes")
    found = [m.groups() for m in itertools.islice(rx.finditer(text, 0, end), MAX_PAIRS + 1)]
    if len(found) > MAX_PAIRS:
        found.pop()
        if capped is not None:
            add_capped(capped, "pairs")
    return found


def fixed(metric: str, phase: str = "train") -> Handler:
    """Groups 1 ``step`` (may be empty) and 2 ``value``: one record of a fixed metric per match."""

    def handle(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        found = [(m.start(), m.group(1), m.group(2)) for m in matches]
        if found:
            out.block([f[0] for f in found], [f[1] for f in found], metric, [f[2] for f in found], phase)

    return handle


def event(kind: str, **static: object) -> Handler:
    """Every named group becomes a field of the event; group ``step`` becomes its step."""

    def handle(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
        for m in matches:
            fields = {k: v.decode("utf-8", "replace") for k, v in m.groupdict().items() if v is not None}
            step = fields.pop("step", None)
            out.events.append((m.start(), int(step) if step else None, kind, {**static, **fields}))

    return handle
