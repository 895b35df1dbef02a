"""Open anything a user calls a log, and hand it out as clean byte chunks.

* a path, ``-`` (stdin) or an open binary/text stream;
* plain, gzip, bz2, xz or zstd, told apart by magic bytes (never by extension);
* UTF-8 (with or without BOM), UTF-16 with BOM (transcoded), invalid bytes (kept as-is:
  the scanners work on bytes), NUL bytes and ANSI colour codes (removed, newlines kept);
* chunks of about :data:`CHUNK` bytes that end on a line boundary, so memory stays
  bounded whatever the file size; a line longer than a chunk is cut at its last
  carriage return (a progress-bar update boundary) or, failing that, anywhere.

Carriage returns are *kept*: the format rules stop at ``\\r`` as at ``\\n``, so each
progress-bar update is its own record while line numbers stay physical lines.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import os
import re
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from .bounds import CarriageLimit
from .errors import InputError

CHUNK = 2 << 20
HEAD = 64 << 10
_BACKSPACES_RX = re.compile(rb"\x08+")
_ANSI_RX = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def sniff_compression(head: bytes) -> str:
    """Name the compression from the first bytes: ``gzip bz2 xz zstd`` or ``none``."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


def _decompressor(raw: BinaryIO, kind: str) -> BinaryIO:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if kind == "bz2":
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if kind == "xz":
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    if kind == "zstd":
        return _ZstdFrames(raw)  # type: ignore[return-value]
    return raw


class _ZstdFrames(io.RawIOBase):
    """zstd frames one after another (as ``zstd`` and ``pzstd`` write them), decompressed
    from small input blocks (so that a block's output stays bounded); the input ending
    inside a frame is an :class:`EOFError`, as gzip's and xz's readers raise (zstandard's
    own stream reader returns the part silently)."""

    BLOCK = 8 << 10

    def __init__(self, raw: BinaryIO) -> None:
        import zstandard

        self._raw, self._new = raw, zstandard.ZstdDecompressor().decompressobj
        self._frame, self._inside = self._new(), False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        out: list[bytes] = []
        size = 0
        while n < 0 or size < n:
            block = self._raw.read(self.BLOCK)
            if not block:
                if self._inside:
                    raise EOFError("the input ends inside a zstd frame")
                break
            for data in self._feed(block):
                out.append(data)
                size += len(data)
        return b"".join(out)

    def _feed(self, block: bytes) -> Iterator[bytes]:
        while block:
            self._inside = True
            yield self._frame.decompress(block)
            if not self._frame.eof:
                return
            block, self._frame, self._inside = self._frame.unused_data, self._new(), False


def clean(chunk: bytes) -> bytes:
    """Drop NUL bytes and ANSI escape sequences, and make a run of backspaces a ``\\r``;
    never touches ``\\n`` (line numbers hold). Keras 3 erases its bar with backspaces
    where tqdm returns the carriage: either way the next update is a record of its own."""
    if b"\x00" in chunk:
        chunk = chunk.replace(b"\x00", b"")
    if b"\x1b" in chunk:
        chunk = _ANSI_RX.sub(b"", chunk)
    if b"\x08" in chunk:
        chunk = _BACKSPACES_RX.sub(b"\r", chunk)
    return chunk


def _split_point(buf: bytes) -> int:
    """Where to cut ``buf`` so the kept part ends a line (or at least a bar update)."""
    cut = buf.rfind(b"\n") + 1
    if cut:
        return cut
    if len(buf) < CHUNK:
        return 0
    return (buf.rfind(b"\r") + 1) or len(buf)


@dataclass
class LogInput:
    """An opened log. Iterate :meth:`chunks` once; :attr:`head` is available before that."""

    name: str
    compression: str
    encoding: str
    head: bytes
    size: int | None
    _stream: BinaryIO
    _decoder: codecs.IncrementalDecoder | None
    _pending: bytes

    def _read(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        try:
            data = self._stream.read(CHUNK)
        except (EOFError, OSError, lzma.LZMAError) as exc:
            raise InputError(f"{self.name}: {self.compression} stream is truncated or corrupt ({exc})") from exc
        except Exception as exc:  # zstandard raises its own ZstdError
            raise InputError(f"{self.name}: {self.compression} stream is corrupt ({exc})") from exc
        if self._decoder is not None:
            data = self._decoder.decode(data, final=not data).encode("utf-8")
        return data

    def chunks(self) -> Iterator[bytes]:
        """Yield cleaned chunks ending on line boundaries (the last may end anywhere)."""
        carry = b""
        while True:
            data = self._read()
            if not data:
                break
            buf = carry + data if carry else data
            cut = _split_point(buf)
            if cut:
                yield self._limit.feed(clean(buf[:cut]))
            carry = buf[cut:]
        rest = (self._limit.feed(clean(carry)) if carry else b"") + self._limit.flush()
        if rest:
            yield rest

    def consumed(self) -> int | None:
        """Bytes of the input read so far (of the compressed file, when it is compressed),
        or None when the stream cannot tell (a pipe)."""
        try:
            return self._raw.tell() if self._raw is not None else None
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        self._stream.close()
        if self._raw is not None and self._raw is not self._stream:
            self._raw.close()  # decompressors do not close the file they were given

    _raw: BinaryIO | None = None
    #: the bound on carriage-return updates per physical line; ``dropped`` counts its cuts
    _limit: CarriageLimit = field(default_factory=CarriageLimit)

    @property
    def capped(self) -> dict[str, int]:
        """What the input bounds cut while reading (see :mod:`logsleuth.bounds`)."""
        return {"updates": self._limit.dropped} if self._limit.dropped else {}


def _raw_stream(source: object) -> tuple[str, BinaryIO, int | None]:
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path == "-":
            _refuse_device("<stdin>", sys.stdin.buffer)
            return "<stdin>", sys.stdin.buffer, None
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory, not a log file")
        try:
            stream = open(path, "rb")
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot open ({exc.strerror})") from None
        _refuse_device(path, stream)
        return path, stream, os.fstat(stream.fileno()).st_size
    if isinstance(source, io.TextIOBase):
        text = source.read()
        return getattr(source, "name", "<stream>"), io.BytesIO(text.encode("utf-8")), None
    if hasattr(source, "read"):
        return str(getattr(source, "name", "<stream>")), source, None  # type: ignore[return-value]
    raise InputError(f"cannot read a log from {type(source).__name__}")


def _refuse_device(name: str, stream: BinaryIO) -> None:
    """A character device that is not a terminal (``/dev/zero``, ``/dev/urandom``) never ends
    and holds no log: refuse it before reading (``/dev/null`` reads as empty input)."""
    try:
        fd = stream.fileno()
        info = os.fstat(fd)
        null = os.stat(os.devnull).st_rdev
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return
    if stat.S_ISCHR(info.st_mode) and not os.isatty(fd) and info.st_rdev != null:
        if stream is not sys.stdin.buffer:
            stream.close()
        raise InputError(f"{name}: is a character device, not a log file or a pipe")


#: control bytes no text log holds (NUL, tab, newlines, form feed, backspace and ESC excluded)
_CONTROL = bytes(b for b in range(32) if b not in b"\x00\x08\t\n\x0b\x0c\r\x1b")


def _looks_binary(head: bytes) -> bool:
    """True when more than 5% of the head's non-NUL bytes are control bytes (an image, an
    archive, a model file): random bytes hold about 10%, a text log none."""
    sample = head[:HEAD].replace(b"\x00", b"")
    if len(sample) < 256:
        return False
    return len(sample) - len(sample.translate(None, _CONTROL)) > len(sample) * 0.05


def _encoding_of(head: bytes) -> tuple[str, int]:
    """Return (encoding, BOM length). UTF-16 without BOM is recognised by its NUL pattern."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0  # the utf-16 codec consumes the BOM itself
    sample = head[:4096]
    if len(sample) >= 64:
        odd_nuls, even_nuls = sample[1::2].count(0), sample[0::2].count(0)
        if odd_nuls > len(sample) * 0.4 and even_nuls < len(sample) * 0.05:
            return "utf-16-le", 0
        if even_nuls > len(sample) * 0.4 and odd_nuls < len(sample) * 0.05:
            return "utf-16-be", 0
    return "utf-8", 0


def open_log(source: object) -> LogInput:
    """Open ``source`` (path, ``-`` or stream); raise :class:`InputError` if it is unusable."""
    name, raw, size = _raw_stream(source)
    magic = raw.read(8) if not hasattr(raw, "peek") else raw.peek(8)[:8]  # type: ignore[attr-defined]
    if not hasattr(raw, "peek"):
        raw = _Prefixed(magic, raw)  # type: ignore[assignment]  # a BinaryIO in all but name
    compression = sniff_compression(magic)
    stream = _decompressor(raw, compression)
    log = LogInput(name, compression, "utf-8", b"", size, stream, None, b"")
    log._raw = raw
    first = log._read()
    encoding, bom = _encoding_of(first)
    if encoding.startswith("utf-16"):
        log._decoder = codecs.getincrementaldecoder(encoding)("replace")
        first = log._decoder.decode(first).encode("utf-8")
    first = first[bom:]
    if _looks_binary(first):
        raise InputError(f"{name}: binary data, not a text log (an image, archive or model file?)")
    if not first.strip(b"\x00 \t\r\n"):
        rest = log._read()
        if not rest:
            raise InputError(f"{name}: empty input (no log lines to read)")
        first += rest
    log.encoding, log._pending = encoding, first
    log.head = clean(first[:HEAD])
    return log


class _Prefixed(io.RawIOBase):
    """A stream with a few already-read bytes put back in front (for unseekable stdin)."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix, self._stream = prefix, stream

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        if self._prefix:
            data, self._prefix = self._prefix, b""
            more = self._stream.read(n - len(data) if n > 0 else -1) if n < 0 or n > len(data) else b""
            return data + (more or b"")
        return self._stream.read(n)

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
