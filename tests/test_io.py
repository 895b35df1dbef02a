"""Input handling: compression by magic bytes, encodings, control characters, sizes, errors."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
import os

import pytest
import zstandard

import logsleuth
from logsleuth.errors import InputError
from logsleuth.io import CHUNK

CAFFE = (
    "I0425 10:12:49.611122  9167 solver.cpp:65] Iteration 180, loss = 6.55607\n"
    "I0425 10:13:04.672341  9167 solver.cpp:208] Iteration 200, lr = 0.01\n"
    "I0425 10:13:04.672637  9167 solver.cpp:65] Iteration 200, loss = 6.55622\n"
    "I0425 10:13:21.206111  9167 solver.cpp:65] Iteration 220, loss = nan\n"
)
COMPRESSORS = {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
               "zstd": lambda b: zstandard.ZstdCompressor().compress(b)}


def _loss(series: logsleuth.RunSeries) -> list[tuple[int, float]]:
    rows = series.frame[series.frame["metric"] == "loss"]
    return list(zip(rows["step"].astype(int), rows["value"]))


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_compression_is_detected_by_magic_not_extension(kind: str, write) -> None:
    path = write("train.txt", COMPRESSORS[kind](CAFFE.encode()))  # misleading suffix on purpose
    series = logsleuth.read_log(path)
    assert series.compression == kind
    assert [s for s, _ in _loss(series)] == [180, 200, 220]
    assert math.isnan(_loss(series)[-1][1])


def test_truncated_gzip_is_an_input_error(write) -> None:
    path = write("train.log.gz", gzip.compress(CAFFE.encode() * 200)[:-30])
    with pytest.raises(InputError, match="truncated or corrupt"):
        logsleuth.read_log(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig"])
def test_encodings(encoding: str, write) -> None:
    data = CAFFE.encode(encoding)
    if encoding == "utf-16-le":
        data = b"\xff\xfe" + data
    series = logsleuth.read_log(write("u.log", data))
    assert [s for s, _ in _loss(series)] == [180, 200, 220]


def test_invalid_utf8_nul_ansi_and_crlf_are_survived(write) -> None:
    noisy = ("\x1b[32m" + CAFFE.replace("\n", "\r\n").replace("Iteration 200,", "Itera\x00tion 200,")
             + "\xff\xfe garbage \x1b[0m\n")
    series = logsleuth.read_log(write("n.log", noisy.encode("utf-8", "surrogateescape") + b"\xff\xc3\x28\n"))
    assert [s for s, _ in _loss(series)] == [180, 200, 220]
    assert series.frame["line"].tolist()[-1] == 4


def test_carriage_return_updates_are_records_and_glued_text_is_found(write) -> None:
    bars = "".join(f"\r  {i}/5 [=====>....] - ETA: 1s - loss: {1.0 / i:.4f}" for i in range(1, 4))
    text = "Epoch 1/2\n" + bars + "Batch 3: Invalid loss, terminating training\n"
    series = logsleuth.read_log(write("k.log", text), format="keras")
    assert [s for s, _ in _loss(series)] == [1, 2, 3]
    assert set(series.frame["line"]) == {2}
    assert [e.kind for e in series.events if e.kind != "restart"] == ["terminate_on_nan"]


def test_line_longer_than_a_chunk_keeps_memory_bounded_and_later_lines(write) -> None:
    huge = "x" * (CHUNK + 1000) + "\n"
    series = logsleuth.read_log(write("long.log", huge + CAFFE), format="caffe")
    assert [s for s, _ in _loss(series)] == [180, 200, 220]
    assert series.frame["line"].min() == 2


def test_stdin_and_streams() -> None:
    assert len(_loss(logsleuth.read_log(io.BytesIO(CAFFE.encode())))) == 3
    assert len(_loss(logsleuth.read_log(io.StringIO(CAFFE)))) == 3


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda t: t / "missing.log", "no such file"),
    (lambda t: t, "is a directory"),
    (lambda t: _file(t / "empty.log", b""), "empty input"),
    (lambda t: _file(t / "blank.log", b"\n\n  \n"), "empty input"),
])
def test_bad_inputs_raise_input_error(tmp_path, make, message: str) -> None:
    with pytest.raises(InputError, match=message):
        logsleuth.read_log(make(tmp_path))


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_an_endless_character_device_is_refused_at_once(device: str) -> None:
    with pytest.raises(InputError, match="is a character device"):
        logsleuth.read_log(device)


def test_dev_null_is_empty_input() -> None:
    with pytest.raises(InputError, match="empty input"):
        logsleuth.read_log(os.devnull)


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64,  # an image's header, then binary
    bytes((i * 7919) % 251 for i in range(65536)),  # noise: about a tenth control bytes
])
def test_binary_data_is_an_input_error(tmp_path, data: bytes) -> None:
    with pytest.raises(InputError, match="binary data, not a text log"):
        logsleuth.read_log(_file(tmp_path / "picture.log", data))


def test_a_log_with_a_few_control_bytes_is_still_read(tmp_path) -> None:
    text = CAFFE.replace("\n", "\x07\n", 1)
    series = logsleuth.read_log(_file(tmp_path / "bell.log", text.encode()))
    assert [s for s, _ in _loss(series)] == [180, 200, 220]


def test_unknown_format_is_a_format_error(write) -> None:
    with pytest.raises(logsleuth.FormatError, match="unknown format 'nope'"):
        logsleuth.read_log(write("a.log", CAFFE), format="nope")


def test_parallel_and_serial_paths_agree(write, monkeypatch) -> None:
    from logsleuth import parallel

    body = "".join(
        f"I0425 10:12:49.611122  9167 solver.cpp:65] Iteration {i}, loss = {1.0 / (i + 1):.6f}\n"
        f"I0425 10:12:49.611122  9167 solver.cpp:65]     Train net output #0: loss = {1.0 / (i + 1):.6f}\n"
        for i in range(0, 60000, 2)
    ) + "I0425 10:12:49.611122  9167 solver.cpp:65] Iteration 0, loss = nan\n"
    path = write("big.log", body)
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(parallel, "CHUNK", 100_000)
    job = logsleuth.api.start_parse(path)
    par = job.series(list(job.frames(jobs=2)))
    job = logsleuth.api.start_parse(path)
    ser = job.series(list(job.frames(jobs=1)))
    assert par.frame.equals(ser.frame)
    assert par.frame["segment"].max() == 1  # the restart at the end
    assert par.first_nonfinite().line == ser.first_nonfinite().line == 60001


@pytest.mark.parametrize("compress", [None, "gzip"])
def test_progress_adds_up_to_the_bytes_of_the_file(monkeypatch, tmp_path, compress) -> None:
    from logsleuth import io as log_io

    text = "".join(f"I0101 00:00:00.000000  1 solver.cpp:218] Iteration {i}, loss = {1 / (i + 1):.5f}\n"
                   for i in range(20_000)).encode()
    path = tmp_path / ("train.log.gz" if compress else "train.log")
    path.write_bytes(gzip.compress(text) if compress else text)
    monkeypatch.setattr(log_io, "CHUNK", 64 << 10)
    seen: list[int] = []
    series = logsleuth.read_log(path, progress=seen.append)
    assert len(series.frame) == 20_000 and len(seen) > 5
    assert sum(seen) == path.stat().st_size  # compressed bytes for a compressed file: percent stays <= 100
