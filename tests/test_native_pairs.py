"""The compiled pair scanner (logsleuth/_native.c ``pair_split``) gives exactly what
``re.split`` gives with the pair patterns it implements (logsleuth/engine/pairs.py)."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logsleuth.engine import KV_ANY, KV_STYLES, split_columns, split_regex
from logsleuth.engine import native as switch
from logsleuth.parsers import keras, pytorch

from .conftest import FIXTURES, REAL_LOGS

pytestmark = pytest.mark.skipif(not switch.available(), reason="the C extension is not built")
NATIVE_PATTERNS = {"colon": KV_STYLES["colon"], "equals": KV_STYLES["equals"], "any": KV_ANY,
                   "value-avg": pytorch._VALUE_AVG, "lr": pytorch._LR, "keras-count": keras._COUNT}

_KEYS = ["loss", "lr", "Acc@1", "val_loss", "s0.loss_cls", "losses/total", "grad-norm", "_x", "a", "B", "eta",
         "k" * 127, "k" * 128, "K" * 129, "9" * 130 + "loss", "q" * 200, "tensor", "x"]
_SEPARATORS = [":", "=", " ", "  ", ": ", " = ", ":\t", "\n", "\r", "\x0b", "\x0c", "'", '"', "': ", '": ', "[",
               " [", "tensor(", ", ", " - ", "/", " / ", "(", ")", "]", "}", "{", ",", ";", "|", "@", "-", "+", "."]
_NUMBERS = ["0", "12", "0.5", "-1e-3", "+2.5E+10", ".5", "5.", "1e", "1e+", "1.5E", "1.5e3x", "007", "3:18:45",
            "1.#INF", "1.#QNAN", "-1.#IND", "1.#SNAN", "1.#INF00", "1.#INFx", "1.#QNA", "2#IND",
            "nan", "-nan", "NaN", "NAN", "naN", "Nan", "nAn", "nan(ind)", "nan(IND)", "nan(snan)", "nan(x)",
            "nan.0", "nan.0x", "nan.00", "nanxxx", "nanxxxy", "nanx_", "nanQ", "inf", "-inf", "Inf", "INF",
            "Infinity", "infinity", "INFINITY", "INFinity", "infinit", "infx", "INFO", "+inf", "44.41Batch",
            "1.5:", "2:x", "0.5/", "3/10", "3 / 10", "3/", "12/25x", "1,000"]
_OTHER = ["LR:", "LR: ", " (", " ( ", ")", " )", "\x00", "é", "\xff", "━", "x", "_", "1", "e", "E", "#",
          "Iteration", "Epoch", "12/25 [===>.]", "25/25 - ", "3/10 ━━ ", "1/2 ━", " [==>..]", "[=", "12/"]
_TOKENS = st.sampled_from(_KEYS + _SEPARATORS + _NUMBERS + _OTHER)


def _encode(parts: list[str]) -> bytes:
    return "".join(parts).encode("utf-8", "surrogateescape")


#: a likely pair: key, separator(s), number, what follows it (random tokens alone rarely make one)
_PAIR = st.tuples(st.sampled_from(_KEYS), st.lists(st.sampled_from(_SEPARATORS), min_size=1, max_size=3).map("".join),
                  st.sampled_from(_NUMBERS), st.sampled_from(_SEPARATORS + _OTHER + _NUMBERS + [""])).map("".join)
_TEXT = st.lists(st.one_of(_TOKENS, _PAIR), max_size=40).map(_encode)
_RAW = st.binary(max_size=300)


def same_split(rx, text: bytes) -> bool:
    native_starts, native_groups = split_columns(rx, text)
    regex_starts, regex_groups = split_regex(rx, text)
    return native_starts.tolist() == regex_starts.tolist() and native_groups == regex_groups


@settings(max_examples=2000, deadline=None)
@given(_TEXT, st.sampled_from(sorted(NATIVE_PATTERNS)))
def test_random_payloads(text, pattern) -> None:
    assert same_split(NATIVE_PATTERNS[pattern], text)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_TEXT, _RAW), max_size=8).map(b"".join), st.sampled_from(sorted(NATIVE_PATTERNS)))
def test_random_bytes_among_the_tokens(text, pattern) -> None:
    assert same_split(NATIVE_PATTERNS[pattern], text)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_TOKENS, min_size=1, max_size=40).map(_encode), st.integers(1, 4))
def test_64k_lines(piece, letters) -> None:
    """Lines of 64 KB: repeated payloads, and runs of key characters far longer than a key."""
    long_run = b"a" * (1 << 16) if letters == 1 else b"ab1." * (1 << 14)
    for text in (piece * ((1 << 16) // len(piece) + 1), long_run + piece, piece + long_run + b": 1"):
        for rx in NATIVE_PATTERNS.values():
            assert same_split(rx, text)


def test_what_the_regex_backtracks_into() -> None:
    """Hand-picked cases where NUM gives back an optional part so that END holds."""
    cases = [b"loss: 1.#INFx", b"loss: 1.5E", b"loss: 1e5x", b"loss: 1.x", b"loss: 1.5e3:4", b"a:1B:2",
             b"loss: nan.0x", b"loss: nanxx(", b"loss: nan(ind)x", b"loss: infinityx", b"loss 3 /10x",
             b"loss 3/10'x", b"loss: '1'x", b"'loss': '0.5'", b'"loss": NaN,', b"loss [tensor(2.5)", b"lo ss 1",
             b"Loss 2.6e+00 (2.6e+00)", b"Acc@1   0.00 (  0.11)", b"x_Loss 1 (2)", b"_Loss 1 (2)", b"Loss: 1 ( nan )",
             b"Loss 1.#INF (1.#INFx)", b"Loss 1.#INF(2)", b"Loss 1.5E (2)", b"LR: 1e-4", b"LR:1", b"LR:  nanx",
             b"loss: nan(snan)", b"loss:\n1", b"loss = \r 2", b"loss=", b"loss", b"", b"x" * 300 + b":1",
             b"_" * 129 + b"=2", "12/25/30 - 3/4 ━━━ 5/6 ━━x 7/8 [=>.] 9/9 [=x]".encode(), b"1/2 -  ",
             b"a1/2 - "]
    for text in cases:
        for name, rx in NATIVE_PATTERNS.items():
            assert same_split(rx, text), (name, text)


def test_every_key_separator_number_and_tail() -> None:
    """Every combination of a few keys, each separator pair, each number and each tail,
    the combinations separated as payloads are."""
    import itertools

    keys = ["loss", "'val_loss", "k" * 128, "9loss"]
    separators = [a + b for a in _SEPARATORS[:20] for b in ["", " ", "'", "[", "tensor("]]
    tails = ["", " ", ":", ": ", "x", "X", "'", "'x", "/", "/3", " / 4'", "/5x", ".", ",", "(", "\x00", " (1)",
             " ( nan )", "(2) ", " (1.#INFx)", " (3", " LR: 1", "/25 [==>.]", "/3 - ", "/4 ━━ "]
    text = b"\n\x00".join(_encode(list(parts)) for parts in itertools.product(keys, separators, _NUMBERS, tails))
    for name, rx in NATIVE_PATTERNS.items():
        assert same_split(rx, text), name


def _logs() -> list:
    return sorted(FIXTURES.glob("*/*.log")) + sorted(REAL_LOGS.glob("*.log"))


@pytest.mark.parametrize("path", _logs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixtures_and_real_logs(path) -> None:
    text = path.read_bytes()[: 4 << 20]
    for name, rx in NATIVE_PATTERNS.items():
        assert same_split(rx, text), name


@pytest.mark.parametrize("fmt", ["keras", "pytorch", "generic", "mmcv", "lightning", "detectron2"])
def test_without_the_extension_the_series_is_the_same(fmt) -> None:
    import logsleuth

    logs = sorted((FIXTURES / fmt).glob("*.log"))
    assert logs
    for path in logs:
        data = path.read_bytes()
        native = logsleuth.read_log(io.BytesIO(data))
        with switch.disabled():
            fallback = logsleuth.read_log(io.BytesIO(data))
        assert native.frame.astype({"metric": str}).equals(fallback.frame.astype({"metric": str})), path.name
        assert native.unparsed == fallback.unparsed and native.events == fallback.events, path.name
