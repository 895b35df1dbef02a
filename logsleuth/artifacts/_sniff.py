"""Telling artefacts apart by their first bytes: cheap, and free of pandas (discovery and
``logsleuth`` start-up use these; the readers import the heavy parts when they run).
"""

from __future__ import annotations

import os
import re
import struct

from ._crc32c import crc32c, mask

_U64 = struct.Struct("<Q")
STEP_COLUMNS = ("step", "global_step", "iteration", "iter", "steps", "trainer/global_step")
_HEADER = re.compile(r"^[A-Za-z_][\w./@\- ]*(?:[,;\t][A-Za-z_][\w./@\- ]*)+\s*$")


def sniff_csv(head: bytes) -> str | None:
    """``lightning_csv``, ``keras_csv`` or ``csv_metrics`` when ``head`` starts with a metrics
    table header followed by a numeric row; None otherwise."""
    text = head.decode("utf-8", "replace")  # a head may end inside a character
    lines = text.lstrip("\ufeff").splitlines()
    if len(lines) < 2 or not _HEADER.match(lines[0]):
        return None
    delim = delimiter(lines[0])
    cols = [c.strip().lower() for c in lines[0].split(delim)]
    cells = [c.strip() for c in lines[1].split(delim)]
    if len(cells) != len(cols) or not any(_numberish(c) for c in cells):
        return None
    if "step" in cols and "epoch" in cols:
        return "lightning_csv"
    if cols[0] == "epoch":
        return "keras_csv"
    if any(c in STEP_COLUMNS or c == "epoch" for c in cols):
        return "csv_metrics"
    return None


def _numberish(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return cell.lower().lstrip("+-") in ("nan", "inf", "infinity")


def delimiter(header: str) -> str:
    return max(",;\t", key=header.count)



def looks_like_trainer_state(data: bytes) -> bool:
    """A JSON object with a ``log_history`` key, from the first bytes of the file."""
    head = data[:4096].lstrip()
    return head.startswith(b"{") and b'"log_history"' in data[:1 << 20]


def run_dir_of(path: str) -> str | None:
    """The MLflow run directory holding ``path`` (itself, or an ancestor with ``metrics/``
    and ``meta.yaml``); None when ``path`` is not inside one."""
    path = os.path.abspath(path)
    probe = path if os.path.isdir(path) else os.path.dirname(path)
    for _ in range(12):
        if os.path.isdir(os.path.join(probe, "metrics")) and os.path.isfile(os.path.join(probe, "meta.yaml")):
            return probe
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent
    return None


def is_event_file(path: str, head: bytes | None = None) -> bool:
    """``events.out.tfevents.*`` by name, or TFRecord framing whose first record is an Event."""
    if "tfevents" in os.path.basename(path):
        return True
    if head is None:
        try:
            with open(path, "rb") as f:
                head = f.read(64)
        except OSError:
            return False
    if len(head) < 16:
        return False
    length = _U64.unpack_from(head)[0]
    if not 0 < length < 1 << 20:
        return False
    stored = struct.unpack_from("<I", head, 8)[0]
    return int(mask(crc32c(head[:8]))) == stored
