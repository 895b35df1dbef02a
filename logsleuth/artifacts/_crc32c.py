"""CRC-32C (Castagnoli), as TFRecord framing uses it, without a C extension.

Verification is optional (``read_tfevents(..., verify=True)``), so this favours being
dependency-free over raw speed: many records are checked at once, one byte column per
numpy step (records sorted by length, so the active set is a prefix), and the long tail
of a few big records (a graph definition) runs through a table loop in Python. The
``crc32c`` package is used instead when it happens to be installed.
"""

from __future__ import annotations

import numpy as np

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8


def _table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1).astype(np.uint32)
    return table


TABLE = _table()
_TABLE_LIST = TABLE.tolist()

try:  # pragma: no cover - only when the optional C package is present
    from crc32c import crc32c as _c_crc32c  # type: ignore[import-not-found]
except ImportError:  # the normal case
    _c_crc32c = None


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (slow pure-Python loop unless the ``crc32c`` package exists)."""
    if _c_crc32c is not None:  # pragma: no cover
        return int(_c_crc32c(data))
    crc = 0xFFFFFFFF
    table = _TABLE_LIST
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def mask(crc: np.ndarray | int) -> np.ndarray | int:
    """TFRecord's masked CRC: rotate right by 15 bits and add a constant (mod 2**32)."""
    if isinstance(crc, np.ndarray):
        crc = crc.astype(np.uint64)
        return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA & 0xFFFFFFFF).astype(np.uint32)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def crc32c_many(buf: bytes, starts: np.ndarray, lengths: np.ndarray, python_tail: int = 16) -> np.ndarray:
    """CRC-32C of ``buf[starts[i]:starts[i]+lengths[i]]`` for every i, vectorised across records."""
    n = len(starts)
    out = np.zeros(n, dtype=np.uint32)
    if not n:
        return out
    if _c_crc32c is not None:  # pragma: no cover
        return np.fromiter((_c_crc32c(buf[s:s + ln]) for s, ln in zip(starts.tolist(), lengths.tolist())),
                           dtype=np.uint32, count=n)
    data = np.frombuffer(buf, dtype=np.uint8)
    order = np.argsort(-lengths, kind="stable")
    s_sorted = starts[order].astype(np.int64)
    l_sorted = lengths[order].astype(np.int64)
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    # active(j) = records longer than j: a prefix, because lengths are sorted descending
    active_counts = np.searchsorted(-l_sorted, -np.arange(int(l_sorted[0]) + 1), side="left")
    j = 0
    while j < l_sorted[0]:
        k = int(active_counts[j])
        if k <= python_tail and l_sorted[0] - j > 64:
            break
        byte = data[s_sorted[:k] + j]
        crc[:k] = TABLE[(crc[:k] ^ byte) & 0xFF] ^ (crc[:k] >> np.uint32(8))
        j += 1
    if j < l_sorted[0]:  # a few long records left: finish them byte by byte
        table = _TABLE_LIST
        for i in range(int(active_counts[j])):
            c = int(crc[i])
            start, end = int(s_sorted[i]) + j, int(s_sorted[i] + l_sorted[i])
            for octet in buf[start:end]:
                c = table[(c ^ octet) & 0xFF] ^ (c >> 8)
            crc[i] = c
    out[order] = crc ^ np.uint32(0xFFFFFFFF)
    return out
