"""Shared grammar pieces: numbers in every spelling a training log uses, key/value lists.

Two faces of the same grammar:

* regular-expression *sources* (``NUM``, ``KEY``) that the formats splice into their
  compiled, literal-anchored patterns -- the per-line hot path runs in C;
* pyparsing elements (``number``, ``kv_pair``) for the rare, nested things: format
  templates, prototxt and config echoes, ``Namespace(...)`` dumps.

Non-finite spellings (DOMAIN.md section 4): ``nan -nan NaN inf -inf Inf Infinity 1.#QNAN
1.#INF -1.#IND nan(ind)``, and from real logs ``NAN INF nan.0`` (Lightning) and ``nanxxx``
(PaddlePaddle); ``tensor(nan, device=...)`` is unwrapped by the rules that see it. A
non-finite word ends the token: ``INFO`` is no ``INF``. Caffe's own ``parse_log.py`` drops exactly these lines; we must not.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pyparsing as pp

from .native import compiled

#: A number, finite or not, as bytes-regex source (no groups inside).
NUM = (
    r"[-+]?(?:"
    r"(?:\d++\.?\d*+|\.\d++)(?:[eE][-+]?\d++)?(?:#(?:QNAN|SNAN|IND|INF)\d*+)?"
    r"|(?:[nN]a[nN]|NAN)(?:\((?:ind|snan|IND)\)|\.0\b|x+\b)?(?![A-Za-z])"
    r"|(?:[iI]nf(?:inity)?|INF(?:INITY)?)(?![A-Za-z])"
    r")"
)
#: A cheap capture for a number on hot paths; the conversion validates it (a capture that
#: is not a number is counted as unparsed, never turned into a NaN).
VAL = r"[-+]?[\w.#]+(?:[-+]\d+)?(?:\(ind\))?"
#: A metric key as printers write it: ``loss``, ``s0.loss_cls``, ``Acc@1``, ``losses/total``.
KEY = r"[A-Za-z_][\w.@/\-]*"
#: :data:`KEY` for the pair readers that search a whole line: possessive and at most 128
#: bytes, so that a failed match costs the key's length, not the rest of the line (a
#: line of 64 KB of letters took seconds); a longer key is read by its last 128 bytes.
#: Possessive changes nothing: what may follow a key (``:``, ``=``, a quote, a space) is
#: no key character.
KEY_BOUNDED = r"[A-Za-z_][\w.@/\-]{0,127}+"

NUM_RX = re.compile(NUM)
_NONFINITE_RX = re.compile(rb"(?i)^([-+]?)\d*+\.?\d*+#?(nan|qnan|snan|ind|inf)")


def to_float(text: bytes | str) -> float:
    """Parse one printed number, mapping every nan/inf spelling to a non-finite float.

    Raises ``ValueError`` if ``text`` is not a number at all.
    """
    try:
        return float(text)
    except ValueError:
        pass
    raw = text.encode() if isinstance(text, str) else text
    m = _NONFINITE_RX.match(raw.strip())
    if not m:
        raise ValueError(f"not a number: {raw[:40]!r}")
    kind = m.group(2).decode().lower()
    if kind == "inf":
        return -math.inf if m.group(1) == b"-" else math.inf
    return math.nan  # nan, -nan, qnan, ind: the sign of a nan carries no meaning


def to_floats(values: list, none_nan: bool = False) -> tuple[np.ndarray, list[int]]:
    """Convert a batch of printed numbers (bytes, or floats already) to a float64 array;
    plain numbers in C (``logsleuth._native.floats_of``) where the extension is built.

    Returns the values and the indices that are not numbers at all (their value is NaN;
    the caller must drop and count them, not treat them as non-finite). With
    ``none_nan``, None (a group that did not match) is NaN and no error.
    """
    lib = compiled()
    if lib is not None and isinstance(values, list):
        raw, rest = lib.floats_of(values, none_nan)
        out = np.frombuffer(raw, np.float64)
    else:
        try:
            return np.array([math.nan if v is None and none_nan else float(v) for v in values], np.float64), []
        except (ValueError, TypeError):
            out, rest = np.full(len(values), math.nan), range(len(values))
    bad = []
    for i in rest:
        v = values[i]
        if v is None and none_nan:
            continue
        try:
            out[i] = to_float(v)
        except (ValueError, TypeError):
            bad.append(i)
    return out, bad


def snake(key: str) -> str:
    """Canonical snake_case metric name: ``Acc@1`` -> ``acc_1``, ``s0.loss_cls`` -> ``s0_loss_cls``."""
    key = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key.strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", key).strip("_").lower()


# ---- pyparsing faces -------------------------------------------------------------

number = pp.Regex(NUM).set_name("number").set_parse_action(
    lambda t: int(t[0]) if t[0].lstrip("-+").isdigit() else to_float(t[0]))
identifier = pp.Regex(KEY).set_name("key")
quoted = pp.QuotedString('"', esc_char="\\") | pp.QuotedString("'", esc_char="\\")
bare_word = pp.Regex(r"[^\s,;{}()\[\]]+")
#: ``key: value`` or ``key=value`` or ``key = value``
kv_pair = pp.Group(identifier + pp.Suppress(pp.one_of(": = :=")) + (number | quoted | bare_word))
