"""The column-wise pair reader (parsers/_pairs.py) gives what read_pairs gives line by line."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from logsleuth.bounds import MAX_PAIRS
from logsleuth.engine import (
    KV_ANY,
    KV_STYLES,
    WORD_VALUE,
    line_end,
    line_ends,
    line_start,
    line_starts,
    pair_columns,
    read_pairs,
)
from logsleuth.parsers import keras, pytorch

PAIR_PATTERNS = {"colon": KV_STYLES["colon"], "equals": KV_STYLES["equals"], "any": KV_ANY,
                 "value-avg": pytorch._VALUE_AVG, "lr": pytorch._LR, "keras-count": keras._COUNT,
                 "config-word": WORD_VALUE}

_TOKENS = st.sampled_from(["loss", "lr", "Acc@1", "val_loss", ":", "=", " ", "  ", "- ", ", ", "(", ")", "( ", "'",
                           '"', "0.5", "-1e-3", "nan", "inf", "NaN", "1.#INF", "12", "/", "100/200", "x", "\t",
                           "━", "[==>..]", "eta", "\x00"])
_PAYLOAD = st.lists(_TOKENS, max_size=30).map(lambda parts: "".join(parts).encode())


def _by_line(rx, payloads):
    return [read_pairs(rx, p) for p in payloads]


def _by_columns(rx, payloads):
    owner, groups = pair_columns(rx, payloads)
    rows = list(zip(*groups)) if groups else [() for _ in owner]  # a pattern without groups: bare matches
    out = [[] for _ in payloads]
    for i, row in zip(owner.tolist(), rows):
        out[i].append(row if len(row) != 1 else row[0])
    return out


def test_a_payload_ends_like_a_line() -> None:
    """``_END`` sees the payload's end as the end of a line (found by the test below)."""
    assert _by_columns(KV_ANY, [b"loss:0.5:", b""]) == _by_line(KV_ANY, [b"loss:0.5:", b""]) == [[(b"loss", b"0.5", None)], []]


def test_a_pattern_without_groups_matches_alike() -> None:
    """WORD_VALUE only detects (no groups): found by the property test below."""
    assert _by_columns(WORD_VALUE, [b"':'loss", b"x"]) == [[()], []]
    assert _by_line(WORD_VALUE, [b"':'loss", b"x"]) == [[()], []]


@settings(max_examples=300, deadline=None)
@given(st.lists(_PAYLOAD, max_size=12), st.sampled_from(sorted(PAIR_PATTERNS)))
def test_columns_match_line_by_line(payloads, pattern) -> None:
    rx = PAIR_PATTERNS[pattern]
    payloads = [p.replace(b"\x00", b"") for p in payloads]  # payloads are text lines
    by_line = [[m if len(m) != 1 else m[0] for m in found] for found in _by_line(rx, payloads)]
    assert _by_columns(rx, payloads) == by_line


def test_no_pair_pattern_matches_the_separator() -> None:
    """Payloads are joined with a newline and a NUL: no pair pattern may run across it."""
    for name, rx in PAIR_PATTERNS.items():
        for sample in (b"loss:\n\x000.5", b"loss \n\x000.5", b"loss:\x000.5", b"loss=\x000.5", b"loss \x000.5", b"Loss 1.0 (\x002.0)", b"LR:\x001e-4",
                       b"12/\x0025 - ", b"'a': '\x00b'"):
            assert all(b"\x00" not in (g or b"") for m in rx.finditer(sample) for g in m.groups()), name


def test_pairs_per_payload_are_capped() -> None:
    capped: dict = {}
    owner, (keys, values) = pair_columns(KV_STYLES["equals"], [b" ".join([b"loss=1"] * (MAX_PAIRS + 50)), b"lr=2"],
                                         capped)
    assert np.count_nonzero(owner == 0) == MAX_PAIRS and np.count_nonzero(owner == 1) == 1
    assert capped == {"pairs": 1}


@given(st.binary(max_size=200).map(lambda b: b.replace(b"x", b"\n").replace(b"y", b"\r")), st.data())
def test_line_bounds_match_line_start_and_end(chunk, data) -> None:
    if not chunk:
        return
    positions = data.draw(st.lists(st.integers(0, len(chunk) - 1), min_size=1, max_size=10))
    at = np.array(positions, np.int64)
    assert line_starts(chunk, at).tolist() == [line_start(chunk, p) for p in positions]
    assert line_ends(chunk, at).tolist() == [line_end(chunk, p) for p in positions]
