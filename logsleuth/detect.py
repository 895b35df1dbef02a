"""Choose the format from the head of the input: every format scores its sniff patterns.

The score of a format is the number of head lines its sniff patterns match (each
pattern capped, so one very frequent line cannot outvote several kinds of evidence);
ties go to registry order, where specific formats precede generic ones.
"""

from __future__ import annotations

from .parsers._base import Format

from .errors import FormatError
from .registry import all_formats, get_format

_CAP = 200


def scores(head: bytes, formats: tuple[Format, ...] | None = None) -> list[tuple[int, Format]]:
    """(score, format) for every format, best first."""
    formats = formats or all_formats()
    scored = []
    for order, fmt in enumerate(formats):
        hits = sum(min(len(rx.findall(head)), _CAP) for rx in fmt.sniff_rx)
        scored.append((hits, -order, fmt))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [(s, f) for s, _, f in scored]


def detect(head: bytes, forced: str | None = None) -> Format:
    """The format named by ``forced``, else the best-scoring one (the generic fallback if none score)."""
    if forced:
        return get_format(forced)
    ranked = scores(head)
    best_score, best = ranked[0]
    if best_score == 0:
        return get_format("generic")
    return best
