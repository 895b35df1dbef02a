"""Column rules: the hottest line shapes, extracted column-wise with no Python per match.

A :class:`ColumnRule` is a pattern with named groups (``step``, ``value``, and ``key`` or
``name`` for the metric). ``re.split`` runs it over the whole chunk in C and returns,
flat, the text between matches and every group of every match -- no match objects --
so the groups come out as columns by list slicing, and line numbers by counting the
newlines in the text between matches. On a log where nearly every line is a metric line
(Caffe, TensorFlow) that is several times faster than ``finditer``; Arrow's RE2
``extract_regex`` was measured slower still (captures are its slow path).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .grammar import VAL, to_floats
from .native import compiled

_NAN = float("nan")


@dataclass(frozen=True)
class ColumnRule:
    """One line shape read column-wise. Rows where ``value`` did not participate (an
    alternative such as Caffe's ``Testing net``) become markers that only set the step.
    The pattern must not match across lines and must start with ``anchor``."""

    name: str
    anchor: bytes
    pattern: str
    #: fixed metric name, or None to name each row from its ``key``/``name`` group
    metric: str | None = None
    #: printed key/name -> metric name (called once per distinct key per chunk)
    names: Callable[[str], str] | None = None
    phase: str = "train"
    #: (name template, group): a hyperparameter per distinct (metric, group value), e.g.
    #: Caffe's ``(* 0.005 = ...)`` -> ``loss_weight.<metric>``
    hparam: tuple[str, str] | None = None
    #: the compiled scanner doing what ``pattern`` does (``logsleuth._native``), used when
    #: the extension is built: "caffe_iteration" or "caffe_output"
    native: str | None = None
    rx: re.Pattern[bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        source = self.pattern.replace("{VAL}", VAL).encode()
        if not source.startswith(re.escape(self.anchor)) and not source.startswith(self.anchor):
            raise ValueError(f"column rule {self.name}: pattern must start with its anchor {self.anchor!r}")
        # group 1 wraps the whole match: its length gives exact positions without counting
        object.__setattr__(self, "rx", re.compile(b"(" + source + b")"))


def extract(rule: ColumnRule, chunk: bytes):
    """(positions, steps, metric codes, metric names, values, positions of unreadable
    values, hparams) of the matches of ``rule`` in ``chunk``, or None when there are none.
    A row's metric is ``names[code]``; code -1 marks a marker or an unreadable value."""
    lib = compiled() if rule.native is not None else None
    if lib is not None:
        return extract_native(rule, chunk, lib)
    return extract_regex(rule, chunk)


def extract_regex(rule: ColumnRule, chunk: bytes):
    """:func:`extract` with ``re.split``: the reference, and the path without the extension."""
    pieces = rule.rx.split(chunk)
    width = rule.rx.groups + 1
    if len(pieces) == 1:
        return None
    lengths = np.fromiter(map(len, pieces[0::width]), np.int64)  # text between matches
    whole = np.fromiter(map(len, pieces[1::width]), np.int64)  # each match
    pos = np.cumsum(lengths[:-1]) + np.concatenate(([0], np.cumsum(whole[:-1])))
    group = {name: pieces[index::width] for name, index in rule.rx.groupindex.items()}
    step = _steps(group["step"]) if "step" in group else np.full(len(pos), _NAN)
    metric = _metrics(rule, group)
    values, bad = to_floats([v if v is not None else b"nan" for v in group["value"]])
    metric[bad] = None  # not a number: not a row (the caller counts the line)
    hparams = _hparams(rule, group, metric, pos) if rule.hparam else []
    codes, names = factorize(metric.tolist())
    return pos, step, codes, names, np.array(values, dtype=np.float64), pos[bad].tolist(), hparams


def factorize(metric: list) -> tuple[np.ndarray, list[str]]:
    """Metric names -> int32 codes into a list of the distinct names; None (a marker) -> -1."""
    names = [m for m in dict.fromkeys(metric) if m is not None]
    index = {name: i for i, name in enumerate(names)}
    return np.array([index.get(m, -1) for m in metric], dtype=np.int32), names


def extract_native(rule: ColumnRule, chunk: bytes, lib=None):
    """:func:`extract` with the compiled scanner named by ``rule.native``: the scanner
    returns columns and, for names, an id per row into the chunk's distinct names."""
    lib = lib or compiled()
    assert lib is not None, "the C extension is not built"
    hparams: list[tuple] = []
    if rule.native == "caffe_iteration":
        pos_b, step_b, kind_b, value_b, fallback_b = lib.caffe_iteration(chunk)
        codes = np.frombuffer(kind_b, np.int8).astype(np.int32)
        codes[codes == 2] = -1  # kind 2 (Testing net): a marker
        names = _named(rule, [b"loss", b"lr"])
        step = np.frombuffer(step_b, np.float64).copy()
    else:
        pos_b, name_b, keys, value_b, weight_b, weights, fallback_b = \
            lib.caffe_output(chunk, rule.anchor, rule.hparam is not None)
        codes = np.frombuffer(name_b, np.int32).copy()
        names = _named(rule, keys)
        step = np.full(len(codes), _NAN)
    pos = np.frombuffer(pos_b, np.int64).copy()
    if not len(pos):
        return None
    values = np.frombuffer(value_b, np.float64).copy()
    fallback = np.frombuffer(fallback_b, np.int64).reshape(-1, 3)
    bad: list[int] = []
    if len(fallback):  # nan/inf spellings and other tokens float() must judge
        converted, unreadable = to_floats([chunk[a:b] for _, a, b in fallback.tolist()])
        values[fallback[:, 0]] = converted
        bad = fallback[unreadable, 0].tolist()
        codes[bad] = -1
    if rule.hparam:
        hparams = _native_hparams(rule, codes, names, pos, np.frombuffer(weight_b, np.int32), weights)
    return pos, step, codes, names, values, pos[bad].tolist(), hparams


def _named(rule: ColumnRule, keys: list[bytes]) -> list[str]:
    """The metric name of each distinct key (two keys may share one)."""
    text = [k.decode("utf-8", "replace") for k in keys]
    return [rule.names(t) if rule.names else t for t in text]


def _native_hparams(rule: ColumnRule, codes: np.ndarray, names: list[str], pos: np.ndarray,
                    weight_id: np.ndarray, weights: list[bytes]) -> list[tuple]:
    """:func:`_hparam_rows` for the scanner's ids: the first row of each (name, weight) pair."""
    pair = codes.astype(np.int64) * (len(weights) + 1) + weight_id + 1
    rows = np.sort(np.unique(pair, return_index=True)[1]).tolist()
    metric = {r: names[codes[r]] if codes[r] >= 0 else None for r in rows}
    return _hparam_rows(rule, metric, pos, [(r, weights[weight_id[r]] if weight_id[r] >= 0 else None) for r in rows])


def _steps(column: list) -> np.ndarray:
    return np.array([int(s) if s else _NAN for s in column], dtype=np.float64)


def _metrics(rule: ColumnRule, group: dict[str, list]) -> np.ndarray:
    """Metric per row; None (a marker) where the value group did not participate."""
    if rule.metric is not None:
        metric = np.full(len(group["value"]), rule.metric, dtype=object)
    else:
        keys = group["key"] if "key" in group else group["name"]
        table = {k: rule.names(k.decode("utf-8", "replace")) if rule.names else k.decode("utf-8", "replace")
                 for k in set(keys) if k is not None}
        metric = np.array([table.get(k) for k in keys], dtype=object)
    if None in group["value"]:
        metric[[i for i, v in enumerate(group["value"]) if v is None]] = None
    return metric


def _hparams(rule: ColumnRule, group: dict[str, list], metric: np.ndarray, pos: np.ndarray) -> list[tuple]:
    """:func:`_hparam_rows` for the regex captures: the first row of each (key, value) pair."""
    keys = group["key"] if "key" in group else group["name"]
    captured = group[rule.hparam[1]]  # type: ignore[index]
    first: dict[tuple, int] = {}
    for row, pair in enumerate(zip(keys, captured)):
        first.setdefault(pair, row)
    return _hparam_rows(rule, metric, pos, [(row, captured[row]) for row in first.values()])


def _hparam_rows(rule: ColumnRule, metric, pos: np.ndarray, rows: list[tuple]) -> list[tuple]:
    """One (pos, name, value) per (row, captured value), in order: a hyperparameter per
    distinct (metric, captured value) pair, e.g. Caffe's ``loss_weight.<metric>``."""
    template = rule.hparam[0]  # type: ignore[index]
    out = []
    for row, value in rows:
        if metric[row] is not None and value:
            try:
                out.append((int(pos[row]), template.format(metric=metric[row]), float(value)))
            except ValueError:
                continue
    return out
