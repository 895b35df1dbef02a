"""Command line: argument parsing and rendering only; the work happens in :mod:`logsleuth.api`.

Exit codes: 0 success / no failure, 1 failure diagnosed, 2 usage or input error.
A :class:`~logsleuth.errors.LogsleuthError` is one line on stderr (traceback with ``-v``).
"""

from __future__ import annotations

import functools
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from . import __version__
from .allocator import return_freed_memory
from .errors import LogsleuthError
from .output import OUTPUT_KINDS, check_free, open_writer, output_kind

EXIT_INPUT = 2


def _fail(message: str) -> None:
    click.echo(f"logsleuth: error: {message}", err=True)
    sys.exit(EXIT_INPUT)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs (a partial output removed)."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors (and, outside -v, any crash) into one line and exit code 2; an
    interrupt into "interrupted" and 130 (SIGINT) or 143 (SIGTERM), after the cleanup that
    leaves no partial output behind."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = click.get_current_context().find_root().params.get("verbose", False)
        previous = signal.signal(signal.SIGTERM, _terminate) if _in_main_thread() else None
        try:
            return func(*args, **kwargs)
        except LogsleuthError as exc:
            if verbose:
                traceback.print_exc()
            _fail(str(exc))
        except BrokenPipeError:
            sys.exit(EXIT_INPUT)
        except (KeyboardInterrupt, Terminated) as exc:
            click.echo("logsleuth: interrupted", err=True)
            sys.exit(130 if isinstance(exc, KeyboardInterrupt) else 143)
        except Exception as exc:  # a bug: still one line unless -v, but say it is ours
            if verbose:
                traceback.print_exc()
            _fail(f"internal error ({type(exc).__name__}: {exc}); rerun with -v and report it")
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="logsleuth")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks for errors.")
@click.option("--formats-file", type=click.Path(dir_okay=False), envvar="LOGSLEUTH_FORMATS",
              help="A TOML file of your own log formats (also $LOGSLEUTH_FORMATS).")
def main(verbose: bool, formats_file: str | None) -> None:
    """logsleuth: forensic analysis of deep-learning training logs."""
    return_freed_memory()
    if formats_file:
        from .userformat import load_format_file

        try:
            load_format_file(formats_file)
        except LogsleuthError as exc:
            _fail(str(exc))


class _Progress:
    """A progress line on stderr for long parses, only when stderr is a terminal."""

    def __init__(self, total: int | None, label: str) -> None:
        self.enabled = sys.stderr.isatty() and (total or 0) > 64 << 20
        self.total, self.done, self.label = total or 0, 0, label

    def __call__(self, n: int) -> None:
        self.done += n
        if self.enabled:
            pct = 100 * self.done / self.total if self.total else 0
            click.echo(f"\r{self.label}: {self.done >> 20} MiB ({pct:.0f}%)", err=True, nl=False)

    def close(self) -> None:
        if self.enabled:
            click.echo("", err=True)


@main.command()
@click.argument("logs", nargs=-1, required=True)
@click.option("--log-format", "--format", "format_name", metavar="NAME",
              help="Force the log format (see `logsleuth formats`); --format is the old spelling.")
@click.option("-o", "--output", metavar="FILE", help="Write here (.csv, .jsonl, .parquet); default csv to stdout.")
@click.option("--to", "kind", type=click.Choice(OUTPUT_KINDS), help="Output kind, when FILE's suffix does not say.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), help="Threads scanning a large log "
              "(default: the CPU count, at most 4).")
@friendly
def parse(logs: tuple[str, ...], format_name: str | None, output: str | None, kind: str | None,
          force: bool, jobs: int | None) -> None:
    """Parse LOG... (paths, or - for stdin) into the normalised series.

    Columns: step, metric, value, phase, segment, rank, epoch, line, plus source when
    several logs are given. Non-finite values are written nan, inf, -inf.
    """
    from .api import start_parse

    check_free(output, force)
    kind = kind or output_kind(output)
    first = start_parse(logs[0], format_name)  # the input opens before any output exists
    with open_writer(output, kind, with_source=len(logs) > 1) as writer:
        for i, path in enumerate(logs):
            job = first if i == 0 else start_parse(path, format_name)
            progress = _Progress(job.log.size, path)
            for frame in job.frames(progress, jobs):
                writer.write(frame, source=path)
            progress.close()
            for warning in job.warnings(path):
                click.echo(f"logsleuth: {warning}", err=True)


@main.command()
@click.argument("logs", nargs=-1, required=True)
@click.option("--format", "output", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="Report format.")
@click.option("--oneline", is_flag=True, help="One line of at most 200 characters (schedulers, chat).")
@click.option("--log-format", metavar="NAME", help="Force the log format (see `logsleuth formats`).")
@click.option("--report", metavar="FILE", help="Also write the JSON report to FILE (never overwrites without --force).")
@click.option("--html", metavar="FILE", help="Also write a self-contained HTML report with the curves to FILE.")
@click.option("--plot", metavar="FILE", help="Also draw the curves to a PNG FILE (the [plot] extra: matplotlib).")
@click.option("--force", is_flag=True, help="Overwrite an existing --report / --html / --plot file.")
@friendly
def diagnose(logs: tuple[str, ...], output: str, oneline: bool, log_format: str | None, report: str | None,
             html: str | None, plot: str | None, force: bool) -> None:
    """Diagnose a training run from LOG... (several logs = attempts of the same job).

    Exit code 0: no failure (healthy, benign, inconclusive); 1: failure diagnosed;
    2: usage or input error (the verdict is printed before an output file fails).
    """
    from .api import diagnose as run_diagnosis
    from .output import write_text_file
    from .report import RENDERERS, to_json
    from .report import oneline as one_line

    if plot:
        from .plot import require_matplotlib

        require_matplotlib()
    bars: list[_Progress] = []

    def progress(path: str, size: int | None) -> _Progress:
        bars.append(_Progress(size, path))
        return bars[-1]

    result = run_diagnosis(list(logs), log_format, progress)
    for bar in bars:
        bar.close()
    click.echo(one_line(result) if oneline else RENDERERS[output](result).rstrip("\n"))  # before any file:
    for path in (report, html, plot):  # a taken name or a full disk still leaves the verdict printed
        check_free(path, force)
    if report:
        write_text_file(report, to_json(result), force)
    runs = _chart_series(logs, log_format) if html or plot else []
    if html:
        from .html import diagnosis_page

        write_text_file(html, diagnosis_page(result, runs), force)
    if plot:
        from .plot import diagnosis_png

        write_text_file(plot, diagnosis_png(result, runs), force)
    sys.exit(1 if result.failed else 0)


def _chart_series(logs: tuple[str, ...], log_format: str | None) -> list[Any]:
    """The series to draw: each log read again as diagnosis reads it (a bounded sample of a
    long log, the failure's surroundings in full), since a Diagnosis carries no series."""
    from .api import read_run

    runs = []
    for path in logs:
        if path == "-":  # stdin was consumed by the diagnosis: no curves to draw
            continue
        runs.append(read_run(path, log_format))
    return runs


@main.command()
@click.argument("log")
@click.option("--interval", type=click.FloatRange(0.01, 3600), default=1.0, show_default=True,
              help="Seconds between polls.")
@click.option("--idle", type=click.FloatRange(0.01), metavar="SECONDS",
              help="End when the log has not grown for this long.")
@click.option("--pid", type=click.IntRange(1), help="End when this process (the writer) is gone.")
@click.option("--wait", type=click.FloatRange(0), default=0, show_default=True, metavar="SECONDS",
              help="Wait this long for LOG to appear.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Lines of text, or JSON lines of events.")
@click.option("--on-alert", metavar="CMD", help="Run CMD at each warning, failure and the end, "
              "with LOGSLEUTH_EVENT/CODE/STEP/LINE/MESSAGE/LOG in its environment (no shell).")
@click.option("--log-format", metavar="NAME", help="Force the log format (see `logsleuth formats`).")
@friendly
def watch(log: str, interval: float, idle: float | None, pid: int | None, wait: float, output: str,
          on_alert: str | None, log_format: str | None) -> None:
    """Follow LOG while it is written (survives rotation and truncation): warn before the
    nan, report it when it comes, print diagnose's verdict when the log ends.

    Exit codes as diagnose: 0 no failure, 1 failure diagnosed, 2 usage or input error.
    """
    from .watch import Options
    from .watch import watch as follow
    from .watch_output import hook_argv, printer

    emit = printer(log, output == "json", hook_argv(on_alert), lambda line: click.echo(line))
    result = follow(Options(log, interval, idle, pid, wait, log_format), emit)
    sys.exit(1 if result.failed else 0)


@main.command()
def signatures() -> None:
    """List the failure signatures logsleuth recognises."""
    from .catalog import load_catalog

    for sig in load_catalog().signatures.values():
        click.echo(f"{sig.code}  {sig.slug:32s} {sig.summary}")


@main.command(name="explain")
@click.argument("code")
@friendly
def explain_code(code: str) -> None:
    """Document a signature (e.g. N202) or a cause (e.g. C01)."""
    from .catalog import load_catalog

    click.echo(load_catalog().render_doc(code.upper()).rstrip("\n"))


@main.command()
@click.option("--samples/--no-samples", default=True, help="Show a sample line of each format.")
def formats(samples: bool) -> None:
    """List the log formats logsleuth reads, each with a sample line."""
    from .registry import all_formats

    for fmt in all_formats():
        click.echo(f"{fmt.name:18s} {fmt.title}")
        if samples and fmt.samples:
            click.echo(f"{'':18s}   e.g. {fmt.samples[0][:110]}")


class _Size(click.ParamType):
    """A byte count: ``1073741824``, ``512M``, ``1G``, ``64KiB`` (binary units)."""

    name = "SIZE"
    _UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
        unit = text[-1:] if text[-1:] in self._UNITS else ""
        try:
            number = float(text[: len(text) - len(unit)])
        except ValueError:
            self.fail(f"{value!r} is no size (e.g. 1048576, 512M, 1G)", param, ctx)
        if number < 1:
            self.fail(f"{value!r}: a size is at least 1 byte", param, ctx)
        return int(number * self._UNITS[unit])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback: the service has no authentication; expose it through a proxy).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="TCP port.")
@click.option("--max-upload", type=_Size(), default="1G", show_default=True,
              help="Largest request body; 413 the moment it is passed.")
@click.option("--max-decompressed", type=_Size(), default="8G", show_default=True,
              help="Most the uploaded logs may expand to (gzip, zstd, ...); 413 the moment it is passed.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Worker processes parsing and diagnosing.")
@click.option("--queue", type=click.IntRange(0, 4096), default=8, show_default=True,
              help="Requests taken beyond the workers (uploading or waiting); 503 with Retry-After beyond.")
@click.option("--tmp-dir", type=click.Path(file_okay=False, exists=True), help="Where uploads are spooled "
              "(default $TMPDIR); each request's files are removed when it ends.")
@click.option("--upload-timeout", type=click.FloatRange(1), default=60, show_default=True,
              help="Seconds an upload may send nothing before it gets 408.")
@click.option("--job-timeout", type=click.FloatRange(0), default=300, show_default=True,
              help="Seconds a job may run in its worker before it is stopped and answered 504 (0: no limit).")
def serve(host: str, port: int, max_upload: int, max_decompressed: int, workers: int, queue: int,
          tmp_dir: str | None, upload_timeout: float, job_timeout: float) -> None:
    """Run the forensic HTTP service (needs the [service] extra).

    \b
    POST /v1/diagnose  a log (raw body, or multipart files = attempts of one job;
                       gzip/zstd as Content-Encoding or as the file) -> the JSON of
                       `logsleuth diagnose --format json`
    POST /v1/parse     the same upload -> the series as JSON lines (?format=csv,
                       ?format=parquet, or by Accept)
    GET  /healthz      liveness; GET /openapi.json: the API with the report schema
    Errors are application/problem+json. Example:
      curl --data-binary @train.log 'http://127.0.0.1:8080/v1/diagnose?name=train.log'
    """
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        _fail("logsleuth serve needs the service extra: pip install 'logsleuth[service]'")
    from .service import Settings
    from .service import serve as run_service

    formats_file = click.get_current_context().find_root().params.get("formats_file")
    run_service(Settings(host, port, max_upload, max_decompressed, workers, queue, tmp_dir, upload_timeout,
                         formats_file, job_timeout))


class _HookCommand(click.Command):
    """A command run by schedulers: even a usage error is one line and exit code 0."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            click.echo(f"logsleuth {ctx.info_name}: error: {exc.format_message()}", err=True)
            ctx.exit(0)


@main.command(cls=_HookCommand)
@click.option("--log", "logs", multiple=True, metavar="PATH", help="The job's log (repeat: attempts, oldest "
              "first); default: found from $SLURM_JOB_ID with scontrol.")
@click.option("--job", metavar="ID", help="The Slurm job (e.g. the failed one, in an afternotok job); "
              "default $SLURM_JOB_ID.")
@click.option("--report-dir", metavar="DIR", help="Write the JSON report here, not beside the log.")
@click.option("--append-to-log", is_flag=True, help="Append the verdict line to the log.")
@click.option("--ledger", metavar="PATH", help="Append one JSON line per post-mortem here (fleet-wide).")
@click.option("--termination-log", is_flag=False, flag_value="/dev/termination-log", metavar="[PATH]",
              help="Write the verdict (<= 4 KiB) to PATH, default /dev/termination-log (Kubernetes).")
@click.option("--timeout", type=click.FloatRange(0.1, 86400), default=60, show_default=True,
              help="Seconds for the whole post-mortem.")
@click.option("--max-memory", type=click.IntRange(256), default=4096, show_default=True,
              help="MiB of address space for the diagnosis.")
@click.option("--max-attempts", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Diagnose at most this many attempts (the latest tasks of an array).")
@click.option("--failed-exit", type=click.IntRange(0, 125), default=0, show_default=True,
              help="Exit with this code when a failure is diagnosed (container wrappers); else always 0.")
def postmortem(logs: tuple[str, ...], job: str | None, report_dir: str | None, append_to_log: bool,
               ledger: str | None, termination_log: str | None, timeout: float, max_memory: int,
               max_attempts: int, failed_exit: int) -> None:
    """Diagnose a finished job from a scheduler hook (Slurm epilog, afternotok job,
    trap, Kubernetes): report beside the log, one-line verdict, exit code 0 even on
    its own errors (see docs/postmortem.md)."""
    from .postmortem import Options, run

    sys.exit(run(Options(logs, job, report_dir, append_to_log, ledger, termination_log, timeout,
                         max_memory, max_attempts, failed_exit)))


def _add_feature_commands() -> None:
    """Commands living in their own packages (replay, audit); their heavy dependencies
    (torch, dask) are imported only when the command runs."""
    from importlib import import_module

    for module, name in (("logsleuth.replay.cli", "replay"), ("logsleuth.audit.cli", "audit")):
        try:
            main.add_command(getattr(import_module(module), name))
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise


_add_feature_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
