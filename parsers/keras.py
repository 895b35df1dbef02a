"""Keras: ``Epoch 3/10`` then verbose=1 progress bars (``120/500 [===>...] - ETA: 1s -
loss: 0.4``, carriage-return updates; Keras 3 draws ``120/500 ━━━━━━━━ 1s 8ms/step``) or verbose=2 epoch lines (``500/500 - 2s - loss:
0.4 - val_loss: ...``), Keras 1.x lines, and TerminateOnNaN (``Batch 3: Invalid loss``,
a cross-format event, found even when glued to the end of a bar).

Step = (epoch - 1) * batches per epoch + batch, with the epoch from the last ``Epoch``
line; ``val_*`` metrics are the eval phase. ``Epoch 1/N`` after training began starts a
new attempt (a re-queued job appended to the log), even where the step does not go back.
"""

from __future__ import annotations

import re
from typing import Iterator

from ._base import Batch, Format, KV_STYLES, Rule, canonical, line_at, phase_of, read_pairs

#: the batch counter of a bar: Keras 2 ``12/25 [===>...]``, Keras 3 ``12/25 ━━━━━━━━`` (U+2501
#: glyphs), verbose=2 ``25/25 - 0s - ...``
_COUNT = re.compile(rb"(?<!\d)(\d+)/(\d+)(?= \[[=>.]*\]| - | (?:\xe2\x94\x81)+ )")
_KV = KV_STYLES["colon"]
_SKIP = frozenset({"eta"})


def _epoch(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """The epoch marker; ``Epoch 1/N`` once training has begun is a new attempt (``fit``
    starts again from the first epoch: a re-queued job appending to the same log)."""
    for m in matches:
        epoch = float(m.group(1))
        if epoch == 1:
            out.event(m.start(), "restart", cause="start")
        out.marker(m.start(), epoch=epoch)


def _progress(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    """`` - loss: ...`` payloads; the batch counter is looked up earlier on the same update."""
    chunk = None
    for m in matches:
        chunk = m.string
        start = line_at(chunk, m.start())[0]
        count = _COUNT.search(chunk, start, m.start())
        it, total = (int(count.group(1)), int(count.group(2))) if count else (None, None)
        for key, value in read_pairs(_KV, m.group(1), out.capped):
            name = canonical(key)
            if name in _SKIP:
                continue
            out.add(m.start(), None, name, value, phase_of(name), None, it, total)


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
