"""Keras: ``Epoch 3/10`` then verbose=1 progress bars (``120/500 [===>...] - ETA: 1s -
loss: 0.4``, carriage-return updates; Keras 3 draws ``120/500 ━━━━━━━━ 1s 8ms/step``)
or verbose=2 epoch lines (``500/500 - 2s - loss: 0.4 - val_loss: ...``), Keras 1.x lines,
and TerminateOnNaN (``Batch 3: Invalid loss``, a cross-format event, found even when glued to the end of a bar).

Step = (epoch - 1) * batches per epoch + batch, with the epoch from the last ``Epoch``
line; ``val_*`` metrics are the eval phase. ``Epoch 1/N`` after training began starts a
new attempt (a re-queued job appended to the log), even where the step does not go back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np

from ..engine import (
    KV_STYLES,
    Batch,
    Format,
    Rule,
    add_markers,
    canonical,
    group_floats,
    line_starts,
    match_starts,
    native_pattern,
    pair_columns,
    pair_rows,
)

#: the batch counter of a bar: Keras 2 ``12/25 [===>...]``, Keras 3 ``12/25 ━━━━━━━━`` (U+2501
#: glyphs), verbose=2 ``25/25 - 0s - ...``
_COUNT = re.compile(rb"(?<!\d)(\d+)/(\d+)(?= \[[=>.]*\]| - | (?:\xe2\x94\x81)+ )")
native_pattern(_COUNT, 5)  # read by logsleuth/_native.c's pair_split where it is built
_KV = KV_STYLES["colon"]
_SKIP = frozenset({"eta"})


def _epoch(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """The epoch marker; ``Epoch 1/N`` once training has begun is a new attempt (``fit``
    starts again from the first epoch: a re-queued job appending to the same log)."""
    found = list(matches)
    if not found:
        return
    pos, epoch = match_starts(found), group_floats(found, 1)
    for p in pos[epoch == 1].tolist():
        out.event(p, "restart", cause="start")
    add_markers(out, pos, np.full(len(pos), np.nan), epoch)


def _progress(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """`` - loss: ...`` payloads; the batch counter is the first one earlier on the same
    update. Read column-wise (:mod:`logsleuth.engine.pairs`)."""
    found = list(matches)
    if not found:
        return
    pos = match_starts(found)
    it, total = _counts(found[0].string, pos)
    owner, (keys, values) = pair_columns(_KV, [m.group(1) for m in found], out.capped)
    pair_rows(out, pos, owner, keys, values, _name, it=it, total=total)


def _name(key: bytes) -> str | None:
    name = canonical(key)
    return None if name in _SKIP else name


def _counts(chunk: bytes, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(batch, batches per epoch) of the first counter on the update of each position
    before it, NaN where there is none."""
    # up to the payload's ``- `` (``300/1000 - loss: ...``: the counter's `` - `` is the payload's)
    heads = [chunk[a:b] for a, b in zip(line_starts(chunk, pos).tolist(), (pos + 2).tolist())]
    owner, (it, total) = pair_columns(_COUNT, heads)
    it_a, total_a = np.full(len(pos), np.nan), np.full(len(pos), np.nan)
    if len(owner):
        lines, first = np.unique(owner, return_index=True)
        it_a[lines] = np.array(it, np.float64)[first]
        total_a[lines] = np.array(total, np.float64)[first]
    return it_a, total_a


FORMAT = Format(
    name="keras",
    title="Keras progress bars and epoch lines (verbose=1/2, Keras 1.x)",
    samples=(
        "  4/234 [..............................] - ETA: 25:09:00 - loss: inf ",
        "249/249 [==============================] - 24s 96ms/step - loss: 2.3118 - acc: 0.1406 - val_loss: 1.7989",
        "1875/1875 - 3s - loss: 0.2913 - accuracy: 0.9160",
        "16/25 ━━━━━━━━━━━━━━━━━━━━ 0s 19ms/step - loss: 0.4769",
    ),
    sniff=(
        r"(?m)^Epoch \d+/\d+\s*$",
        r"(?<!\d)\d+/\d+ \[[=>.]+\] - ",
        r"(?<!\d)\d+/\d+ (?:\xe2\x94\x81)+ ",
        r" - loss: ",
        r"(?<!\d)\d+/\d+ - \d+m?s - ",
    ),
    rules=(
        Rule("epoch", b"Epoch ", r"Epoch (\d+)/\d+", _epoch),
        Rule("progress", b"- loss: ", r"- (loss: [^\r\n]*)", _progress),
    ),
    epoch_base=1,
)
