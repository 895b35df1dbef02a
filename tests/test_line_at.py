"""Line lookup around a position (``line_at``) and the evidence texts cut with it."""

from __future__ import annotations

import pytest

from logsleuth.engine import line_at, line_end, line_start
from logsleuth.parsers import builtin_formats
from logsleuth.scan import scan_chunk
from logsleuth.series import MAX_TEXTS, Assembler, prepare


def _reference(chunk: bytes, pos: int) -> tuple[int, bytes]:
    """The definition: the last separator before ``pos``, the first one from it."""
    start = max(chunk.rfind(b"\n", 0, pos), chunk.rfind(b"\r", 0, pos)) + 1
    ends = [e for e in (chunk.find(b"\n", pos), chunk.find(b"\r", pos)) if e != -1]
    return start, chunk[start:min(ends) if ends else len(chunk)]


def _chunks() -> list[bytes]:
    lines = [b"step %d loss %f" % (i, i / 7) for i in range(3000)]
    return [
        b"\n".join(lines),  # no \r at all: the case that used to scan the whole chunk
        b"\n".join(lines) + b"\n",
        b"\r".join(lines),  # bar updates only
        b"x" * 100_000 + b"\nloss nan\n" + b"y" * 70_000,  # lines far longer than the first window
        b"a\r\nb\n\rc\r\rd",
        b"",
        b"no separator at all " * 300,
    ]


@pytest.mark.parametrize("chunk", _chunks(), ids=range(len(_chunks())))
def test_line_at_matches_the_definition(chunk: bytes) -> None:
    n = len(chunk)
    positions = sorted({0, n, max(n - 1, 0), n // 2, *range(0, n, max(1, n // 997))})
    for pos in positions:
        assert line_at(chunk, pos) == _reference(chunk, pos), pos


def test_line_without_carriage_return_in_the_chunk() -> None:
    chunk = b"".join(b"I0101 solver.cpp:228] Iteration %d, loss = %d\n" % (i, i) for i in range(50_000))
    pos = chunk.index(b"Iteration 31337,")
    start, text = line_at(chunk, pos)
    assert text == b"I0101 solver.cpp:228] Iteration 31337, loss = 31337"
    assert chunk[start:].startswith(text) and chunk[start - 1:start] == b"\n"
    assert line_start(chunk, pos) == start and line_end(chunk, pos) == start + len(text)


def test_bar_update_is_its_own_line() -> None:
    chunk = b"head\n 10%| 1/10 [00:01<00:09]\r 20%| 2/10 [00:02<00:08]\n{'loss': nan}\n"
    pos = chunk.index(b"2/10")
    assert line_at(chunk, pos)[1] == b" 20%| 2/10 [00:02<00:08]"


def _assembled(chunk: bytes):
    fmt = next(f for f in builtin_formats() if f.name == "caffe")
    a = Assembler(fmt)
    a.feed(prepare(chunk, scan_chunk(fmt, chunk)))
    return a


def test_evidence_texts_are_the_lines_of_their_rows() -> None:
    lines = [b"I0101 00:00:00.000000  1 solver.cpp:228] Iteration %d, loss = %s" % (20 * i, b"nan" if i >= 30 else b"1.5")
             for i in range(40)]
    a = _assembled(b"\n".join(lines) + b"\n")
    nan_line = 31  # 1-based: the first non-finite row's line
    assert a.texts[nan_line] == lines[30].decode()
    assert a.texts[1] == lines[0].decode()  # the chunk's first row
    assert all(a.texts[k] == lines[k - 1].decode() for k in a.texts)


def test_a_long_nonfinite_tail_keeps_at_most_the_budget_of_texts() -> None:
    n = MAX_TEXTS + 5000
    chunk = b"".join(b"I0101 00:00:00.000000  1 solver.cpp:228] Iteration %d, loss = nan\n" % i for i in range(n))
    a = _assembled(chunk)
    assert len(a.texts) == MAX_TEXTS
    assert a.texts[1].endswith("Iteration 0, loss = nan")
    assert max(a.texts) == MAX_TEXTS  # the first rows of the tail, in line order
