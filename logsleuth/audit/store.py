"""Audit results written as they come, so a killed audit resumes where it stopped.

* ``.jsonl``: one JSON object per run, appended and flushed per row (non-finite floats as
  the strings ``"nan"``, ``"inf"``, ``"-inf"``: strict JSON has no such numbers).
* ``.csv``: a header, then one row per run, appended and flushed per row (strings are kept
  on one physical line, so a cut file is cut between rows).
* ``.parquet``: rows go to a sidecar ``<output>.rows.jsonl`` as they come; the parquet file
  is written at the end (atomically: a temporary file, then a rename), and the sidecar
  removed.
* no file: csv on stdout (no resume).

``resume=True`` reads what exists: a half-written last line (the process was killed in
the middle of a write) is cut off, and every run with a complete row is *known*. A known
run whose content hash is unchanged is skipped; a changed run, or one whose row holds an
error, is audited again and its new row supersedes the old one. Superseded rows are
removed when the audit ends (the file is rewritten atomically), so every run appears
exactly once and nothing already written is lost.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..errors import InputError
from ..output import output_kind
from .run import columns

_INTS = frozenset({"n_files", "size", "n_warnings"})
_BOOLS = frozenset({"failed"})
_STRS = frozenset({"path", "formats", "sha256", "verdict", "slug", "title", "nonfinite_metric", "cause", "cause_slug",
                   "warnings", "error"})


def _strict(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or (isinstance(value, str) and value == ""):
        return True
    return isinstance(value, float) and math.isnan(value)


def _typed(name: str, value: Any) -> Any:
    """A value read back from jsonl/csv/parquet in the type the row had."""
    if _missing(value):
        if name in _STRS or name in _INTS or name == "nonfinite_step":
            return None
        return False if name in _BOOLS else math.nan
    if name in _STRS:
        return str(value)
    if name in _BOOLS:
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if name in _INTS or name == "nonfinite_step":
        return int(float(value))
    return float(value)


def _one_line(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) and ("\n" in value or "\r" in value) else value


def rows_to_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame with every column, features as float, ``nonfinite_step`` Int64."""
    cols = columns()
    frame = pd.DataFrame([{c: row.get(c) for c in cols} for row in rows], columns=cols)
    frame["nonfinite_step"] = pd.array(frame["nonfinite_step"].tolist(), dtype="Int64") if len(frame) else \
        pd.array([], dtype="Int64")
    for c in cols:
        if c in _INTS:
            frame[c] = pd.array(frame[c].tolist(), dtype="Int64") if len(frame) else pd.array([], dtype="Int64")
        elif c in _BOOLS:
            frame[c] = frame[c].fillna(False).astype(bool)
        elif c not in _STRS and c != "nonfinite_step":
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
        else:
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame


class ResultStore:
    """Where rows go. Use as a context manager; :meth:`add` appends one row durably."""

    def __init__(self, path: str | None, kind: str | None = None, resume: bool = False, force: bool = False) -> None:
        self.path = None if path in (None, "-") else os.fspath(path)  # type: ignore[arg-type]
        self.kind = kind or output_kind(self.path)
        if self.kind not in ("csv", "jsonl", "parquet", "memory"):
            raise InputError(f"unknown output kind {self.kind!r}")
        if resume and self.path is None:
            raise InputError("--resume needs an output file (-o results.jsonl|.csv|.parquet)")
        if self.kind == "parquet" and self.path is None:
            raise InputError("parquet output needs a file: pass -o FILE.parquet")
        self.cols = columns()
        self.rows: dict[str, dict[str, Any]] = {}  # path -> row (previous and new)
        self.compact = False
        self._stream: Any = None
        if self.kind == "memory":  # the Python API without an output file: rows kept here only
            return
        target = self.path if self.kind != "parquet" else self.sidecar
        existing = self.path is not None and (os.path.exists(self.path) or (
            self.kind == "parquet" and os.path.exists(self.sidecar)))
        if existing and not (resume or force):
            raise InputError(f"{self.path}: exists; pass --resume to continue that audit or --force to overwrite it")
        if existing and resume:
            self._load()
        elif existing and force:
            for p in (self.path, self.sidecar if self.kind == "parquet" else None):
                if p and os.path.exists(p):
                    os.remove(p)
        self._stream = self._open(target)

    @property
    def sidecar(self) -> str:
        return f"{self.path}.rows.jsonl"

    # -- reading what exists -----------------------------------------------------------
    def _load(self) -> None:
        assert self.path is not None
        if self.kind == "parquet":
            if os.path.exists(self.path):
                for row in pd.read_parquet(self.path).to_dict("records"):
                    self._known(row)
            if os.path.exists(self.sidecar):
                self._load_lines(self.sidecar, "jsonl")
            self.compact = True  # the parquet is rewritten from everything at the end anyway
        else:
            self._load_lines(self.path, self.kind)

    def _load_lines(self, path: str, kind: str) -> None:
        with open(path, "rb") as f:
            data = f.read()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):  # a row cut in the middle of its write: drop it, the run is redone
            with open(path, "r+b") as f:
                f.truncate(cut)
            data = data[:cut]
        text = data.decode("utf-8", "replace")
        if kind == "jsonl":
            for line in text.splitlines():
                if line.strip():
                    try:
                        self._known(json.loads(line))
                    except json.JSONDecodeError:
                        self.compact = True  # a damaged line: the rewrite at the end drops it
        else:
            reader = csv.DictReader(io.StringIO(text))
            if reader.fieldnames and list(reader.fieldnames) != self.cols:
                raise InputError(f"{path}: its columns are not this version's audit columns; "
                                 f"pass --force to start a new audit")
            for row in reader:
                self._known(row)

    def _known(self, row: dict[str, Any]) -> None:
        typed = {c: _typed(c, row.get(c)) for c in self.cols}
        if not typed["path"]:
            return
        if typed["path"] in self.rows:
            self.compact = True
        self.rows[typed["path"]] = typed

    def known_hashes(self) -> dict[str, str]:
        """Run path -> content hash of runs whose row can be kept (no error)."""
        return {p: r["sha256"] for p, r in self.rows.items() if r.get("sha256") and not r.get("error")}

    # -- writing -------------------------------------------------------------------------
    def _open(self, target: str | None) -> Any:
        if target is None:
            stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=True)
        else:
            fresh = not os.path.exists(target) or os.path.getsize(target) == 0
            stream = open(target, "a", encoding="utf-8", newline="")
            if not fresh or self.kind != "csv":
                return stream
        if self.kind == "csv":
            csv.writer(stream, lineterminator="\n").writerow(self.cols)
            stream.flush()
        return stream

    def add(self, row: dict[str, Any]) -> None:
        """Append one row and flush it to the OS (it survives this process being killed)."""
        row = {c: _one_line(row.get(c)) for c in self.cols}
        if row["path"] in self.rows:
            self.compact = True
        self.rows[row["path"]] = row
        if self._stream is not None:
            self._write(self._stream, row)
            self._stream.flush()

    def _write(self, stream: Any, row: dict[str, Any]) -> None:
        if self.kind == "csv":
            csv.writer(stream, lineterminator="\n").writerow(
                ["" if row[c] is None else _csv_cell(row[c]) for c in self.cols])
        else:
            stream.write(json.dumps({c: _strict(row[c]) for c in self.cols}, allow_nan=False) + "\n")

    def close(self) -> None:
        """Finish: write the parquet file, or rewrite a file holding superseded rows."""
        if self._stream is None:
            return
        if self.path is None:
            self._stream.detach()
            self._stream = None
            return
        self._stream.close()
        self._stream = None
        if self.kind == "parquet":
            tmp = f"{self.path}.tmp"
            self.frame().to_parquet(tmp, index=False)
            os.replace(tmp, self.path)
            os.remove(self.sidecar)
        elif self.compact:
            tmp = f"{self.path}.tmp"
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                if self.kind == "csv":
                    csv.writer(f, lineterminator="\n").writerow(self.cols)
                for row in self.rows.values():
                    self._write(f, row)
            os.replace(tmp, self.path)

    def frame(self) -> pd.DataFrame:
        """Every run's row (the ones read back and the new ones), one per run."""
        return rows_to_frame(self.rows.values())

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else _strict(value)
    return value
