"""Property tests: arbitrary bytes and mutated real logs never raise anything but the
project's own error type, and whatever parses is a well-formed series."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logsleuth
from logsleuth.errors import LogsleuthError

from .conftest import REAL_LOGS, real_log_labels

REAL = [(REAL_LOGS / row["file"]).read_bytes() for row in real_log_labels()]
FORMATS = [None, "caffe", "keras", "hf_trainer", "generic", "megatron", "yolo", "fairseq", "pytorch"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(data: bytes, fmt: str | None) -> None:
    try:
        series = logsleuth.read_log(io.BytesIO(data), format=fmt)
    except LogsleuthError:
        return
    frame = series.frame
    assert list(frame.columns) == ["step", "metric", "value", "phase", "segment", "rank", "epoch", "line"]
    assert (frame["line"] >= 1).all()
    assert set(frame["phase"].astype(str)) <= {"train", "eval"}
    series.first_nonfinite()


@SETTINGS
@given(st.binary(max_size=4000), st.sampled_from(FORMATS))
def test_arbitrary_bytes(data: bytes, fmt: str | None) -> None:
    _check(data, fmt)


@st.composite
def mutated_real_log(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 80))]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b"\r", b"\x00", b"\x1b[31m", b"nan", b"-inf", b"\n", b"\xff\xfe",
                                                b"Iteration ", b"{'loss': ", b" | lm loss: ", b"\r\n"]))
        else:
            del data[at:]
    return bytes(data)


@SETTINGS
@given(mutated_real_log(), st.sampled_from(FORMATS))
def test_mutated_real_logs(data: bytes, fmt: str | None) -> None:
    _check(data, fmt)
