"""The engine API: everything a log format is written with, and the one frame schema.

A format (a module of ``logsleuth.parsers``, a third-party plugin, or a user's format
file) imports only this package; the core (scan, series, output, ...) reads formats only
through it, never through a format's own modules. ``docs/ADDING_A_FORMAT.md`` is the
guide.

* :class:`Format`, :class:`Rule`, :class:`ColumnRule`: what a format is (data first);
* :class:`Batch`, :class:`Columns`: what a rule writes its records into;
* :func:`canonical`, :func:`phase_of`, the key sets: canonical metric names;
* the grammar (``NUM``, ``KEY``, ``VAL``, :func:`to_float`, pyparsing pieces) and the
  handler factories (:func:`fixed`, :func:`event`, the pair readers);
* :mod:`~logsleuth.engine.native`: the optional C extension behind one switch;
* :mod:`~logsleuth.engine.schema`: the long frame's columns and dtypes, and ``validate()``.
"""

from __future__ import annotations

from ..bounds import MAX_LINE_BYTES, MAX_PAIRS, add_capped
from . import native, schema
from .columns import ColumnRule, extract, extract_native, extract_regex, factorize
from .format import (
                     BAR,
                     EPOCH_KEYS,
                     EVAL,
                     KV_ANY,
                     KV_STYLES,
                     NOISE_KEYS,
                     PHASE_CODES,
                     PROSE_KEYS,
                     STEP_KEYS,
                     TRAIN,
                     UNREADABLE,
                     WORD_VALUE,
                     Batch,
                     Columns,
                     Format,
                     Handler,
                     Rule,
                     canonical,
                     event,
                     fixed,
                     is_noise,
                     line_at,
                     line_end,
                     line_start,
                     phase_of,
                     read_pairs,
)
from .grammar import KEY, KEY_BOUNDED, NUM, VAL, identifier, number, quoted, snake, to_float, to_floats
from .pairs import (
                     add_markers,
                     group_floats,
                     kv_payload,
                     line_ends,
                     line_starts,
                     match_starts,
                     native_pattern,
                     pair_columns,
                     pair_rows,
                     split_columns,
                     split_regex,
)

__all__ = [
    "BAR", "EPOCH_KEYS", "EVAL", "KEY", "KEY_BOUNDED", "KV_ANY", "KV_STYLES", "MAX_LINE_BYTES", "MAX_PAIRS", "NOISE_KEYS",
    "NUM", "PHASE_CODES", "PROSE_KEYS", "STEP_KEYS", "TRAIN", "UNREADABLE", "VAL", "WORD_VALUE", "Batch", "ColumnRule",
    "Columns", "Format", "Handler", "Rule", "add_capped", "add_markers", "canonical", "event", "extract",
    "extract_native", "extract_regex", "factorize", "fixed", "group_floats", "identifier", "is_noise", "kv_payload",
    "line_at", "line_end", "line_ends", "line_start", "line_starts", "match_starts", "native", "native_pattern",
    "number", "pair_columns", "pair_rows", "phase_of", "quoted", "read_pairs", "schema", "snake", "split_columns",
    "split_regex", "to_float", "to_floats",
]
