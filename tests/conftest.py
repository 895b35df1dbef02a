"""Shared test helpers: where the real logs live, and small writers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: the in-repo copy of ../shared/real_logs, so that a lone clone tests; `make real-logs` refreshes it
REAL_LOGS = Path(__file__).resolve().parent / "data" / "real_logs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def real_log_labels() -> list[dict[str, str]]:
    with open(REAL_LOGS / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def write(tmp_path: Path):
    """write(name, bytes_or_text) -> path of a file in a temp dir."""

    def _write(name: str, data: bytes | str) -> Path:
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    return _write
