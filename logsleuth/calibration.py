"""Confidence that means what it says: the share of unseen logs on which a verdict reached
the same way was right.

``bench/accuracy.py --calibrate`` measures it (``make model`` runs it): every corpus log
is diagnosed by a model fitted without its framework (leave-one-framework-out), and each
verdict's *basis* -- the guard rule that decided and the code, or the model's choice
among a rule's candidates and the code -- counts right and total, apart for short logs
(fewer than 5 loss records, or counted steps: less to go on). The counts ship as
``logsleuth/model/calibration.json``.

A verdict's confidence is then ``(right + 1) / (total + 2)`` for its basis (the short
split when it has data, else the basis as a whole); a model basis never measured keeps
the model's probability, shrunk toward 1/2 for the unseen; never above 0.99. An
inconclusive verdict (I000) is not a claim that can be right or wrong: its confidence
says how little the best guess had -- 0.9 when the log holds nothing to judge, else one
minus the best candidate's probability -- and it is never 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources

RESOURCE = "calibration.json"
#: fewer loss records than this is a short log
SHORT_RECORDS = 5
_CEILING = 0.99


def is_short(f: Mapping[str, float]) -> bool:
    """Little to go on: a few loss records, or steps that are counted records."""
    n = f.get("n_train_records", math.nan)
    return (not math.isnan(n) and n < SHORT_RECORDS) or f.get("steps_inferred") == 1


def key(basis: str, short: bool) -> str:
    return f"{basis}:short" if short else basis


@lru_cache(maxsize=1)
def load_table() -> dict[str, list[int]]:
    """basis -> [right, total] (empty when no calibration was measured)."""
    blob = resources.files("logsleuth.model").joinpath(RESOURCE)
    if not blob.is_file():
        return {}
    return {k: list(v) for k, v in json.loads(blob.read_text())["bases"].items()}


def calibrated(basis: str, raw: float, f: Mapping[str, float], table: Mapping[str, list[int]] | None = None) -> float:
    """The confidence of a verdict reached by ``basis`` with probability ``raw``."""
    if basis == "inconclusive":
        return min(0.5, 1.0 - raw)
    if basis.endswith(":I000"):
        return 0.9
    counts = table if table is not None else load_table()
    found = counts.get(key(basis, is_short(f))) or counts.get(basis)
    if found:
        right, total = found
        return min(_CEILING, (right + 1) / (total + 2))
    return min(_CEILING, 0.5 + (raw - 0.5) * 0.8)


def build_table(scored: list[tuple[str, bool, bool]]) -> dict[str, list[int]]:
    """Counts from (basis, short, right) of out-of-fold verdicts: each basis, and its short split."""
    table: dict[str, list[int]] = {}
    for basis, short, right in scored:
        for k in {basis, key(basis, short)}:
            cell = table.setdefault(k, [0, 0])
            cell[0] += int(right)
            cell[1] += 1
    return table


def write_table(path: str, table: Mapping[str, list[int]], note: str) -> None:
    with open(path, "w") as f:
        json.dump({"note": note, "bases": dict(sorted(table.items()))}, f, indent=1)
        f.write("\n")


__all__ = ["calibrated", "build_table", "write_table", "is_short", "load_table"]
