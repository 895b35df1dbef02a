"""Hyperparameter echoes: ``Namespace(...)``, ``TrainingArguments(...)``, DeepSpeed config,
Caffe solver/net prototxt. Rare, nested text: this is where pyparsing earns its keep.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import pyparsing as pp

from ..engine import identifier, number, quoted, snake

#: chunks are scanned in threads (logsleuth/parallel.py), and pyparsing's grammar objects
#: are not documented as safe to share between them; these echoes are rare, so one at a time
_PYPARSING = threading.Lock()


@lru_cache(maxsize=1)
def _python_repr_grammar() -> pp.ParserElement:
    """``key=value, ...`` where values are Python reprs (numbers, strings, lists, None)."""
    value = pp.Forward()
    seq = pp.Group(pp.Suppress(pp.one_of("[ (")) + pp.Optional(pp.DelimitedList(value)) + pp.Optional(pp.Suppress(","))
                   + pp.Suppress(pp.one_of("] )")))
    mapping = pp.Group(pp.Suppress("{") + pp.Optional(pp.DelimitedList(pp.Group(value + pp.Suppress(":") + value)))
                       + pp.Suppress("}"))
    call = pp.Combine(identifier + pp.original_text_for(pp.nested_expr("(", ")")))
    word = pp.Regex(r"[^\s,=()\[\]{}]+")
    value <<= number | quoted | seq | mapping | call | word
    pair = pp.Group(identifier + pp.Suppress("=") + value)
    return pp.Optional(pp.DelimitedList(pair, allow_trailing_delim=True))


def _plain(value: Any) -> Any:
    if isinstance(value, pp.ParseResults):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        low = value.lower()
        if low in ("true", "false"):
            return low == "true"
        if low == "none":
            return None
    return value


def parse_python_kwargs(body: str) -> dict[str, Any]:
    """Parse the inside of ``Namespace(...)`` / ``TrainingArguments(...)``; best effort."""
    with _PYPARSING:
        return _python_kwargs(body)


def _python_kwargs(body: str) -> dict[str, Any]:
    grammar = _python_repr_grammar()
    out: dict[str, Any] = {}
    try:
        for key, value in grammar.parse_string(body.replace("\n", " ")).as_list():
            out[snake(key)] = _plain(value)
    except pp.ParseBaseException:
        for part in body.replace("\n", " ").split(","):  # tolerate one odd value: keep the rest
            if "=" in part:
                key, _, value = part.partition("=")
                try:
                    out[snake(key)] = _plain(number.parse_string(value.strip(), parse_all=True)[0])
                except pp.ParseBaseException:
                    out[snake(key)] = _plain(value.strip().strip("'\""))
    return out


@lru_cache(maxsize=1)
def _prototxt_grammar() -> pp.ParserElement:
    """Caffe prototxt: ``key: value`` fields and ``name { ... }`` messages, nested."""
    message = pp.Forward()
    scalar = number | quoted | pp.Regex(r"[A-Za-z_][\w.]*")
    field = pp.Group(identifier + pp.Suppress(":") + scalar)
    block = pp.Group(identifier + pp.Suppress(pp.Optional(":")) + pp.Suppress("{") + pp.Group(message) + pp.Suppress("}"))
    message <<= pp.ZeroOrMore(block | field)
    return message


def parse_prototxt(text: str) -> list:
    """Nested ``[key, value]`` / ``[key, [...]]`` lists; stops quietly at the first odd line."""
    with _PYPARSING:
        result, _, _ = next(iter(_prototxt_grammar().scan_string(text, max_matches=1)), ([], 0, 0))
    return result.as_list() if isinstance(result, pp.ParseResults) and result else []


def flatten_prototxt(items: list, prefix: str = "") -> dict[str, Any]:
    """Solver fields keep their names; layer fields become ``layer.<name>.<field>``."""
    out: dict[str, Any] = {}
    for key, value in items:
        if isinstance(value, list):
            name = next((v for k, v in value if k == "name" and not isinstance(v, list)), None)
            inner = f"{prefix}{key}.{name}." if key == "layer" and name else f"{prefix}"
            out.update(flatten_prototxt(value, inner))
        else:
            out.setdefault(f"{prefix}{key}", value)
    return out
