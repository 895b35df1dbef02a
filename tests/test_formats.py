"""Every format reads its own sample lines, and detection picks it for them (specific
formats must beat the generic fallback on their own samples)."""

from __future__ import annotations

import io

import pytest

import logsleuth
from logsleuth.detect import detect
from logsleuth.parsers import builtin_formats

FORMATS = builtin_formats()


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.name for f in FORMATS])
def test_samples_are_read(fmt) -> None:
    for sample in fmt.samples:
        series = logsleuth.read_log(io.BytesIO(sample.encode() + b"\n"), format=fmt.name)
        assert len(series.frame) or series.events, f"{fmt.name} does not read its sample {sample!r}"
        assert series.unparsed == 0


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f.sniff], ids=[f.name for f in FORMATS if f.sniff])
def test_detection_picks_the_format_for_its_samples(fmt) -> None:
    head = "\n".join(fmt.samples).encode() + b"\n"
    assert detect(head).name == fmt.name


def test_names_are_unique_and_generic_is_last() -> None:
    names = [f.name for f in FORMATS]
    assert len(names) == len(set(names)) and names[-1] == "generic"


def test_megatron_damaged_count_field_is_no_crash() -> None:
    """A count field that is no number (``nan iterations:  #0``, a damaged line) counts as none."""
    from logsleuth.parsers.megatron import _count

    assert [_count(v) for v in (b"#0", b"nan", b"inf", b"3", None)] == [0, 0, 0, 3, 0]
