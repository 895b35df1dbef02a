"""The protobuf wire format, as much of it as scalars in TensorBoard event files need.

No generated classes and no ``protobuf`` dependency: fields are walked with ``_fields``
(``(field number, wire type, start, stop)``, payload bounds for length-delimited fields)
and only the messages on the way to a scalar are looked into (``SummaryMetadata`` for the
plugin name, ``TensorProto`` for one-element numeric tensors).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: TensorFlow DataType enum -> numpy dtype of one element (numeric types only)
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2", 19: "<f2",
          22: "<u4", 23: "<u8", 14: "bfloat16"}


def varint(buf: bytes, p: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[p]
        result |= (b & 0x7F) << shift
        p += 1
        if b < 0x80:
            return result, p
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def skip(buf: bytes, p: int, wire: int) -> int:
    if wire == 0:
        return varint(buf, p)[1]
    if wire == 1:
        return p + 8
    if wire == 2:
        n, p = varint(buf, p)
        return p + n
    if wire == 5:
        return p + 4
    raise ValueError(f"unsupported wire type {wire}")


def fields(buf: bytes, p: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field, wire, start, stop)``; for length-delimited fields start/stop bound the payload."""
    while p < end:
        key, p = varint(buf, p)
        wire = key & 7
        if wire == 2:
            n, p = varint(buf, p)
            yield key >> 3, wire, p, p + n
            p += n
        else:
            start = p
            p = skip(buf, p, wire)
            yield key >> 3, wire, start, p
    if p != end:
        raise ValueError("field runs past its message")


def signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def metadata(buf: bytes, p: int, end: int) -> tuple[str, int]:
    """(plugin name, data class) of a SummaryMetadata."""
    plugin, data_class = "", 0
    for f, wire, a, b in fields(buf, p, end):
        if f == 1 and wire == 2:
            for g, w2, c, d in fields(buf, a, b):
                if g == 1 and w2 == 2:
                    plugin = buf[c:d].decode("utf-8", "replace")
        elif f == 4 and wire == 0:
            data_class = varint(buf, a)[0]
    return plugin, data_class


def tensor_scalar(buf: bytes, p: int, end: int) -> tuple[str, float] | None:
    """A one-element numeric tensor as ``("f4"|"f8", offset)`` or ``("py", value)``; else None."""
    dtype, count, content = 0, 1, None
    vals: list[tuple[int, int, int, int]] = []  # (field, wire, start, stop)
    for f, wire, a, b in fields(buf, p, end):
        if f == 1 and wire == 0:
            dtype = varint(buf, a)[0]
        elif f == 2 and wire == 2:
            for g, w2, c, d in fields(buf, a, b):
                if g == 2 and w2 == 2:  # dim { size = 1 }
                    size = 1
                    for h, w3, e, _ in fields(buf, c, d):
                        if h == 1 and w3 == 0:
                            size = signed64(varint(buf, e)[0])
                    count *= size
                elif g == 3 and w2 == 0 and varint(buf, c)[0]:
                    return None  # unknown rank
        elif f == 4 and wire == 2:
            content = (a, b)
        elif f in (5, 6, 7, 10, 11, 13, 16, 17):
            vals.append((f, wire, a, b))
    kind = DTYPES.get(dtype)
    if count != 1 or kind is None:
        return None
    if content is not None:
        a, b = content
        if kind == "<f4" and b - a == 4:
            return "f4", a
        if kind == "<f8" and b - a == 8:
            return "f8", a
        if kind == "bfloat16" and b - a == 2:
            return "py", float(np.frombuffer(b"\x00\x00" + buf[a:b], "<f4")[0])
        if kind != "bfloat16" and b - a == np.dtype(kind).itemsize:
            return "py", float(np.frombuffer(buf[a:b], kind)[0])
        return None
    if len(vals) != 1:
        return None
    f, wire, a, b = vals[0]
    if f == 5:  # float_val: packed (wire 2) or not (wire 5)
        return ("f4", a) if (wire == 5 or b - a == 4) else None
    if f == 6:
        return ("f8", a) if (wire == 1 or b - a == 8) else None
    raw, stop = varint(buf, a)
    if wire == 2 and stop != b:
        return None  # several packed values: not a scalar
    if f == 13:  # half_val holds the 16 bits of a half or a bfloat16
        bits = np.array([raw & 0xFFFF], dtype=np.uint16)
        if kind == "<f2":
            return "py", float(bits.view(np.float16)[0])
        return "py", float((bits.astype(np.uint32) << 16).view(np.float32)[0])
    return "py", float(signed64(raw) if f in (7, 10) else raw)
