"""Streaming writers for the long series: csv (default), jsonl, parquet.

Frames arrive chunk by chunk and are written at once, so memory stays bounded. CSV is
and JSON lines are formatted by the C extension straight from the Arrow tables' buffers
(without it, by pyarrow and by :mod:`json`), Parquet by pyarrow. Non-finite values are
``nan``, ``inf``, ``-inf`` in csv, the strings ``"nan"``/``"inf"``/``"-inf"`` in jsonl
(strict JSON has no such numbers), and real IEEE values in parquet.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import pyarrow as pa

from .engine.native import compiled  # the optional C extension; pyarrow's writer is the fallback
from .engine.schema import COLUMNS, arrow_schema
from .errors import InputError

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


def with_source(table: pa.Table, source: str | None) -> pa.Table:
    """The chunk's rows, plus a ``source`` column when several logs go to one output."""
    if source is None:
        return table
    return table.append_column("source", pa.array([source] * table.num_rows, pa.string()))


class _CsvWriter:
    """CSV through the C row formatter when it is built (``logsleuth._native.format_rows``,
    the same text as pyarrow's writer, 2.5 to 5 times faster), else through pyarrow.
    With a ``source`` column, pyarrow's "needed" quoting quotes every string cell."""

    def __init__(self, stream: BinaryIO, with_source: bool) -> None:
        import pyarrow.csv as pacsv

        self._csv, self.stream, self.with_source = pacsv, stream, with_source
        header = ",".join(COLUMNS + (("source",) if with_source else ()))
        stream.write(header.encode() + b"\n")
        self._options = pacsv.WriteOptions(include_header=False, quoting_style="needed" if with_source else "none")

    def write(self, table: pa.Table, source: str) -> None:
        if not table.num_rows:
            return
        lib = compiled()
        specs = _native_specs(table, _quoted if self.with_source else _bare) if lib is not None else None
        if specs is None:
            self._csv.write_csv(with_source(table, source if self.with_source else None), self.stream, self._options)
            return
        end = (b"," + _quoted(source.encode()) if self.with_source else b"") + b"\n"
        prefixes = [b""] + [b","] * (table.num_columns - 1)
        self.stream.write(lib.format_rows(specs, table.num_rows, prefixes, end, b"", False))

    def close(self) -> None:
        self.stream.flush()


_STRUCTURAL = (b",", b'"', b"\r", b"\n")
_KINDS = {pa.int64(): "i", pa.float64(): "f"}
_INDEX_KINDS = {pa.int32(): "d", pa.int8(): "e"}


def _quoted(word: bytes) -> bytes:
    return b'"' + word.replace(b'"', b'""') + b'"'


def _bare(word: bytes) -> bytes | None:
    """A CSV cell without quotes, or None when the text needs them."""
    return None if any(c in word for c in _STRUCTURAL) else word


def _json_string(word: bytes) -> bytes:
    return json.dumps(word.decode("utf-8", "replace"), ensure_ascii=False).encode()


def _native_specs(table: pa.Table, cell: Callable[[bytes], bytes | None]) -> list[tuple] | None:
    """The table's columns as ``format_rows`` takes them (kind, validity, data, offset,
    dictionary strings as ``cell`` writes them), or None when a column is of another type
    or ``cell`` cannot write a string (pyarrow then writes it, or says why it cannot)."""
    specs = []
    for column in table.columns:
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        if isinstance(array, pa.DictionaryArray) and array.indices.type in _INDEX_KINDS:
            words = [cell(w.encode()) for w in array.dictionary.to_pylist()]
            if None in words:
                return None
            validity, data = array.indices.buffers()
            specs.append((_INDEX_KINDS[array.indices.type], validity, data, array.indices.offset, words))
        elif array.type in _KINDS:
            validity, data = array.buffers()
            specs.append((_KINDS[array.type], validity, data, array.offset, None))  # type: ignore[arg-type]
        else:
            return None
    return specs


class _JsonlWriter:
    """One strict JSON object per row: null for missing values, and the strings "nan",
    "inf", "-inf" for non-finite ones (JSON has no such numbers). Numbers keep every digit
    (the shortest text that reads back as the same double)."""

    def __init__(self, stream: BinaryIO, with_source: bool) -> None:
        self.stream, self.with_source = stream, with_source

    def write(self, table: pa.Table, source: str) -> None:
        if not table.num_rows:
            return
        end = (b',"source":' + _json_string(source.encode()) if self.with_source else b"") + b"}\n"
        lib = compiled()
        specs = _native_specs(table, _json_string) if lib is not None else None
        if specs is None:
            self.stream.write(b"".join(_json_line(row, end) for row in table.to_pylist()))
            return
        prefixes = [(b"{" if i == 0 else b",") + _json_string(name.encode()) + b":"
                    for i, name in enumerate(table.column_names)]
        self.stream.write(lib.format_rows(specs, table.num_rows, prefixes, end, b"null", True))

    def close(self) -> None:
        self.stream.flush()


def _json_line(row: dict, end: bytes) -> bytes:
    """One row without the extension (Python's float repr: also the shortest round trip)."""
    strict = {k: (v if not isinstance(v, float) or math.isfinite(v) else "nan" if math.isnan(v)
                  else "inf" if v > 0 else "-inf") for k, v in row.items()}
    return json.dumps(strict, ensure_ascii=False, separators=(",", ":"))[:-1].encode() + end


class _ParquetWriter:
    def __init__(self, path: str, with_source: bool) -> None:
        import pyarrow.parquet as pq

        self.path, self.with_source, self._pq, self._writer = path, with_source, pq, None

    def write(self, table: pa.Table, source: str) -> None:
        table = with_source(table, source if self.with_source else None)
        if self._writer is None:
            self._writer = self._pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._writer is None:
            self._pq.write_table(with_source(arrow_schema().empty_table(), "" if self.with_source else None), self.path)
        else:
            self._writer.close()


@contextlib.contextmanager
def open_writer(path: str | None, kind: str, with_source: bool = False) -> Iterator[Any]:
    """A writer with ``write(frame, source)``; ``path`` None or ``-`` means stdout. A file
    is written whole or not at all (see :func:`staged`): an error or an interrupt halfway
    leaves no partial output and the old file, if any, untouched."""
    if not path or path == "-":
        if kind == "parquet":
            raise InputError("parquet output needs a file: pass -o FILE.parquet")
        writer = _stream_writer(sys.stdout.buffer, kind, with_source)
        try:
            yield writer
        finally:
            writer.close()
        return
    with staged(path) as tmp:
        if kind == "parquet":
            writer = _ParquetWriter(tmp, with_source)
            yield writer
            writer.close()
            return
        with open(tmp, "wb") as stream:
            writer = _stream_writer(stream, kind, with_source)
            yield writer
            writer.close()


def _stream_writer(stream: BinaryIO, kind: str, with_source: bool) -> Any:
    return _CsvWriter(stream, with_source) if kind == "csv" else _JsonlWriter(stream, with_source)


def is_stream(path: str) -> bool:
    """True when ``path`` is, or links to, something written in place rather than replaced:
    a character device (``/dev/stdout``, ``/dev/null``), a FIFO or a socket."""
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def check_free(path: str | None, force: bool) -> None:
    """Refuse to overwrite an existing file or link at ``path`` without ``force`` (a
    dangling link is no free name either); a stream (:func:`is_stream`) is always free."""
    import os

    if path and path != "-" and os.path.lexists(path) and not force and not is_stream(path):
        raise InputError(f"{path}: exists; pass --force to overwrite it")


@contextlib.contextmanager
def staged(path: str) -> Iterator[str]:
    """A temporary path beside ``path``, renamed onto it when the block ends without an
    error and removed when it does not (a reader never sees half a file; a crash leaves
    the old one; a symlink at ``path`` is replaced, never written through). A stream
    (``/dev/stdout``, a FIFO: :func:`is_stream`) is written in place, never replaced. An
    OSError becomes an :class:`InputError` naming ``path``."""
    import os
    import tempfile

    if is_stream(path):
        try:
            yield path
        except OSError as exc:
            raise InputError(f"{path}: cannot write it ({exc.strerror or exc})") from exc
        return
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                   dir=os.path.dirname(os.path.abspath(path)))
        os.close(fd)
        yield tmp
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 is for secrets; output is as readable as any file
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise InputError(f"{path}: cannot write it ({exc.strerror or exc})") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def write_text_file(path: str, text: str | bytes, force: bool = False) -> None:
    """Write a report file (text, or the bytes of a picture) whole or not at all
    (:func:`staged`). An existing file or link is replaced only with ``force``; any
    failure is an :class:`InputError` naming the path."""
    check_free(path, force)
    with staged(path) as tmp, open(tmp, "wb") as f:
        f.write(text.encode("utf-8") if isinstance(text, str) else text)
