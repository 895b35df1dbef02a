"""The forensic HTTP service behind ``logsleuth serve`` (the ``[service]`` extra).

Why a service: a platform team posts every failed job's log to one address and files the
verdict, without installing logsleuth on every node. The answers are the CLI's own:
``POST /v1/diagnose`` returns ``logsleuth diagnose --format json``'s report (through
:func:`logsleuth.api.diagnose` and :func:`logsleuth.report.to_dict`), ``POST /v1/parse``
the series as ``logsleuth parse`` writes it (through :func:`logsleuth.output.open_writer`).

How an upload travels (:mod:`logsleuth.uploads`): streamed to a private temporary
directory, a cap met the moment it is passed (413), not after the upload; compressed
bodies and files counted as they expand. The job then runs in a process pool
(``--workers``), off the event loop; at most ``workers + queue`` requests are admitted
at once (uploads included), the next get 503 with ``Retry-After``; a job that runs past
``--job-timeout`` is stopped in its worker and answered 504; the directory is removed
whatever happens (a client gone mid-upload too).

Errors are ``application/problem+json`` (RFC 9457: type, title, status, detail), with the
CLI's one-line message for a log it cannot read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from . import __version__
from .errors import LogsleuthError
from .types import DIAGNOSIS_SCHEMA_VERSION, Evidence, InputInfo, NonFinite, RankedCause, Verdict
from .uploads import PROBLEM, GiB, Problem, UploadedFile, receive

KINDS = {"jsonl": "application/jsonl", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
_ACCEPTED = {**{v: k for k, v in KINDS.items()}, "application/x-ndjson": "jsonl", "application/x-parquet": "parquet"}
log = logging.getLogger("logsleuth.serve")


@dataclass(frozen=True)
class Settings:
    """``logsleuth serve``'s options: caps in bytes, ``upload_timeout`` in seconds of
    silence, ``job_timeout`` in seconds of work per request."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_upload: int = GiB
    max_decompressed: int = 8 * GiB
    workers: int = 2
    queue: int = 8
    tmp_dir: str | None = None
    upload_timeout: float = 60.0
    formats_file: str | None = None
    job_timeout: float = 300.0  #: seconds a job may run in its worker (0: no limit)


# ---- the jobs (in the worker processes) ------------------------------------------------

def relabel(value: Any, labels: dict[str, str]) -> Any:
    """``value`` with every temporary path replaced by the client's name for that file."""
    if isinstance(value, str):
        for path, label in labels.items():
            value = value.replace(path, label)
        return value
    if isinstance(value, dict):
        return {k: relabel(v, labels) for k, v in value.items()}
    if isinstance(value, list):
        return [relabel(v, labels) for v in value]
    return value


def _warm(formats_file: str | None) -> None:
    """A worker's start: the user's formats, and one tiny diagnosis (imports, catalog, model)."""
    import io

    from .api import diagnose

    if formats_file:
        from .userformat import load_format_file

        load_format_file(formats_file)
    diagnose(io.BytesIO(b"".join(b"step %d loss %.3f\n" % (i, 2 / i) for i in range(1, 40))))


def diagnose_job(labels: dict[str, str], log_format: str | None) -> str:
    """``logsleuth diagnose --format json`` on the files (paths to labels, in order)."""
    from .api import diagnose
    from .report import to_dict

    report = to_dict(diagnose(list(labels), log_format))
    return json.dumps(relabel(report, labels), indent=2, allow_nan=False)


def parse_job(labels: dict[str, str], log_format: str | None, kind: str, out: str) -> list[str]:
    """``logsleuth parse`` of the files into ``out`` (a source column when several); its warnings."""
    from .api import start_parse
    from .output import open_writer

    warnings: list[str] = []
    with open_writer(out, kind, with_source=len(labels) > 1) as writer:
        for path, label in labels.items():
            job = start_parse(path, log_format)
            for frame in job.frames():
                writer.write(frame, source=label)  # type: ignore[attr-defined]
            warnings += job.warnings(label)
    return warnings


class JobTimeout(Exception):
    """A job ran past the per-job limit in its worker (raised there by the interval timer)."""


def timed_job(seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in this worker under an interval timer of ``seconds`` (0: none): when it
    fires, :class:`JobTimeout` stops the job at its next Python step, and the worker lives
    on for the next job. Worker processes run jobs in their main thread, where signals land."""
    if seconds <= 0:
        return fn(*args)

    def expire(signum: int, frame: Any) -> None:
        raise JobTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


#: how long past its limit a job may take to stop before its worker is killed
STOP_GRACE_S = 30.0


class Pool:
    """The worker processes, and the admission of at most ``workers + queue`` requests at
    once (an upload holds its place: the disk a queue can fill is bounded too)."""

    def __init__(self, settings: Settings) -> None:
        self.settings, self.active, self.mean_s = settings, 0, 1.0
        self._executor: cf.ProcessPoolExecutor | None = None

    @property
    def capacity(self) -> int:
        return self.settings.workers + self.settings.queue

    def start(self, warm: bool = False) -> None:
        """Start the pool (spawned: a fork of a running event loop is no clean start); with
        ``warm``, every worker now rather than at its first job."""
        if self._executor is None:
            self._executor = cf.ProcessPoolExecutor(self.settings.workers, multiprocessing.get_context("spawn"),
                                                    initializer=_warm, initargs=(self.settings.formats_file,))
        if warm:
            for _ in range(self.settings.workers):
                self._executor.submit(time.sleep, 0.5)  # busy ones make the pool spawn the next

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.active >= self.capacity:
            s = self.settings
            raise Problem(503, "busy", "Service busy", f"{self.active} requests in progress, the most this server "
                          f"takes (--workers {s.workers} + --queue {s.queue}); retry after the Retry-After seconds",
                          {"Retry-After": str(self.retry_after())})
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the recent job time per worker, times the queue."""
        waiting = max(self.active - self.settings.workers, 0) + 1
        return max(1, min(60, math.ceil(self.mean_s * waiting / self.settings.workers)))

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        self.start()
        started = time.monotonic()
        limit = self.settings.job_timeout
        future = self._executor.submit(timed_job, limit, fn, *args)  # type: ignore[union-attr]
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), limit + STOP_GRACE_S if limit > 0 else None)
        except cf.process.BrokenProcessPool:
            self._executor = None  # the next job starts a fresh pool
            raise Problem(500, "worker-died", "Worker died", "a worker process died during the job "
                          "(out of memory?); the workers were restarted") from None
        except (TimeoutError, JobTimeout):
            if not future.done():  # stuck where the timer cannot reach: the workers are restarted
                self._kill_workers()
            raise Problem(504, "job-timeout", "Job took too long", f"the job ran past the per-job limit "
                          f"(--job-timeout {limit:g} s) and was stopped; a larger limit, or `logsleuth "
                          f"diagnose` on the log itself, takes longer logs") from None
        self.mean_s = 0.8 * self.mean_s + 0.2 * (time.monotonic() - started)
        return result

    def _kill_workers(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
            executor.shutdown(wait=False, cancel_futures=True)


async def _job(pool: Pool, files: list[UploadedFile], fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(labels, *args)`` in the pool; the reader's one-line message as a 422."""
    labels = {f.path: f.label for f in files}
    broken = next((f.broken for f in files if f.broken), None)
    try:
        result = await pool.run(fn, labels, *args)
    except LogsleuthError as exc:
        raise Problem(422, "unreadable-log", "Log cannot be read", relabel(str(exc), labels)) from None
    except Problem:
        raise
    except Exception as exc:  # a bug: say it is ours, as the CLI does
        log.exception("job failed")
        raise Problem(500, "internal-error", "Internal error", relabel(
            f"internal error ({type(exc).__name__}: {exc}); report it", labels)) from None
    if broken:  # the reader took what did not decompress: still no log
        raise broken
    return result


@contextlib.contextmanager
def _workspace(settings: Settings) -> Iterator[str]:
    """A private directory for one request's files, removed whatever happens."""
    root = tempfile.mkdtemp(prefix="logsleuth-serve-", dir=settings.tmp_dir)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- the HTTP surface ------------------------------------------------------------------

class DiagnosisReport(BaseModel):
    """The report of ``logsleuth diagnose --format json``: non-finite numbers are the
    strings ``"nan"``, ``"inf"``, ``"-inf"``; ``schema_version`` bumps on incompatible changes."""

    model_config = ConfigDict(extra="forbid")
    schema_version: int = Field(description=f"the report's schema version ({DIAGNOSIS_SCHEMA_VERSION})")
    verdict: Verdict
    first_nonfinite: NonFinite | None
    attempts: int = Field(description="attempts seen: restarts in a log, and the files uploaded")
    causes: list[RankedCause]
    evidence: list[Evidence]
    bad_sample: dict[str, Any] | None
    next_steps: list[str]
    input: list[InputInfo] = Field(description="each file; ``path`` is the uploaded file's name")
    warnings: list[str]
    features: dict[str, float | str]


class SeriesRow(BaseModel):
    """One line of ``POST /v1/parse``'s JSON lines (``source`` only when several files)."""

    step: int | None
    metric: str
    value: float | str | None
    phase: str
    segment: int
    rank: int | None
    epoch: float | None
    line: int
    source: str | None = None


class ProblemDetails(BaseModel):
    """An error (RFC 9457), sent as ``application/problem+json``."""

    type: str
    title: str
    status: int
    detail: str


_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemDetails, "description": why} for code, why in (
        (400, "bad multipart body or Content-Encoding"), (408, "upload stalled"), (413, "a cap was passed"),
        (415, "unsupported Content-Encoding"), (422, "the log cannot be read (the CLI's message)"),
        (503, "busy: retry after Retry-After seconds"))}
_UPLOAD = {"requestBody": {"required": True, "description": (
    "The log as the raw body (plain, gzip, zstd, bz2, xz; or a gzip/zstd Content-Encoding), or a "
    "multipart/form-data body of one or several files (attempts of one job, in order)."), "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}
_LOG_FORMAT = Query(None, description="force the log format (see `logsleuth formats`)")
_NAME = Query(None, description="the raw body's file name (the report's input path); default "
              "Content-Disposition's filename, else 'upload'")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service as an ASGI app (``logsleuth serve`` runs it with uvicorn)."""
    settings = settings or Settings()
    pool = Pool(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.close()

    app = FastAPI(title="logsleuth", version=__version__, lifespan=lifespan,
                  description="Forensics for deep-learning training logs: upload a log, get the verdict.")
    app.state.pool, app.state.settings = pool, settings
    _errors(app)
    _routes(app, settings, pool)
    _problems_in_openapi(app)
    return app


def _problems_in_openapi(app: FastAPI) -> None:
    """Declare the error responses as ``application/problem+json`` (FastAPI says JSON)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for item in build()["paths"].values():
                for operation in item.values():
                    for code, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if code[0] in "45" and "application/json" in content:
                            response["content"] = {PROBLEM: content.pop("application/json")}
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _errors(app: FastAPI) -> None:
    async def problem(request: Request, exc: Exception) -> Response:
        return exc.response()  # type: ignore[attr-defined]

    async def http(request: Request, exc: Exception) -> Response:
        e: HTTPException = exc  # type: ignore[assignment]
        from http import HTTPStatus

        return Problem(e.status_code, "http", HTTPStatus(e.status_code).phrase, str(e.detail)).response()

    async def invalid(request: Request, exc: Exception) -> Response:
        found = exc.errors()  # type: ignore[attr-defined]
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in found)
        return Problem(422, "invalid-request", "Invalid request", errors).response()

    async def gone(request: Request, exc: Exception) -> Response:
        return Response(status_code=400)  # nobody is left to read it; the workspace is already gone

    async def bug(request: Request, exc: Exception) -> Response:  # logged by Starlette after this
        return Problem(500, "internal-error", "Internal error",
                       f"internal error ({type(exc).__name__}); see the server's log").response()

    app.add_exception_handler(Problem, problem)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(ClientDisconnect, gone)
    app.add_exception_handler(Exception, bug)


def _routes(app: FastAPI, settings: Settings, pool: Pool) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness, and how full the server is."""
        return {"status": "ok", "version": __version__, "in_progress": pool.active, "capacity": pool.capacity,
                "workers": settings.workers}

    @app.post("/v1/diagnose", response_class=Response, openapi_extra=_UPLOAD,
              responses={200: {"model": DiagnosisReport, "description": "the CLI's JSON report"}, **_PROBLEMS})
    async def diagnose(request: Request, log_format: str | None = _LOG_FORMAT, name: str | None = _NAME) -> Response:
        """Diagnose a run: ``logsleuth diagnose --format json`` on the uploaded file(s)."""
        async with pool.slot():
            with _workspace(settings) as root:
                files = await receive(request, settings, root, name)
                text = await _job(pool, files, diagnose_job, log_format)
        return Response(text, media_type="application/json")

    @app.post("/v1/parse", response_class=Response, openapi_extra=_UPLOAD, responses={200: {
        "description": "the series (JSON lines of SeriesRow by default)", "content": {
            "application/jsonl": {"schema": SeriesRow.model_json_schema()}, "text/csv": {},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}}}, **_PROBLEMS})
    async def parse(request: Request, log_format: str | None = _LOG_FORMAT, name: str | None = _NAME,
                    format: str | None = Query(None, pattern="^(jsonl|csv|parquet)$", description=(
                        "jsonl (default), csv or parquet; else from the Accept header"))) -> Response:
        """The series of the uploaded file(s), as ``logsleuth parse`` writes it."""
        kind = format or _accepted(request.headers.get("accept", ""))
        async with pool.slot():
            with _workspace(settings) as root:
                files = await receive(request, settings, root, name)
                out = os.path.join(root, f"series.{kind}")
                warnings = await _job(pool, files, parse_job, log_format, kind, out)
                stream = open(out, "rb")  # removed with the workspace; read through this handle
        return _file_response(stream, kind, warnings)


def _accepted(accept: str) -> str:
    """The first output kind the Accept header names (q-values aside); JSON lines otherwise."""
    for part in accept.split(","):
        kind = _ACCEPTED.get(part.split(";")[0].strip().lower())
        if kind:
            return kind
    return "jsonl"


def _file_response(stream: Any, kind: str, warnings: list[str]) -> StreamingResponse:
    def blocks() -> Iterator[bytes]:
        with stream:
            while block := stream.read(1 << 20):
                yield block

    headers = {"Content-Length": str(os.fstat(stream.fileno()).st_size),
               "Content-Disposition": f'attachment; filename="series.{kind}"'}
    response = StreamingResponse(blocks(), media_type=KINDS[kind], headers=headers)
    for warning in warnings[:20]:  # as the CLI's stderr: unparsed lines, input bounds cut
        response.headers.append("Logsleuth-Warning", json.dumps(warning)[1:-1])
    return response


def serve(settings: Settings) -> None:
    """Run the service until interrupted (uvicorn; its log on stderr)."""
    import uvicorn

    app = create_app(settings)
    app.state.pool.start(warm=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", timeout_graceful_shutdown=10)
