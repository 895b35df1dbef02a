"""The rule gate: one non-overlapping Aho-Corasick pass must still find every anchor."""

from __future__ import annotations

import random

import pytest

from logsleuth.parsers import builtin_formats
from logsleuth.scan import Gate


def _texts(anchors: list[bytes], rng: random.Random, count: int) -> list[bytes]:
    """Anchors, whole and cut, glued so that they overlap each other as much as possible."""
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 6)):
            a = rng.choice(anchors)
            cut = rng.randint(0, len(a))
            parts.append(rng.choice([a, a[cut:], a[:cut], b" ", b"\n", b"x"]))
        texts.append(b"".join(parts))
    return texts


@pytest.mark.parametrize("fmt", builtin_formats(), ids=lambda f: f.name)
def test_gate_finds_every_anchor_even_inside_another(fmt) -> None:
    gate = Gate(fmt)
    rng = random.Random(fmt.name)
    for text in _texts(gate.anchors, rng, 1500):
        assert gate.present(text) == [i for i, a in enumerate(gate.anchors) if a in text], text


def test_an_anchor_hidden_in_another_match_is_found() -> None:
    fmt = next(f for f in builtin_formats() if f.name == "hf_trainer")
    gate = Gate(fmt)
    text = b"***** Running training *****\n"  # "***** " starts inside the longer anchor's match
    assert {gate.anchors[i] for i in gate.present(text)} >= {b"***** ", b"***** Running training *****"}


@pytest.mark.parametrize("fmt", builtin_formats(), ids=lambda f: f.name)
def test_gate_finds_the_formats_own_anchors_past_the_chunk_head(fmt) -> None:
    from logsleuth.scan import HEAD_BYTES

    gate = Gate(fmt)
    rng = random.Random(fmt.name + "long")
    for text in _texts(gate.anchors, rng, 200):
        split = rng.randint(0, len(text))
        text = text[:split] + b"x" * (HEAD_BYTES - rng.randint(0, 8)) + text[split:]  # part before, part after the head
        assert gate.present(text) == [i for i, a in enumerate(gate.anchors) if a in text], text[:200]
