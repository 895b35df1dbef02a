"""Turi Create progress tables: ``2018-04-26 00:50:56  Training   4/500  Loss    nan``."""

from __future__ import annotations

from ..engine import Format, Rule, fixed

FORMAT = Format(
    name="turicreate",
    framework="generic",  # no knob worth naming
    title="Turi Create training progress",
    samples=("2018-04-26 00:50:56  Training   4/500  Loss    nan",),
    sniff=(r"Training\s+\d+/\d+\s+Loss\s+",),
    rules=(Rule("training", b"Training", r"Training\s+(\d+)/\d+\s+Loss\s+({VAL})", fixed("loss")),),
)
