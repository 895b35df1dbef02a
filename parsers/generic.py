"""The fallback for everything else: any line mentioning a loss, read as free-form
``key value`` / ``key: value`` / ``key=value`` pairs (``epoch 1 iter 200 loss 0.52 lr
0.01``, ``02:29:53: train iter: 100 loss_net: nan norm: nan``, Python-logging lines).

Keys named step/iter/iteration/global_step/batch position the record, ``epoch`` sets the
epoch, ``iter 200/500`` is an iteration within an epoch; bookkeeping (time, eta, memory)
is dropped. When no line prints a step, records are counted instead (and the user told).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping

import ahocorasick_rs
import numpy as np

from ..engine import (
    EPOCH_KEYS,
    KV_ANY,
    MAX_LINE_BYTES,
    NOISE_KEYS,
    PROSE_KEYS,
    STEP_KEYS,
    WORD_VALUE,
    Batch,
    Format,
    Rule,
    add_markers,
    canonical,
    group_floats,
    line_ends,
    line_starts,
    match_starts,
    pair_columns,
    pair_rows,
    to_floats,
)

#: a loss with something like a number after it: a line we should have read ("possible",
#: "Cross validation..." and "loss is nan" in words are not unread metrics)
_METRIC_LOOKING = re.compile(rb"(?i)loss\w{0,64}['\"]?\s*[:=]?\s*['\"]?(?:[-+]?\.?\d|nan|inf)")


def lines_with_metrics(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """Every line (or bar update) containing the anchor, read once as a free-form print
    (:func:`free_form_lines`): a line saying ``loss`` 100,000 times costs its length once."""
    found = list(matches)
    if found:
        chunk = found[0].string
        starts = np.unique(line_starts(chunk, match_starts(found)))
        free_form_lines(chunk, starts, out)


#: what a free-form key is: the record's epoch, its step (or iteration within an epoch),
#: a metric, or neither (bookkeeping, a word of a sentence)
_EPOCH, _STEP, _METRIC, _DROPPED, _LR = 0, 1, 2, 3, 4


def _role(name: str) -> int:
    if name in EPOCH_KEYS:
        return _EPOCH
    if name in STEP_KEYS:
        return _STEP
    return _DROPPED if name in NOISE_KEYS or name in PROSE_KEYS else _METRIC


def free_form_lines(chunk: bytes, starts: np.ndarray, out: Batch, aliases: Mapping[str, str] | None = None) -> None:
    """Read the free-form prints (``epoch 1 iter 200/500 loss 0.52 lr 0.01``) starting at
    ``starts``, column-wise: each line's first ``epoch``, its first whole-number ``step``
    (``iter 200/500``: an iteration and the iterations per epoch), and its metric pairs
    (bookkeeping and words of a sentence left out) as rows at the line's start. A config
    echo (two quoted words as values: ``{'loss_type': 'l2', ...}``) gives no rows; a line
    with no pairs that looks like a metric line is counted as unparsed."""
    ends = line_ends(chunk, starts)
    lines = [chunk[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
    _rewrite_sentences(chunk, starts, ends, lines)
    config = _config_echoes(lines)
    owner, (keys, values, totals) = pair_columns(KV_ANY, lines, out.capped)
    if config.any() and len(owner):
        keep = ~config[owner]
        mask = keep.tolist()
        owner, keys, values, totals = (owner[keep], *(list(itertools.compress(c, mask)) for c in (keys, values, totals)))
    table = {k: canonical(k, aliases) for k in set(keys)}
    role_of = {k: _role(name) if name != "lr" else _LR for k, name in table.items()}
    role = np.fromiter(map(role_of.__getitem__, keys), np.int8, len(keys))
    has_total = np.fromiter(map(bool, totals), bool, len(totals))
    steps = np.flatnonzero(role == _STEP)
    whole = np.fromiter((b"." not in values[i] and values[i].lstrip(b"-+").isdigit() for i in steps.tolist()), bool,
                        len(steps))
    role[steps[~whole]] = _METRIC  # ``step 1.5`` is no position: a metric named step
    role[(role == _LR) & has_total] = _DROPPED  # ``lr 1/3``: a fraction, not a rate
    role[role == _LR] = _METRIC
    n = len(lines)
    epoch = _first_per_line(n, owner, role == _EPOCH, values)
    step = _first_per_line(n, owner, (role == _STEP) & ~has_total, values)
    it = _first_per_line(n, owner, (role == _STEP) & has_total, values)
    total = _first_per_line(n, owner, (role == _STEP) & has_total, totals)
    metric = role == _METRIC
    rows_of = np.bincount(owner[metric], minlength=n)
    for i in np.flatnonzero((rows_of == 0) & ~config).tolist():
        if _METRIC_LOOKING.search(lines[i], 0, MAX_LINE_BYTES):
            out.unparsed.append(int(starts[i]))
    if metric.any():
        mask = metric.tolist()
        pair_rows(out, starts, owner[metric], list(itertools.compress(keys, mask)),
                  list(itertools.compress(values, mask)), table.__getitem__, step=step, epoch=epoch, it=it, total=total)


#: phrasings the pair reader cannot pair as they stand: a phase word before the metric
#: (``Test Loss: 0.9``: an eval loss, not the train loss), ``<metric> at step N: V``
#: (Keras' own custom-loop guide: ``Training loss (for one batch) at step 200: 0.41``),
#: ``Step #N``
_PHASES = (b"training", b"train", b"validation", b"valid", b"val", b"test", b"evaluation", b"eval", b"dev")
_METRICS = (b"loss", b"accuracy", b"acc", b"perplexity", b"ppl", b"error", b"mae", b"mse", b"rmse", b"f1", b"auc")
_POSITIONS = (b"step", b"iteration", b"iter", b"batch", b"epoch")
_PHASE_WORD, _METRIC_WORD, _POSITION = (b"(?:" + b"|".join(words) + b")" for words in (_PHASES, _METRICS, _POSITIONS))
#: literal (lower-case) pieces of those phrasings, found in one pass (a case-insensitive
#: regex alternation costs a hundred milliseconds per MB; this, a few)
_SENTENCE_GATE = ahocorasick_rs.BytesAhoCorasick(
    [p + b" " + m for p in _PHASES for m in _METRICS] + [b" at " + w + b" " for w in _POSITIONS]
    + [w + b" #" for w in _POSITIONS] + [w + b"#" for w in _POSITIONS]
    + [b"loss scale", b" over epoch", b"mean loss", b"avg loss", b"average loss", b"running loss"],
    matchkind=ahocorasick_rs.MatchKind.LeftmostFirst)
_PHASE_PREFIX = {b"training": b"train_", b"train": b"train_", b"validation": b"val_", b"valid": b"val_",
                 b"val": b"val_", b"test": b"test_", b"evaluation": b"eval_", b"eval": b"eval_", b"dev": b"val_"}
_REWRITES = (
    (re.compile(rb"(?i)\b(" + _PHASE_WORD + rb") +(?=" + _METRIC_WORD + rb"\b)"),
     lambda m: _PHASE_PREFIX[m.group(1).lower()]),
    (re.compile(rb"(?i)\b([a-z]\w*)(?: \([^)\r\n]{0,40}\))? at (" + _POSITION + rb") +#?(\d+) *[:=] *"),
     rb"\2 \3 \1: "),
    (re.compile(rb"(?i)\b(" + _POSITION + rb") *# *(?=\d)"), rb"\1 "),
    # ``loss scale: 32768`` (a mixed-precision loop), ``Training loss over epoch: 0.41`` (an
    # epoch mean, not the epoch number), ``mean loss=0.15`` (an average, not the loss)
    (re.compile(rb"(?i)\bloss scale\b"), rb"loss_scale"),
    (re.compile(rb"(?i)\b(\w+) over epoch\b"), rb"\1_epoch"),
    (re.compile(rb"(?i)\b(mean|avg|average|running) (?=loss\b)"), rb"\1_"),
)


def _rewrite_sentences(chunk: bytes, starts: np.ndarray, ends: np.ndarray, lines: list[bytes]) -> None:
    """Rewrite, in place, the lines of ``lines`` in a phrasing of :data:`_REWRITES` into
    plain pairs (``Training loss (for one batch) at step 200: 0.41`` -> ``step 200
    Training_loss: 0.41``); one scan of the chunk finds them, other lines are untouched."""
    if not len(starts):
        return
    lo, hi = int(starts[0]), int(ends[-1])
    hits = np.array([a for _, a, _ in _SENTENCE_GATE.find_matches_as_indexes(chunk[lo:hi].lower())], np.int64) + lo
    if not len(hits):
        return
    at = np.searchsorted(starts, hits, "right") - 1
    for i in np.unique(at[hits < ends[at]]).tolist():
        line = lines[i][:MAX_LINE_BYTES]
        for rx, repl in _REWRITES:
            line = rx.sub(repl, line)
        lines[i] = line


def _config_echoes(lines: list[bytes]) -> np.ndarray:
    """Mask of the lines that are config echoes: two or more quoted words as values in
    their first 4 KB."""
    owner, _ = pair_columns(WORD_VALUE, [line[:4096] for line in lines])
    return np.bincount(owner, minlength=len(lines)) >= 2


def _first_per_line(n: int, owner: np.ndarray, mask: np.ndarray, values: list) -> np.ndarray:
    """Per line, the number of its first pair in ``mask`` (NaN where none)."""
    column = np.full(n, np.nan)
    rows = np.flatnonzero(mask)
    if len(rows):
        lines, first = np.unique(owner[rows], return_index=True)
        column[lines], _ = to_floats([values[r] for r in rows[first].tolist()])
    return column


def _epoch_start(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """``Start of epoch 3`` (Keras' custom-loop guide, copied by many TF2 loops): the epoch
    of the records after it, whose ``step`` counts batches within the epoch."""
    found = list(matches)
    if found:
        add_markers(out, match_starts(found), np.full(len(found), np.nan), group_floats(found, 1))


FORMAT = Format(
    name="generic",
    title="Generic key/value prints (fallback)",
    samples=(
        "epoch 1 iter 200 loss 0.52 lr 0.01",
        "02:31:56: train iter: 100 loss_net: nan loss_scale: 785.4200 norm: nan",
        "2023-01-01 12:00:00,123 - INFO - step=300 loss=0.412 grad_norm=1.9",
        "Epoch [1/10], Step [100/600], Loss: 0.2513",
    ),
    sniff=(),
    rules=(Rule("loss-line", b"oss", r"oss", lines_with_metrics),
           Rule("epoch-start", b"Start of epoch ", r"Start of epoch (\d+)", _epoch_start)),
    epoch_base=1,
    infer_steps=True,
    epoch_summaries=True,
    step_note="the log prints no step: steps are the order of the logged records",
)
