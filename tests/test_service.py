"""The HTTP service: the CLI's JSON for raw, multipart, gzip and zstd uploads; 413 for both
caps while the body streams; problem+json errors with the CLI's messages; a client gone
mid-upload leaves no file and no harm; concurrent requests; 503 with Retry-After when
full; the report schema in the OpenAPI document."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import zstandard  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from logsleuth.cli import main  # noqa: E402
from logsleuth.service import DiagnosisReport, JobTimeout, Settings, create_app, timed_job  # noqa: E402

from .conftest import REPO  # noqa: E402

SAMPLES = REPO / "sample_logs"
CAFFE, HF = SAMPLES / "caffe_sudden_nan.log", SAMPLES / "hf_trainer_hidden_nan.log"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def client(spool: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workers=2, tmp_dir=str(spool)))) as c:
        yield c


@pytest.fixture(autouse=True)
def no_file_left(spool: Path) -> Iterator[None]:
    yield
    assert not list(spool.iterdir()), "a request left its files behind"


def cli(args: list[str], where: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """``logsleuth ARGS`` run in ``where`` (so the report's paths are the bare names)."""
    monkeypatch.chdir(where)
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stdout, result.stderr


def cli_report(where: Path, names: list[str], monkeypatch: pytest.MonkeyPatch) -> dict:
    code, out, err = cli(["diagnose", "--format", "json", *names], where, monkeypatch)
    assert code in (0, 1), err
    return json.loads(out)


def cli_error(tmp_path: Path, name: str, data: bytes, monkeypatch: pytest.MonkeyPatch) -> str:
    """The message `logsleuth diagnose` prints for ``data`` saved as ``name`` (given by its
    full path: the diagnosis may still hash the file after the error)."""
    path = tmp_path / name
    path.write_bytes(data)
    code, _, err = cli(["diagnose", "--format", "json", str(path)], tmp_path, monkeypatch)
    assert code == 2 and err.startswith("logsleuth: error: "), err
    return err.strip().removeprefix("logsleuth: error: ").replace(str(path), name)


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail"} and body["status"] == status
    return body


# ---- the CLI's report --------------------------------------------------------------

def test_raw_upload_gets_the_clis_json(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    r = client.post("/v1/diagnose", params={"name": CAFFE.name}, content=CAFFE.read_bytes())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == cli_report(SAMPLES, [CAFFE.name], monkeypatch)
    assert r.json()["verdict"]["code"] == "N201"
    DiagnosisReport.model_validate(r.json())  # the schema in /openapi.json holds for the report


def test_raw_upload_named_by_content_disposition(client: TestClient) -> None:
    r = client.post("/v1/diagnose", content=CAFFE.read_bytes(),
                    headers={"Content-Disposition": 'attachment; filename="job-42.log"'})
    assert r.json()["input"][0]["path"] == "job-42.log"
    unnamed = client.post("/v1/diagnose", content=CAFFE.read_bytes())
    assert unnamed.json()["input"][0]["path"] == "upload"


def test_multipart_one_file(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    r = client.post("/v1/diagnose", files=[("file", (HF.name, HF.read_bytes()))])
    assert r.status_code == 200
    assert r.json() == cli_report(SAMPLES, [HF.name], monkeypatch)


def test_multipart_two_files_are_attempts_like_two_paths(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [("file", (CAFFE.name, CAFFE.read_bytes())), ("file", (HF.name, HF.read_bytes()))]
    r = client.post("/v1/diagnose", files=files)
    assert r.status_code == 200
    report = r.json()
    assert report == cli_report(SAMPLES, [CAFFE.name, HF.name], monkeypatch)
    assert [i["path"] for i in report["input"]] == [CAFFE.name, HF.name] and report["attempts"] >= 2


def test_a_client_path_is_a_label_only(client: TestClient, tmp_path: Path) -> None:
    secret = tmp_path / "secret.log"
    secret.write_text("step 1 loss nan\n")
    r = client.post("/v1/diagnose", files=[("file", (str(secret), CAFFE.read_bytes()))])
    report = r.json()
    assert report["input"][0]["path"] == str(secret)  # the name as given, as a label
    assert report["verdict"]["code"] == "N201" and report["input"][0]["size"] == CAFFE.stat().st_size


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_compressed_file_gets_the_clis_json_for_that_file(codec: str, client: TestClient, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = gzip.compress(CAFFE.read_bytes()) if codec == "gzip" else zstandard.ZstdCompressor().compress(
        CAFFE.read_bytes())
    name = f"{CAFFE.name}.{'gz' if codec == 'gzip' else 'zst'}"
    (tmp_path / name).write_bytes(data)
    r = client.post("/v1/diagnose", params={"name": name}, content=data)
    assert r.status_code == 200
    assert r.json() == cli_report(tmp_path, [name], monkeypatch)
    assert r.json()["input"][0]["compression"] == codec


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_content_encoding_is_undone_before_the_report(codec: str, client: TestClient,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    raw = CAFFE.read_bytes()
    body = gzip.compress(raw) if codec == "gzip" else zstandard.ZstdCompressor().compress(raw)
    r = client.post("/v1/diagnose", params={"name": CAFFE.name}, content=body, headers={"Content-Encoding": codec})
    assert r.status_code == 200
    assert r.json() == cli_report(SAMPLES, [CAFFE.name], monkeypatch)  # the plain file's report


# ---- caps --------------------------------------------------------------------------

def _capped(spool: Path, **caps: int) -> TestClient:
    return TestClient(create_app(Settings(workers=1, tmp_dir=str(spool), **caps)))


def test_413_when_the_upload_cap_is_passed(spool: Path) -> None:
    with _capped(spool, max_upload=4096) as c:
        declared = c.post("/v1/diagnose", content=CAFFE.read_bytes())
        body = assert_problem(declared, 413)
        assert "--max-upload" in body["detail"] and "4 KiB" in body["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            data = CAFFE.read_bytes()
            for i in range(0, len(data), 1000):
                yield data[i:i + 1000]

        assert_problem(c.post("/v1/diagnose", content=chunks()), 413)
        assert_problem(c.post("/v1/parse", files=[("file", ("a.log", CAFFE.read_bytes()))]), 413)


def test_413_when_the_logs_expand_past_the_decompressed_cap(spool: Path) -> None:
    bomb = gzip.compress(CAFFE.read_bytes() * 200)  # 2.8 MB of log in about 30 KB
    assert len(bomb) < 64 << 10
    with _capped(spool, max_decompressed=1 << 20) as c:
        for headers, body in (({}, bomb), ({"Content-Encoding": "gzip"}, gzip.compress(CAFFE.read_bytes() * 200)),
                              ({}, zstandard.ZstdCompressor().compress(CAFFE.read_bytes() * 200))):
            problem = assert_problem(c.post("/v1/diagnose", content=body, headers=headers), 413)
            assert "--max-decompressed" in problem["detail"] and "1 MiB" in problem["detail"]
        files = [("file", ("a.log.gz", gzip.compress(CAFFE.read_bytes() * 40))),
                 ("file", ("b.log.gz", gzip.compress(CAFFE.read_bytes() * 40)))]  # 0.57 MB each: 1.1 MB together
        assert_problem(c.post("/v1/diagnose", files=files), 413)
        assert c.post("/v1/diagnose", files=files[:1]).status_code == 200


# ---- the per-job time limit ----------------------------------------------------------

def test_the_job_timer_stops_a_job_in_its_worker() -> None:
    started = time.monotonic()
    with pytest.raises(JobTimeout):
        timed_job(0.2, time.sleep, 10)
    assert time.monotonic() - started < 5
    assert timed_job(5, sum, [1, 2]) == 3 and timed_job(0, sum, [1]) == 1  # the timer is off again


def test_a_job_past_the_limit_is_a_504_and_the_worker_takes_the_next(spool: Path) -> None:
    big = "".join(f"epoch 1 iter {i} loss {2.0 / (1 + i / 1000):.5f} lr 0.1\n" for i in range(600_000)).encode()
    with TestClient(create_app(Settings(workers=1, tmp_dir=str(spool), job_timeout=1.0))) as c:
        problem = assert_problem(c.post("/v1/diagnose", params={"name": "big.log"}, content=big), 504)
        assert "--job-timeout 1 s" in problem["detail"]
        r = c.post("/v1/diagnose", params={"name": CAFFE.name}, content=CAFFE.read_bytes())
        assert r.status_code == 200 and r.json()["verdict"]["code"] == "N201"
    assert list(spool.iterdir()) == []


# ---- malformed bodies --------------------------------------------------------------

def test_empty_body_is_a_problem_with_the_clis_message(client: TestClient, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    body = assert_problem(client.post("/v1/diagnose", params={"name": "empty.log"}, content=b""), 422)
    assert body["detail"] == cli_error(tmp_path, "empty.log", b"", monkeypatch)
    assert_problem(client.post("/v1/parse", content=b""), 422)


@pytest.mark.parametrize("data", [b"\x1f\x8b\x08\x00garbagegarbage" * 50,
                                  gzip.compress(CAFFE.read_bytes())[:300],
                                  gzip.compress(CAFFE.read_bytes())[:200] + b"\xff" * 64 + b"tail" * 100])
def test_undecodable_gzip_is_a_problem_with_the_clis_message(data: bytes, client: TestClient, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    body = assert_problem(client.post("/v1/diagnose", params={"name": "bad.log.gz"}, content=data), 422)
    assert body["detail"] == cli_error(tmp_path, "bad.log.gz", data, monkeypatch)


def test_garbage_binary_is_what_the_cli_says_of_it(client: TestClient, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    garbage = bytes(range(256)) * 64 + os.urandom(4096)
    (tmp_path / "blob.bin").write_bytes(garbage)
    body = assert_problem(client.post("/v1/diagnose", params={"name": "blob.bin"}, content=garbage), 422)
    assert body["detail"] == cli_error(tmp_path, "blob.bin", garbage, monkeypatch)
    assert "binary data, not a text log" in body["detail"]


def test_malformed_requests_are_problems(client: TestClient) -> None:
    log = CAFFE.read_bytes()
    assert_problem(client.post("/v1/diagnose", content=log[:500], headers={"Content-Encoding": "gzip"}), 400)
    assert_problem(client.post("/v1/diagnose", content=gzip.compress(log)[:-20],
                               headers={"Content-Encoding": "gzip"}), 400)  # truncated
    assert_problem(client.post("/v1/diagnose", content=log, headers={"Content-Encoding": "br"}), 415)
    cut = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.log"\r\n\r\n' + log[:2000]
    assert_problem(client.post("/v1/diagnose", content=cut,
                               headers={"Content-Type": "multipart/form-data; boundary=xyz"}), 400)
    assert_problem(client.post("/v1/diagnose", content=b"--xyz--\r\n",
                               headers={"Content-Type": "multipart/form-data; boundary=xyz"}), 400)
    assert_problem(client.post("/v1/diagnose", content=log, headers={"Content-Type": "multipart/form-data"}), 400)
    assert_problem(client.post("/v1/diagnose", params={"log_format": "nope"}, content=log), 422)
    assert_problem(client.post("/v1/parse", params={"format": "xml"}, content=log), 422)
    assert_problem(client.get("/v1/nothing"), 404)
    assert_problem(client.get("/v1/diagnose"), 405)


# ---- parse -------------------------------------------------------------------------

def test_parse_returns_the_clis_series(client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    code, _, err = cli(["parse", str(CAFFE), "-o", str(tmp_path / "cli.jsonl")], tmp_path, monkeypatch)
    assert code == 0, err
    r = client.post("/v1/parse", content=CAFFE.read_bytes())
    assert r.status_code == 200 and r.headers["content-type"] == "application/jsonl"
    assert r.content == (tmp_path / "cli.jsonl").read_bytes()
    for how in ({"params": {"format": "parquet"}}, {"headers": {"Accept": "application/vnd.apache.parquet"}}):
        p = client.post("/v1/parse", content=CAFFE.read_bytes(), **how)  # type: ignore[arg-type]
        assert p.status_code == 200 and p.content[:4] == b"PAR1"
        table = pq.read_table(io.BytesIO(p.content))
        assert table.num_rows == len(r.content.splitlines())
    csv = client.post("/v1/parse", content=CAFFE.read_bytes(), params={"format": "csv"})
    assert csv.text.splitlines()[0] == "step,metric,value,phase,segment,rank,epoch,line"


def test_parse_of_two_files_has_their_names_as_source(client: TestClient) -> None:
    files = [("file", ("one.log", CAFFE.read_bytes())), ("file", ("two.log", HF.read_bytes()))]
    r = client.post("/v1/parse", files=files)
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert {row["source"] for row in rows} == {"one.log", "two.log"}


# ---- the API document ---------------------------------------------------------------

def test_openapi_has_the_report_schema(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    report = schemas["DiagnosisReport"]
    assert {"schema_version", "verdict", "first_nonfinite", "causes", "evidence", "input", "features"} <= set(
        report["properties"])
    assert {"code", "confidence", "decided_by"} <= set(schemas["Verdict"]["properties"])
    post = doc["paths"]["/v1/diagnose"]["post"]
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/DiagnosisReport")
    assert PROBLEM in post["responses"]["413"]["content"] and "multipart/form-data" in post["requestBody"]["content"]
    assert client.get("/healthz").json()["status"] == "ok"


# ---- a real server: disconnects, concurrency, a full queue ---------------------------

@contextlib.contextmanager
def running(settings: Settings) -> Iterator[int]:
    """The app under uvicorn in a thread, on a free loopback port (yielded)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _start_upload(port: int, declared: int, sent: bytes) -> socket.socket:
    """A raw client that sends the headers of a ``declared``-byte upload and ``sent`` of it."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/diagnose?name=slow.log HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Length: %d\r\n\r\n" % declared + sent)
    return s


def _wait(condition, seconds: float = 10) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_client_gone_mid_upload_leaves_nothing_and_the_server_answers(spool: Path) -> None:
    with running(Settings(workers=1, tmp_dir=str(spool))) as port:
        s = _start_upload(port, 10 << 20, CAFFE.read_bytes() * 10)
        assert _wait(lambda: any(spool.rglob("slow.log")))  # the upload is being spooled
        s.close()
        assert _wait(lambda: not list(spool.iterdir())), list(spool.rglob("*"))
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["status"] == "ok" and health["in_progress"] == 0
        r = httpx.post(f"http://127.0.0.1:{port}/v1/diagnose", content=CAFFE.read_bytes(), timeout=60)
        assert r.status_code == 200 and r.json()["verdict"]["code"] == "N201"


def test_413_while_the_body_streams(spool: Path) -> None:
    """A chunked upload is stopped as soon as it passes the cap, not after it."""
    cap = 256 << 10
    with running(Settings(workers=1, tmp_dir=str(spool), max_upload=cap)) as port:
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v1/diagnose HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk, sent, answer = CAFFE.read_bytes()[:8192], 0, b""
        with contextlib.suppress(OSError):  # the server may close on us once it has answered
            while sent < 100 * cap and not answer:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                if select.select([s], [], [], 0.005)[0]:
                    answer = s.recv(65536)
        answer = answer or s.recv(65536)
        s.close()
        assert answer.startswith(b"HTTP/1.1 413") and b"application/problem+json" in answer
        assert sent < 8 * cap, f"sent {sent} bytes before the 413"


def test_concurrent_requests_each_get_their_own_report(spool: Path) -> None:
    logs = [CAFFE, HF] * 4
    with running(Settings(workers=2, queue=8, tmp_dir=str(spool))) as port:
        url = f"http://127.0.0.1:{port}/v1/diagnose"

        def post(path: Path) -> dict:
            r = httpx.post(url, params={"name": path.name}, content=path.read_bytes(), timeout=120)
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(len(logs)) as threads:
            reports = list(threads.map(post, logs))
        alone = post(CAFFE), post(HF)
    assert reports == [alone[0], alone[1]] * 4


def test_503_with_retry_after_when_the_queue_is_full(spool: Path) -> None:
    with running(Settings(workers=1, queue=0, tmp_dir=str(spool), upload_timeout=2)) as port:
        url = f"http://127.0.0.1:{port}/v1/diagnose"
        holder = _start_upload(port, 1 << 20, b"step 1 loss 1.0\n")  # holds the only place
        assert _wait(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").json()["in_progress"] == 1)
        busy = httpx.post(url, content=CAFFE.read_bytes())
        body = assert_problem(busy, 503)
        assert int(busy.headers["Retry-After"]) >= 1 and "--queue 0" in body["detail"]
        holder.settimeout(10)
        stalled = holder.recv(65536)  # it sent nothing more for upload_timeout seconds: 408
        holder.close()
        assert stalled.startswith(b"HTTP/1.1 408")
        assert _wait(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").json()["in_progress"] == 0)
        assert httpx.post(url, content=CAFFE.read_bytes(), timeout=60).status_code == 200


def test_serve_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "logsleuth: error: logsleuth serve needs the service extra: " \
                                    "pip install 'logsleuth[service]'"
