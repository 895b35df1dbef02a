"""The files ``logsleuth postmortem`` writes, each written so that a hook cannot hang on
it or damage a user's file.

- the report (``<log>.logsleuth.json``): replaced atomically (temp file in the same folder
  + rename), and only when what is there is a regular file holding an earlier logsleuth
  report; a symlink or a user's own file at that name is left alone (an epilog runs as
  root in the user's folder: following a planted link would write anywhere);
- the log: only appended to, only when it is a regular file (a FIFO would block);
- the ledger: one JSON line per call, a single ``O_APPEND`` write under a short,
  non-blocking ``flock`` attempt, so concurrent epilogs on a shared file system do not
  interleave;
- the termination log: at most 4 KiB (the kubelet's limit); what the application wrote
  there itself is kept, an earlier logsleuth line is replaced.

Every file is opened ``O_NONBLOCK``: opening a FIFO must not wait for a reader.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from .errors import InputError

TERMINATION_LOG_MAX = 4096  # bytes, the kubelet's limit on a termination message
LEDGER_LINE_MAX = 16 << 10  # bytes: one entry stays one small atomic write
_OUR_REPORT = re.compile(rb'\A\{\s*"schema_version":\s*\d+,\s*"verdict":')
_LOCK_WAIT = 1.0  # seconds of flock attempts before appending without the lock


def is_our_report(path: str) -> bool:
    """A regular file (not a link) that starts like a logsleuth JSON report."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and bool(_OUR_REPORT.match(os.read(fd, 256)))
    finally:
        os.close(fd)


def write_report(path: str, text: str, owner: tuple[int, int] | None = None) -> None:
    """Write (or atomically replace an earlier) report at ``path``; ``owner`` is the
    (uid, gid) to give it when root writes it for a user."""
    if os.path.lexists(path) and not is_our_report(path):
        raise InputError(f"{path}: exists and is not a logsleuth report (or is a link); left alone")
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
            os.fchmod(f.fileno(), 0o644)
            if owner:
                os.fchown(f.fileno(), *owner)
        os.replace(tmp, path)  # replaces the directory entry: never writes through a link
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def append_line(path: str, line: str) -> None:
    """Append ``line`` to an existing regular file, on a line of its own, unless it is
    already the file's last line."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: not a regular file; the verdict is not appended to it")
        data = line.encode("utf-8", "replace")
        tail = os.pread(fd, len(data) + 2, max(st.st_size - len(data) - 2, 0))
        if tail.rstrip(b"\n").endswith(b"\n" + data) or tail.rstrip(b"\n") == data:
            return  # a re-run with the same verdict: once is enough
        sep = b"" if not tail or tail.endswith(b"\n") else b"\n"
        os.write(fd, sep + data + b"\n")
    finally:
        os.close(fd)


def append_to_ledger(path: str, entry: Mapping[str, Any]) -> None:
    """One JSON line for ``entry`` at the end of the ledger (created if missing)."""
    data = _ledger_line(entry)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path}: the ledger is not a regular file")
        locked = _try_lock(fd)
        os.write(fd, data)
        if locked:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _ledger_line(entry: Mapping[str, Any]) -> bytes:
    data = json.dumps(dict(entry), ensure_ascii=False, default=str).encode() + b"\n"
    if len(data) <= LEDGER_LINE_MAX:
        return data
    slim = {**entry, "line": str(entry.get("line", ""))[:1000], "logs": list(entry.get("logs", []))[-3:]}
    return json.dumps(slim, ensure_ascii=False, default=str).encode()[: LEDGER_LINE_MAX - 1] + b"\n"


def _try_lock(fd: int) -> bool:
    """A few non-blocking attempts: a stuck lock holder must not stall the hook."""
    end = time.monotonic() + _LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > end:
                return False
            time.sleep(0.05)


def termination_message(existing: bytes, line: str) -> bytes:
    """The application's own message (earlier logsleuth lines dropped), then ``line``,
    cut to :data:`TERMINATION_LOG_MAX` bytes: the application's part is cut first."""
    limit = TERMINATION_LOG_MAX - 1  # and the final newline
    kept = [raw for raw in existing.rstrip(b"\0").splitlines() if not raw.startswith(b"logsleuth")]
    ours = _cut(line.encode("utf-8", "replace"), limit)
    theirs = b"\n".join(kept).rstrip(b"\n")
    room = limit - len(ours) - 1
    body = (_cut(theirs, room) + b"\n" + ours) if theirs and room > 0 else ours
    return body + b"\n"


def _cut(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes, never half a UTF-8 character."""
    return data if len(data) <= limit else data[:limit].decode("utf-8", "ignore").encode()


def write_termination_log(path: str, line: str) -> None:
    """Put the verdict in the container's termination message file."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY, 0o644)
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        existing = os.pread(fd, TERMINATION_LOG_MAX, 0) if regular else b""
        data = termination_message(existing, line)
        if regular:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        else:
            os.write(fd, data)
    finally:
        os.close(fd)
