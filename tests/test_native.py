"""The compiled column scanners (logsleuth/_native.c) give exactly what the regex rules give."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from logsleuth.io import open_log
from logsleuth.parsers import builtin_formats
from logsleuth.parsers._columns import NATIVE, ColumnRule, extract_native, extract_regex

from .conftest import REAL_LOGS

pytestmark = pytest.mark.skipif(NATIVE is None, reason="the C extension is not built")
NATIVE_RULES = [r for f in builtin_formats() for r in f.rules if isinstance(r, ColumnRule) and r.native]


def same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    pos_a, step_a, codes_a, names_a, values_a, bad_a, hp_a = a
    pos_b, step_b, codes_b, names_b, values_b, bad_b, hp_b = b
    return (np.array_equal(pos_a, pos_b) and np.array_equal(step_a, step_b, equal_nan=True)
            and metrics(codes_a, names_a) == metrics(codes_b, names_b)
            and np.array_equal(values_a, values_b, equal_nan=True)
            and [math.copysign(1, v) for v in values_a] == [math.copysign(1, v) for v in values_b]
            and bad_a == bad_b and hp_a == hp_b)


def metrics(codes, names) -> list:
    """Each row's metric name (None for a marker or an unreadable value)."""
    return [names[c] if c >= 0 else None for c in codes.tolist()]


def chunks_of(path) -> list[bytes]:
    log = open_log(str(path))
    try:
        return list(log.chunks())
    finally:
        log.close()


def test_the_caffe_rules_are_native() -> None:
    assert {r.name for r in NATIVE_RULES} >= {"iteration", "train-output", "test-output"}


@pytest.mark.parametrize("path", sorted(REAL_LOGS.glob("*.log")),
                         ids=lambda p: p.name)
def test_real_logs(path) -> None:
    for chunk in chunks_of(path):
        for rule in NATIVE_RULES:
            assert same(extract_native(rule, chunk), extract_regex(rule, chunk)), (path.name, rule.name)


def test_tricky_lines() -> None:
    lines = [
        "Iteration 100 (0.94 iter/s, 105.3s/100 iters), loss = 1746.73",
        "Iteration 7, loss = -nan", "Iteration 8, loss = 1.#QNAN", "Iteration 9, lr = 1e-05",
        "Iteration 10, loss = nan(ind)", "Iteration 11, loss = inf", "Iteration 12, lr = -1.#IND",
        "Iteration 13, Testing net (#0)", "Iteration 14 (broken, loss = 3", "Iteration , loss = 2",
        "Iteration 15, loss = 1_0", "Iteration 16, loss = abc", "Iteration 17, loss = 1.5e+10x",
        "Iteration 18 (x)\r, loss = 1", "IterationIteration 19, loss = 2.5", "Iteration 20, loss = ",
        "    Train net output #0: loss = 87.3365 (* 20 = 1746.73 loss)",
        "    Train net output #1: a = b = 2.5 (\\* 0.005 = 0.01 loss)",
        "    Train net output #2: spaced name = 3 (* 1 = 3 loss) trailing",
        "    Train net output #3: x = 1 (* 2 = 2 notloss)", "    Train net output #4: y = 1 (* w = 1 loss)",
        "    Train net output #5: = 1", "    Train net output #: z = 1", "    Train net output #6: q = nan",
        "    Test net output #0: accuracy = 0.6054", "    Test net output #1: loss = inf (* 1 = inf loss)",
        "    Test net output #2: name\rsplit = 1",
    ]
    text = ("\n".join(lines) + "\n").encode()
    for rule in NATIVE_RULES:
        assert same(extract_native(rule, text), extract_regex(rule, text)), rule.name


def test_random_mutations_of_caffe_lines() -> None:
    rnd = random.Random(7)
    base = (REAL_LOGS / "caffe_bvlc_361.log").read_bytes() if (REAL_LOGS / "caffe_bvlc_361.log").exists() \
        else b"Iteration 100, loss = 2.3\n    Train net output #0: loss = 2.3 (* 1 = 2.3 loss)\n"
    alphabet = b" =,()#*\\.-+e\r\nnaIloss0123456789"
    for _ in range(300):
        data = bytearray(base)
        for _ in range(rnd.randint(1, 30)):
            i = rnd.randrange(len(data))
            data[i:i + rnd.randint(0, 3)] = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 3)))
        chunk = bytes(data)
        for rule in NATIVE_RULES:
            assert same(extract_native(rule, chunk), extract_regex(rule, chunk)), (rule.name, chunk[:200])


def test_without_the_extension_the_regex_rules_give_the_same_series(monkeypatch) -> None:
    import logsleuth
    from logsleuth.parsers import _columns

    path = sorted(REAL_LOGS.glob("caffe_*.log"))[0]
    native = logsleuth.read_log(path).frame
    monkeypatch.setattr(_columns, "NATIVE", None)
    fallback = logsleuth.read_log(path).frame
    assert native.equals(fallback) and len(native)
