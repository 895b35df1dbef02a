"""Uploads for :mod:`logsleuth.service`: a request's body streamed to disk under the caps.

The body arrives in chunks; a ``Content-Encoding`` (gzip, zstd) is undone as it comes; a
multipart body is split into its files as it comes (several files are attempts of one
job); a raw body is one file. Each file goes to a private temporary directory, named as
the client named it (a label only: no path a client sends is ever opened), and the bytes
a compressed file will expand to are counted by decompressing it in bounded pieces, kept
nowhere. A cap passed is a 413 at once (:class:`Problem`), not after the upload.
"""

from __future__ import annotations

import asyncio
import bz2
import lzma
import os
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import JSONResponse
from python_multipart.multipart import MultipartParser, parse_options_header

from .io import sniff_compression

if TYPE_CHECKING:
    from .service import Settings

GiB = 1 << 30
#: bytes of decompressed output handled at a time (never more is held)
PIECE = 256 << 10
#: files in one multipart upload (attempts of one job)
MAX_FILES = 64
PROBLEM = "application/problem+json"


# ---- problems (RFC 9457) ---------------------------------------------------------------

class Problem(Exception):
    """An error answered as ``application/problem+json``; ``kind`` names its type URI."""

    def __init__(self, status: int, kind: str, title: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.headers = status, kind, title, detail, headers or {}

    def response(self) -> JSONResponse:
        body = {"type": f"urn:logsleuth:problem:{self.kind}", "title": self.title, "status": self.status,
                "detail": self.detail}
        return JSONResponse(body, self.status, self.headers, media_type=PROBLEM)


def _too_large(what: str, limit: int, option: str) -> Problem:
    return Problem(413, "too-large", "Upload too large", f"{what} more than {_size(limit)} ({option})")


def _size(n: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


# ---- what an upload may hold -------------------------------------------------------------

@dataclass
class _Budget:
    """The request's byte counts against the caps: raise 413 the moment one is passed."""

    max_upload: int
    max_decompressed: int
    received: int = 0
    expanded: int = 0

    def receive(self, n: int) -> None:
        self.received += n
        if self.received > self.max_upload:
            raise _too_large("the upload is", self.max_upload, "--max-upload")

    def expand(self, n: int) -> None:
        self.expanded += n
        if self.expanded > self.max_decompressed:
            raise _too_large("the logs expand to", self.max_decompressed, "--max-decompressed")


class _Inflater:
    """Decompress a stream written to it piece by piece into ``out`` (at most :data:`PIECE`
    bytes a call): every gzip/bz2/xz member, every zstd frame. ``done`` after a whole stream."""

    def __init__(self, kind: str, out: Callable[[bytes], Any]) -> None:
        self.kind, self.out, self.done, self.trailing = kind, out, False, False
        self._d: Any = None
        if kind == "zstd":
            import zstandard

            self._zstd = zstandard.ZstdDecompressor().stream_writer(
                _Calls(out), write_size=PIECE, closefd=False)  # type: ignore[arg-type]

    def _new(self) -> Any:
        return {"gzip": lambda: zlib.decompressobj(31), "bz2": bz2.BZ2Decompressor,
                "xz": lzma.LZMADecompressor}[self.kind]()

    def write(self, data: bytes) -> None:
        if self.kind == "zstd":
            self._zstd.write(data)
            self.done = True  # zstd tells no end of stream here: the reader says when it is cut
            return
        while data and not self.trailing:
            if self._d is None:
                data = data.lstrip(b"\0") if self.kind == "gzip" and self.done else data  # gzip's zero padding
                if not data:
                    return
                self._d, self.done = self._new(), False
            try:
                data = self._feed(self._d, data)
            except (OSError, lzma.LZMAError):
                if not (self.done and self.kind in ("bz2", "xz")):
                    raise
                self.trailing = True  # bz2/xz readers ignore data after a whole stream: so do we
                return
            if self._d.eof:
                data, self._d, self.done = self._d.unused_data + data, None, True

    def _feed(self, d: Any, data: bytes) -> bytes:
        """Push ``data`` through ``d``; return what it has not taken (a later member's)."""
        if self.kind == "gzip":
            while data and not d.eof:
                self.out(d.decompress(data, PIECE))
                data = d.unconsumed_tail
            return data
        self.out(d.decompress(data, PIECE))
        while not d.eof and not d.needs_input:
            self.out(d.decompress(b"", PIECE))
        return b""


class _Calls:
    """A file-like ``write`` that hands each piece to a function (zstd's stream writer)."""

    def __init__(self, out: Callable[[bytes], Any]) -> None:
        self.out = out

    def write(self, data: bytes) -> int:
        self.out(bytes(data))
        return len(data)


class UploadedFile:
    """One uploaded file, written as it arrives; its expansion counted against the budget
    (a compressed file's by decompressing it, told by its first bytes). A file that does
    not decompress is kept up to the chunk that failed (``broken``), for the reader to name."""

    def __init__(self, root: str, index: int, label: str, budget: _Budget) -> None:
        name = label.replace("\\", "/").rsplit("/", 1)[-1].encode()[:200].decode("utf-8", "ignore")
        os.mkdir(os.path.join(root, str(index)))
        self.path = os.path.join(root, str(index), name if name not in ("", ".", "..") else "upload")
        self.label, self.budget = label, budget
        self.broken: Problem | None = None
        self._f = open(self.path, "xb")
        self._head = b""
        self._count: Callable[[bytes], Any] | None = None
        self._kind = "none"

    def write(self, data: bytes) -> None:
        if self.broken:
            return
        self._f.write(data)
        if self._count is None:
            self._head += data
            if len(self._head) < 8:
                return
            data, self._head = self._head, b""
            self._decide(data)
        self._counted(data)

    def _decide(self, head: bytes) -> None:
        self._kind = sniff_compression(head)
        expand = self.budget.expand
        self._count = (lambda data: expand(len(data))) if self._kind == "none" else \
            _Inflater(self._kind, lambda piece: expand(len(piece))).write

    def _counted(self, data: bytes) -> None:
        try:
            self._count(data)  # type: ignore[misc]
        except Problem:
            raise
        except Exception as exc:  # zlib.error, OSError, LZMAError, zstandard's ZstdError
            self.broken = Problem(422, "unreadable-log", "Log cannot be read",
                                  f"{self.label}: {self._kind} stream is corrupt ({exc})")

    def close(self) -> None:
        """The file is whole (a truncated compressed one is left for the reader to name)."""
        if self._count is None and self._head:
            self._decide(self._head)
            self._counted(self._head)
        self._f.close()


class _Raw:
    """A raw body: one file."""

    def __init__(self, file: UploadedFile) -> None:
        self.files = [file]

    def write(self, data: bytes) -> None:
        self.files[0].write(data)

    def close(self) -> None:
        self.files[0].close()


class _Form:
    """A ``multipart/form-data`` body split into its files as it arrives: each part is a
    log (an attempt, in order), labelled by its filename, else by its field name."""

    def __init__(self, boundary: bytes, new_file: Callable[[int, str], UploadedFile]) -> None:
        self.files: list[UploadedFile] = []
        self.new_file, self.ended = new_file, False
        self._headers: dict[bytes, bytes] = {}
        self._field = self._value = b""
        self._parser = MultipartParser(boundary, {
            "on_header_field": lambda d, a, b: self._append("_field", d[a:b]),
            "on_header_value": lambda d, a, b: self._append("_value", d[a:b]),
            "on_header_end": self._header_end, "on_headers_finished": self._open,
            "on_part_data": lambda d, a, b: self.files[-1].write(bytes(d[a:b])),
            "on_part_end": lambda: self.files[-1].close(), "on_end": self._end})

    def _append(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def _open(self) -> None:
        if len(self.files) >= MAX_FILES:
            raise Problem(400, "bad-multipart", "Bad multipart body", f"more than {MAX_FILES} files in one upload")
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        label = (options.get(b"filename") or options.get(b"name") or b"").decode("utf-8", "replace")
        self.files.append(self.new_file(len(self.files), label or f"upload{len(self.files)}"))
        self._headers = {}

    def _end(self) -> None:
        self.ended = True

    def write(self, data: bytes) -> None:
        try:
            self._parser.write(data)
        except Problem:
            raise
        except Exception as exc:  # python_multipart's MultipartParseError and kin
            raise Problem(400, "bad-multipart", "Bad multipart body", f"cannot read the multipart body ({exc})") from None

    def close(self) -> None:
        self._parser.finalize()
        if not self.ended:
            raise Problem(400, "bad-multipart", "Bad multipart body",
                          "the multipart body ends before its last boundary")
        if not self.files:
            raise Problem(400, "bad-multipart", "Bad multipart body", "no file in the multipart body")


class _Decoded:
    """The body under its ``Content-Encoding`` (gzip, zstd), undone as it arrives."""

    def __init__(self, coding: str, target: _Raw | _Form) -> None:
        self.coding, self.target = coding, target
        self.files = target.files
        self._inflater = _Inflater("gzip" if coding in ("gzip", "x-gzip") else coding, target.write)

    def write(self, data: bytes) -> None:
        try:
            self._inflater.write(data)
        except Problem:
            raise
        except Exception as exc:
            raise Problem(400, "bad-encoding", "Bad Content-Encoding",
                          f"the request body is not valid {self.coding} ({exc})") from exc

    def close(self) -> None:
        if not self._inflater.done:
            raise Problem(400, "bad-encoding", "Bad Content-Encoding",
                          f"the request body's {self.coding} stream is truncated")
        self.target.close()


def _target(request: Request, root: str, budget: _Budget, name: str | None) -> _Raw | _Form | _Decoded:
    """Where the body's bytes go: one file, or a multipart body's files, under their coding."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))

    def new_file(index: int, label: str) -> UploadedFile:
        return UploadedFile(root, index, "".join(c for c in label if c.isprintable())[:1024] or "upload", budget)

    if content_type == b"multipart/form-data":
        if not options.get(b"boundary"):
            raise Problem(400, "bad-multipart", "Bad multipart body", "multipart/form-data without a boundary")
        target: _Raw | _Form = _Form(options[b"boundary"], new_file)
    else:
        target = _Raw(new_file(0, name or _disposition_name(request) or "upload"))
    coding = request.headers.get("content-encoding", "identity").strip().lower()
    if coding in ("", "identity"):
        return target
    if coding not in ("gzip", "x-gzip", "zstd"):
        raise Problem(415, "unsupported-encoding", "Unsupported Content-Encoding",
                      f"Content-Encoding {coding!r} is not supported: send gzip, zstd or identity")
    return _Decoded(coding, target)


def _disposition_name(request: Request) -> str | None:
    _, options = parse_options_header(request.headers.get("content-disposition", ""))
    return options[b"filename"].decode("utf-8", "replace") if options.get(b"filename") else None


async def _chunks(request: Request, timeout: float) -> AsyncIterator[bytes]:
    """The body's chunks; 408 when the client sends nothing for ``timeout`` seconds."""
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise Problem(408, "upload-timeout", "Upload timed out",
                          f"no data for {timeout:g} s (--upload-timeout)") from None
        if chunk:
            yield chunk


async def receive(request: Request, settings: Settings, root: str, name: str | None = None) -> list[UploadedFile]:
    """Stream the request's log(s) into ``root`` under the caps; the files, in order. A file
    that does not decompress ends the upload there (``broken``: the reader names the fault)."""
    budget = _Budget(settings.max_upload, settings.max_decompressed)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.max_upload:
        raise _too_large("the upload is", settings.max_upload, "--max-upload")
    target = _target(request, root, budget, name)
    async for chunk in _chunks(request, settings.upload_timeout):
        budget.receive(len(chunk))
        target.write(chunk)
        if any(f.broken for f in target.files):
            for f in target.files:
                f.close()
            return target.files
    target.close()
    return target.files
