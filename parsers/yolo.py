"""YOLOv5 / ultralytics training tables: ``  49/1799  6.47G  0.03901  0.003032  0.003846
14  416:  34%|███ | 178/517 [00:37<01:13, 4.64it/s]`` (each bar update a record, often
behind CI timestamps). Columns follow the header when the chunk holds it, else the first
one in the log (``Epoch GPU_mem box_loss cls_loss dfl_loss Instances Size`` in
ultralytics, ``Epoch gpu_mem box obj cls labels img_size`` in YOLOv5), else YOLOv5's order.

Step = epoch index * batches per epoch + batch (YOLOv5 counts epochs from 0, ultralytics from 1).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..engine import Batch, Format, Rule, line_at, snake

_ROW_HEAD = re.compile(rb"(?<!\d)(\d+)/(\d+)\s+[\d.]+$")
_BAR = re.compile(rb"\|\s*(\d+)/(\d+) \[")
_HEADER = re.compile(rb"Epoch\s+(?:gpu_mem|GPU_mem)\s+([A-Za-z_ ]+?)\s+(?:labels|Instances|targets)", re.I)
_V5 = ("box_loss", "obj_loss", "cls_loss")


def _columns(chunk: bytes, head: bytes) -> tuple[str, ...]:
    """The loss columns named by the header in this chunk, else in the log's head, else
    YOLOv5's order."""
    header = _HEADER.search(chunk) or _HEADER.search(head)
    if not header:
        return _V5
    names = tuple(snake(n.decode()) for n in header.group(1).split())
    return tuple(n if n.endswith("loss") or n == "total" else f"{n}_loss" for n in names)


def _row(matches: Iterator[re.Match[bytes]], out: Batch) -> None:
    names: tuple[str, ...] | None = None
    for m in matches:
        chunk = m.string
        start = line_at(chunk, m.start())[0]
        head = _ROW_HEAD.search(chunk, max(start, m.start() - 60), m.start())
        if head is None:
            continue
        names = names or _columns(chunk, out.head)
        epoch = int(head.group(1))
        first_epoch = 1 if "dfl_loss" in names else 0  # ultralytics counts epochs from 1, YOLOv5 from 0
        bar = _BAR.search(chunk, m.end(), m.end() + 200)
        step = (epoch - first_epoch) * int(bar.group(2)) + int(bar.group(1)) if bar else None
        for name, value in zip(names, m.group(1).split()):
            out.add(m.start(), step, name, value, "train", float(epoch), None, None)


FORMAT = Format(
    name="yolo",
    replayable=True,
    title="YOLOv5 / ultralytics training tables",
    samples=(
        "     49/1799      6.47G    0.03901   0.003032   0.003846         14        416:  34%|███▍      "
        "| 178/517 [00:37<01:13,  4.64it/s]",
        "      1/100      2.51G      1.234      2.345      1.456         32        640: 100%|██████████| "
        "50/50 [00:20<00:00,  2.45it/s]",
    ),
    sniff=(r"(?<!\d)\d+/\d+\s+\d+(?:\.\d+)?G\s+\S+\s+\S+", r"Epoch\s+(?:gpu_mem|GPU_mem)", r"(?i)yolo"),
    rules=(
        Rule("row", b"G ", r"G ((?:\s*[-+]?(?:[\d.]+(?:e[-+]?\d+)?|nan|inf)){2,4})\s+\d+\s+\d+(?::|\s)", _row),
    ),
)
