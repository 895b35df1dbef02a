"""Bounds on what one input may cost: no line, bar or message shape can hang a parse or
run away with memory.

A training log is written by code we do not control, and sometimes by code gone wrong:
a line of 100,000 ``loss=1`` pairs, a progress bar redrawn ten million times on one
physical line, a message printed on every line of a multi-GB file. Each bound keeps what
a diagnosis needs (the start, the end, every non-finite value) and counts what it cut;
the count becomes a warning in the report, so nothing is dropped silently.

* :data:`MAX_PAIRS` -- metric pairs read from one line (or bar update);
* :data:`MAX_LINE_BYTES` -- bytes of one line examined by the free-form and payload readers;
* :data:`MAX_UPDATES` -- carriage-return updates kept at each end of one physical line
  (:class:`CarriageLimit`; those printing nan/inf in between are kept too, up to
  :data:`MAX_NONFINITE_UPDATES`);
* :data:`MAX_EVENTS` -- events kept at each end per kind (the Assembler counts them all).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping

MAX_PAIRS = 200
MAX_LINE_BYTES = 64 << 10
MAX_UPDATES = 1000
MAX_NONFINITE_UPDATES = 20_000
MAX_EVENTS = 2000

#: cap name -> what its count means, for the warning
_SAID = {
    "pairs": f"line(s) printed more than {MAX_PAIRS} metric pairs: only the first {MAX_PAIRS} of each were read",
    "bytes": f"line(s) longer than {MAX_LINE_BYTES >> 10} KB: only their first {MAX_LINE_BYTES >> 10} KB "
             "were read for metrics",
    "updates": f"progress-bar update(s) dropped: a physical line keeps its first and last {MAX_UPDATES} "
               "carriage-return updates and those printing nan/inf",
    "events": f"event(s) not kept in full: each kind keeps its first and last {MAX_EVENTS} (all are counted)",
}

_NONFINITE_WORD = re.compile(rb"(?i)nan|inf")


def cap_warnings(source: str, capped: Mapping[str, int]) -> list[str]:
    """One warning per bound that cut something in ``source``."""
    return [f"{source}: {n:,} {_SAID.get(name, name + ' capped')}" for name, n in capped.items() if n]


def add_capped(into: dict, name: str, n: int = 1) -> None:
    into[name] = into.get(name, 0) + n


class CarriageLimit:
    """Drop the middle of a physical line redrawn more than ``2 * keep`` times.

    A tqdm bar left running for days writes millions of ``\\r`` updates without a newline;
    each is a record to scan. The first ``keep`` updates of a line and its last ``keep``
    pass, and so does every update in between that prints nan or inf; the rest are
    dropped and counted (:attr:`dropped`). Newlines are never touched, so line numbers
    hold. Chunks without more than ``keep`` carriage returns (nearly all) pass as they
    are after one ``bytes.count``.
    """

    def __init__(self, keep: int = MAX_UPDATES) -> None:
        self.keep = keep
        self.dropped = 0
        self._seen = 0  # updates of the current physical line so far
        self._tail: deque[bytes] = deque()  # its updates after the first ``keep``, held back
        self._nonfinite_kept = 0

    def feed(self, chunk: bytes) -> bytes:
        """The chunk with the middle updates of over-long lines dropped (the last updates
        of a line still open are held back until the line ends)."""
        if not self._tail and self._seen + chunk.count(b"\r") <= self.keep:
            last_nl = chunk.rfind(b"\n")
            self._seen = chunk.count(b"\r", last_nl + 1) + (self._seen if last_nl == -1 else 0)
            if last_nl != -1:
                self._nonfinite_kept = 0
            return chunk
        lines = chunk.split(b"\n")
        out = [self._line(line, ends=i < len(lines) - 1) for i, line in enumerate(lines)]
        return b"\n".join(out)

    def _line(self, line: bytes, ends: bool) -> bytes:
        """One physical line (or the start or continuation of one, ``ends`` when its
        newline is in this chunk)."""
        if not self._tail and self._seen + line.count(b"\r") <= self.keep:
            self._seen = 0 if ends else self._seen + line.count(b"\r")
            if ends:
                self._nonfinite_kept = 0
            return line
        open_end = not ends and line.endswith(b"\r")  # the chunk was cut after an update
        updates = (line[:-1] if open_end else line).split(b"\r")
        head_n = max(0, self.keep - self._seen)
        head, rest = updates[:head_n], updates[head_n:]
        self._seen += len(updates)
        out = head
        self._tail.extend(rest)
        if len(self._tail) > self.keep:
            out += self._kept_middle([self._tail.popleft() for _ in range(len(self._tail) - self.keep)])
        if ends:
            out += self._tail
            self._tail.clear()
            self._seen = 0
            self._nonfinite_kept = 0
        return b"\r".join(out) + (b"\r" if out and not ends else b"")

    def flush(self) -> bytes:
        """The updates still held back at the end of the input (a last line without newline)."""
        out = b"\r".join(self._tail)
        self._tail.clear()
        return out

    def _kept_middle(self, middle: list[bytes]) -> list[bytes]:
        """The middle updates printing nan/inf (up to a budget per line); counts the rest."""
        kept: list[bytes] = []
        if _NONFINITE_WORD.search(b"\r".join(middle)) is not None:
            room = MAX_NONFINITE_UPDATES - self._nonfinite_kept
            kept = [u for u in middle if _NONFINITE_WORD.search(u)][:max(0, room)]
            self._nonfinite_kept += len(kept)
        self.dropped += len(middle) - len(kept)
        return kept


__all__ = ["MAX_PAIRS", "MAX_LINE_BYTES", "MAX_UPDATES", "MAX_EVENTS", "CarriageLimit", "cap_warnings"]
