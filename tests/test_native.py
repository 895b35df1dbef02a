"""The compiled column scanners (logsleuth/_native.c) give exactly what the regex rules give."""

from __future__ import annotations

import contextlib
import math
import random

import numpy as np
import pytest

from logsleuth.engine import ColumnRule, extract_native, extract_regex
from logsleuth.engine import native as switch
from logsleuth.io import open_log
from logsleuth.parsers import builtin_formats

from .conftest import FIXTURES, REAL_LOGS

pytestmark = pytest.mark.skipif(not switch.available(), reason="the C extension is not built")
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


def mutations(base: bytes, alphabet: bytes, count: int, seed: int):
    """``count`` copies of ``base``, each with 1 to 30 short random edits from ``alphabet``."""
    rnd = random.Random(seed)
    for _ in range(count):
        data = bytearray(base)
        for _ in range(rnd.randint(1, 30)):
            i = rnd.randrange(len(data))
            data[i:i + rnd.randint(0, 3)] = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(0, 3)))
        yield bytes(data)


def test_random_mutations_of_caffe_lines() -> None:
    base = (REAL_LOGS / "caffe_bvlc_361.log").read_bytes() if (REAL_LOGS / "caffe_bvlc_361.log").exists() \
        else b"Iteration 100, loss = 2.3\n    Train net output #0: loss = 2.3 (* 1 = 2.3 loss)\n"
    for chunk in mutations(base, b" =,()#*\\.-+e\r\nnaIloss0123456789", 300, seed=7):
        for rule in NATIVE_RULES:
            assert same(extract_native(rule, chunk), extract_regex(rule, chunk)), (rule.name, chunk[:200])


def test_without_the_extension_the_regex_rules_give_the_same_series() -> None:
    import logsleuth

    path = sorted(REAL_LOGS.glob("caffe_*.log"))[0]
    compiled = logsleuth.read_log(path).frame
    with switch.disabled():
        assert switch.compiled() is None
        fallback = logsleuth.read_log(path).frame
    assert switch.compiled() is not None
    assert compiled.equals(fallback) and len(compiled)


# ---- Hugging Face dict lines and tqdm bars -------------------------------------------


def _read_both(data: bytes, fmt: str | None = None):
    """The series of ``data`` with the compiled paths, and with the Python ones."""
    import io

    import logsleuth

    compiled = logsleuth.read_log(io.BytesIO(data), format=fmt)
    with switch.disabled():
        fallback = logsleuth.read_log(io.BytesIO(data), format=fmt)
    return compiled, fallback


def _same_series(a, b) -> bool:
    return (a.frame.astype({"metric": str}).equals(b.frame.astype({"metric": str})) and a.events == b.events
            and a.unparsed == b.unparsed and a.unparsed_examples == b.unparsed_examples and a.hparams == b.hparams)


HF_LIKE = sorted([*REAL_LOGS.glob("hf_*.log"), *REAL_LOGS.glob("deepspeed_*.log"),
                  *FIXTURES.glob("hf_trainer/*.log"), *FIXTURES.glob("deepspeed/*.log")])


@pytest.mark.parametrize("path", HF_LIKE, ids=lambda p: p.name)
def test_hf_dicts_and_bars_give_the_series_of_the_python_rules(path) -> None:
    native, fallback = _read_both(path.read_bytes())
    assert len(native.frame) and _same_series(native, fallback)


def test_hf_tricky_dicts() -> None:
    bar = "  5%|▌         | {n}/200 [00:0{n}<00:30,  6.1it/s]"
    lines = [
        bar.format(n=1) + "\r" + bar.format(n=2), "{'loss': 0.5, 'grad_norm': nan, 'learning_rate': 5e-05, 'epoch': 0.1}",
        bar.format(n=3), "{'loss': abc, 'epoch': 0.2}", "{'loss': 1.0, 'step': 7, 'epoch': x}",
        "{'loss': 2.0, 'step': 7.5}", "{'eval_loss': inf, 'eval_runtime': 1.2, 'epoch': 0.3}",
        "{'loss': 1.#QNAN, 'grad_norm': -nan, 'epoch': 0.4, 'epoch': 0.5}", "{'loss': 3 'x': 1}",
        "{'train_runtime': 12.0, 'train_loss': 0.7, 'epoch': 1.0}", "{'loss':0.5}", "{'loss': 0.5",
        "{'lossy/a.b-c': 1e-3, 'test_acc': 0.9}", bar.format(n=4) + "{'loss': 0.25, 'epoch': 0.6}",
        "{'learning_rate': 1_0}", "x" * 50 + "0/5 [00:00<" + "{'loss': 9.0}",
    ]
    native, fallback = _read_both(("\n".join(lines) + "\n").encode("utf-8"), "hf_trainer")
    assert len(native.frame) > 5 and native.unparsed and _same_series(native, fallback)


def test_random_mutations_of_hf_logs() -> None:
    base = (FIXTURES / "hf_trainer" / "bars_eval_hidden_nan.log").read_bytes()
    for data in mutations(base, b"{}':, ./-_\r\n0123456789naelossgrd[]<%|", 150, seed=11):
        native, fallback = _read_both(data, "hf_trainer")
        assert _same_series(native, fallback), data[:300]


# ---- CSV and JSON lines ---------------------------------------------------------------


def _written(kind: str, table, source: str | None = None, native: bool = True) -> bytes:
    """What the csv or jsonl writer writes for ``table`` (without its header line), with
    the C formatter or with the fallback (pyarrow's CSV writer, :mod:`json`)."""
    import io

    from logsleuth import output

    out = io.BytesIO()
    with contextlib.nullcontext() if native else switch.disabled():
        writer = (output._CsvWriter if kind == "csv" else output._JsonlWriter)(out, source is not None)
        start = len(out.getvalue())
        writer.write(table, source or "")
    return out.getvalue()[start:]


def _random_doubles() -> list:
    rng = np.random.default_rng(3)
    n = 100_000
    raw_bits = rng.integers(0, 2**64, n, dtype=np.uint64).view(np.float64)
    printed = np.array([float(f"{x:.{int(p)}g}") for p, x in
                        zip(rng.integers(1, 18, n), rng.standard_normal(n) * 10.0 ** rng.integers(-12, 24, n).astype(float))])
    edges = np.array([0.0, -0.0, 1e-7, 1e-6, 9.99999e-7, 1e9, 999999999.0, 1e10, 1e15, 1e16, 1e17, 5e-324,
                      2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 1 / 3, 100.0, 123456789012345.0,
                      1234567890123456.0, 0.30000000000000004, math.nan, math.inf, -math.inf, 4.35, 0.00012345])
    long_digits = 10.0 ** rng.uniform(-7.5, 15.5, n)  # mostly 16 and 17 significant digits
    powers = np.array([f(10.0 ** k) for k in range(-12, 23) for f in (float, lambda x: np.nextafter(x, 0),
                                                                        lambda x: np.nextafter(x, math.inf))])
    return [raw_bits, printed, edges, long_digits, powers, 2.0 ** np.arange(-30, 60)]


def _table_of(values):
    import pyarrow as pa

    rng = np.random.default_rng(len(values))
    return pa.table({"v": pa.array(values), "i": pa.array(rng.integers(-2**63, 2**63 - 1, len(values))),
                     "e": pa.array(values, mask=rng.random(len(values)) < 0.1)})


def test_csv_writes_doubles_as_pyarrow_does() -> None:
    for values in _random_doubles():
        table = _table_of(values)
        assert _written("csv", table) == _written("csv", table, native=False)


def test_json_lines_keep_every_digit_and_are_strict() -> None:
    import json

    for values in _random_doubles():
        table = _table_of(values)
        native = [json.loads(line) for line in _written("jsonl", table, "a/b.log").splitlines()]
        python = [json.loads(line) for line in _written("jsonl", table, "a/b.log", False).splitlines()]
        assert native == python and len(native) == len(values)
        assert [r["v"] for r in native] == [v if math.isfinite(v) else "nan" if math.isnan(v) else "inf" if v > 0
                                            else "-inf" for v in values.tolist()]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*/*.log")), ids=lambda p: p.parent.name + "/" + p.name)
def test_every_golden_is_written_as_the_fallbacks_write_it(path) -> None:
    import json

    from logsleuth.api import start_parse

    for table in start_parse(str(path)).frames():
        for source in (None, f'dir,with "quotes"/{path.name}'):
            assert _written("csv", table, source) == _written("csv", table, source, False)
            native, python = (_written("jsonl", table, source, n).splitlines() for n in (True, False))
            assert [json.loads(line) for line in native] == [json.loads(line) for line in python]  # 2 == 2.0


def test_forward_fill_matches_numpy() -> None:
    from logsleuth import series

    rng = np.random.default_rng(5)
    cases = []
    for _ in range(300):
        values = rng.random(int(rng.integers(0, 40)))
        values[rng.random(len(values)) < 0.6] = np.nan
        cases.append((values, float(rng.choice([np.nan, 3.0]))))
    compiled = [series._ffill(v, c) for v, c in cases]
    with switch.disabled():
        for (values, carry), got in zip(cases, compiled):
            assert np.array_equal(got, series._ffill(values, carry), equal_nan=True)


NUMBER_TOKENS = [b"1.5", b"-2e-3", b"+7", b".5", b"5.", b"1e400", b"-0", b"nan", b"-nan", b"NaN", b"inf", b"-inf",
                 b"Infinity", b"1.#QNAN", b"-1.#IND", b"nan(ind)", b"1_000", b" 2 ", b"1e", b"1.2.3", b"-", b"",
                 b"x", b"0x10", b"\xff", 3.25, -0.0, math.inf, None, "4.5", 7]


@pytest.mark.parametrize("none_nan", [False, True])
def test_floats_of_converts_as_float_does(none_nan) -> None:
    from logsleuth.engine.grammar import to_floats

    rng = random.Random(3)
    for _ in range(200):
        items = [rng.choice(NUMBER_TOKENS) for _ in range(rng.randint(0, 12))]
        fast, fast_bad = to_floats(list(items), none_nan)
        with switch.disabled():
            slow, slow_bad = to_floats(list(items), none_nan)
        assert fast_bad == slow_bad, items
        assert np.array_equal(fast, slow, equal_nan=True), items
        assert [math.copysign(1, v) for v in fast] == [math.copysign(1, v) for v in slow], items
