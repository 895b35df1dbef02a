"""Streaming writers for the long series: csv (default), jsonl, parquet.

Frames arrive chunk by chunk and are written at once, so memory stays bounded. CSV and
Parquet go through pyarrow (C++), JSON lines through pandas. Non-finite values are
``nan``, ``inf``, ``-inf`` in csv, the strings ``"nan"``/``"inf"``/``"-inf"`` in jsonl
(strict JSON has no such numbers), and real IEEE values in parquet.
"""

from __future__ import annotations

import contextlib
import sys
from typing import BinaryIO, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import InputError
from .types import COLUMNS

OUTPUT_KINDS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
             ".pq": "parquet"}


def output_kind(path: str | None) -> str:
    """The output kind from a file suffix (csv when writing to stdout)."""
    if not path or path == "-":
        return "csv"
    for suffix, kind in _SUFFIXES.items():
        if path.lower().endswith(suffix):
            return kind
    raise InputError(f"{path}: cannot tell the output kind from the suffix; use .csv, .jsonl or .parquet, or --to")


def _text(column: pd.Series) -> pa.Array:
    """A text column as Arrow: categoricals stay dictionary-encoded (cheap), strings as-is."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return pa.DictionaryArray.from_arrays(pa.array(column.cat.codes.to_numpy(), pa.int32()),
                                              pa.array(column.cat.categories.astype(str).to_numpy(), pa.string()))
    return pa.array(column.astype(str).to_numpy(), pa.string())


def to_arrow(frame: pd.DataFrame, source: str | None = None) -> pa.Table:
    """The frame as an Arrow table with NaN kept as NaN (not turned into null)."""
    cols = {
        "step": pa.array(frame["step"].astype("Int64"), pa.int64(), from_pandas=True),
        "metric": _text(frame["metric"]),
        "value": pa.array(frame["value"].to_numpy(dtype="float64"), pa.float64(), from_pandas=False),
        "phase": _text(frame["phase"]),
        "segment": pa.array(frame["segment"].to_numpy(dtype="int64"), pa.int64()),
        "rank": pa.array(frame["rank"].astype("Int64"), pa.int64(), from_pandas=True),
        "epoch": pa.array(frame["epoch"].to_numpy(dtype="float64"), pa.float64(), from_pandas=True),
        "line": pa.array(frame["line"].to_numpy(dtype="int64"), pa.int64()),
    }
    if source is not None:
        cols["source"] = pa.array([source] * len(frame), pa.string())
    return pa.table(cols)


class _CsvWriter:
    def __init__(self, stream: BinaryIO, with_source: bool) -> None:
        import pyarrow.csv as pacsv

        self._csv, self.stream, self.with_source = pacsv, stream, with_source
        header = ",".join(COLUMNS + (("source",) if with_source else ()))
        stream.write(header.encode() + b"\n")
        self._options = pacsv.WriteOptions(include_header=False, quoting_style="needed" if with_source else "none")

    def write(self, frame: pd.DataFrame, source: str) -> None:
        table = to_arrow(frame, source if self.with_source else None)
        self._csv.write_csv(table, self.stream, self._options)

    def close(self) -> None:
        self.stream.flush()


class _JsonlWriter:
    def __init__(self, stream: BinaryIO, with_source: bool) -> None:
        self.stream, self.with_source = stream, with_source

    def write(self, frame: pd.DataFrame, source: str) -> None:
        out = frame.astype({"value": object, "metric": str, "phase": str})
        values = frame["value"].to_numpy()
        bad = ~np.isfinite(values)
        out.loc[bad, "value"] = [("nan" if np.isnan(v) else "inf" if v > 0 else "-inf") for v in values[bad]]
        if self.with_source:
            out["source"] = source
        text = out.to_json(orient="records", lines=True)
        self.stream.write(text.encode() + (b"" if not text or text.endswith("\n") else b"\n"))

    def close(self) -> None:
        self.stream.flush()


class _ParquetWriter:
    def __init__(self, path: str, with_source: bool) -> None:
        import pyarrow.parquet as pq

        self.path, self.with_source, self._pq, self._writer = path, with_source, pq, None

    def write(self, frame: pd.DataFrame, source: str) -> None:
        table = to_arrow(frame, source if self.with_source else None)
        if self._writer is None:
            self._writer = self._pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is None:
            empty = to_arrow(pd.DataFrame({c: pd.Series(dtype="float64") for c in COLUMNS}).astype(
                {"step": "Int64", "metric": str, "phase": str, "segment": "int64", "rank": "Int64", "line": "int64"}),
                "" if self.with_source else None)
            self._pq.write_table(empty.slice(0, 0), self.path)
        else:
            self._writer.close()


@contextlib.contextmanager
def open_writer(path: str | None, kind: str, with_source: bool = False) -> Iterator[object]:
    """A writer with ``write(frame, source)``; ``path`` None or ``-`` means stdout."""
    to_stdout = not path or path == "-"
    if kind == "parquet":
        if to_stdout:
            raise InputError("parquet output needs a file: pass -o FILE.parquet")
        writer: object = _ParquetWriter(path, with_source)  # type: ignore[arg-type]
        try:
            yield writer
        finally:
            writer.close()  # type: ignore[attr-defined]
        return
    stream = sys.stdout.buffer if to_stdout else open(path, "wb")  # type: ignore[arg-type]
    writer = _CsvWriter(stream, with_source) if kind == "csv" else _JsonlWriter(stream, with_source)
    try:
        yield writer
    finally:
        writer.close()  # type: ignore[attr-defined]
        if not to_stdout:
            stream.close()
