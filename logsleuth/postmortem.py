"""``logsleuth postmortem``: diagnose a finished job from a scheduler hook.

Run from a Slurm epilog, a ``--dependency=afternotok`` job, a batch script's ``trap``, or
a Kubernetes container's wrapper: it finds the job's log(s) (:mod:`logsleuth.slurm`, or
``--log``), diagnoses them with :func:`logsleuth.api.diagnose` (the same verdict as
``logsleuth diagnose``), writes the JSON report beside the log, prints the one-line
verdict and, on request, appends it to the log, to a fleet-wide JSON-lines ledger and to
the container's termination log.

A hook must never fail: a failing epilog drains the node. So every error of its own is
one line on stderr plus a ledger entry, and the exit code is 0. The diagnosis runs in a
child process under a deadline (``--timeout``) and an address-space limit
(``--max-memory``): a log on a hung file system, a FIFO, or a pathological file costs
at most that, and the parent still says "timed out". Nothing is overwritten but its own
report, which is replaced atomically (temp file + rename: a symlink planted at the
report's name is replaced, never followed).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import stat
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import __version__
from .errors import InputError, LogsleuthError
from .sidecar import append_line, append_to_ledger, write_report, write_termination_log

REPORT_SUFFIX = ".logsleuth.json"
_SCONTROL_SHARE = 0.25  # of --timeout, at most 10 s: the rest is for the diagnosis


@dataclass(frozen=True)
class Options:
    """What the command line asked for (see ``logsleuth postmortem --help``)."""

    logs: tuple[str, ...] = ()
    job: str | None = None
    report_dir: str | None = None
    append_to_log: bool = False
    ledger: str | None = None
    termination_log: str | None = None
    timeout: float = 60.0
    max_memory_mb: int = 4096
    max_attempts: int = 8
    failed_exit: int = 0
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass
class Outcome:
    """How the post-mortem ended: ``diagnosed``, ``timeout`` or ``error``."""

    status: str
    line: str
    job: str | None = None
    logs: tuple[str, ...] = ()
    report: str | None = None
    verdict: dict[str, Any] | None = None
    failed: bool = False
    error: str | None = None


def run(opts: Options) -> int:
    """Do the post-mortem; the exit code is 0 whatever happens (``failed_exit`` when a
    failure is diagnosed and the caller asked for one)."""
    start = time.monotonic()
    deadline = start + opts.timeout
    try:
        outcome = _post_mortem(opts, deadline)
    except Exception as exc:  # noqa: BLE001 - a hook must not fail, whatever broke
        outcome = Outcome("error", "", job=opts.job or opts.env.get("SLURM_JOB_ID"), error=_message(exc))
    _finish(opts, outcome, time.monotonic() - start)
    return opts.failed_exit if outcome.failed and opts.failed_exit else 0


def _message(exc: BaseException) -> str:
    if isinstance(exc, (LogsleuthError, OSError)):
        return str(exc)
    return f"internal error ({type(exc).__name__}: {exc})"


def _post_mortem(opts: Options, deadline: float) -> Outcome:
    """Locate, diagnose, write the report; the outputs that report the outcome come after."""
    logs, alternates, label = _locate(opts, deadline)
    result = _diagnose_with_deadline(logs, alternates, deadline, opts.max_memory_mb)
    outcome = Outcome(result["status"], "", job=label, logs=tuple(result.get("logs", logs)))
    if result["status"] == "timeout":
        outcome.line = f"timed out after {opts.timeout:g} s {result['where']}; no verdict"
        return outcome
    if result["status"] == "error":
        outcome.error = result["error"]
        return outcome
    report = json.loads(result["json"])
    outcome.line, outcome.failed = result["oneline"], result["failed"]
    outcome.verdict = {k: report["verdict"][k] for k in ("code", "slug", "confidence")}
    try:
        outcome.report = _report_path(outcome.logs[-1], opts.report_dir, label)
        write_report(outcome.report, result["json"], _owner(outcome.logs[-1]))
    except (OSError, LogsleuthError) as exc:  # the verdict still goes out, the report error with it
        outcome.error, outcome.report = f"report not written: {exc}", None
    return outcome


def _locate(opts: Options, deadline: float) -> tuple[list[str], list[str], str | None]:
    """The logs to diagnose (oldest attempt first), stand-ins for them, the job label."""
    job = opts.job or opts.env.get("SLURM_JOB_ID")
    if opts.logs:
        return [os.path.abspath(p) for p in opts.logs], [], job
    if not job:
        raise InputError("no log: pass --log PATH, --job ID, or run where SLURM_JOB_ID is set")
    from .slurm import find_job_logs

    budget = min(10.0, _SCONTROL_SHARE * max(deadline - time.monotonic(), 0.0))
    found = find_job_logs(job, opts.env, budget, opts.max_attempts)
    for path in found.logs:  # a job's output is a file; a directory there is not its log
        if os.path.isdir(path):
            raise InputError(f"{path}: a directory where job {found.label}'s output file should be")
    present = [p for p in found.logs if os.path.lexists(p)]
    if not present:
        alt = [p for p in found.alternates if os.path.isfile(p)]
        if not alt:
            raise InputError(f"{found.logs[-1]}: no such file (job {found.label}'s output, from {found.source})")
        return alt, [], found.label
    return present, list(found.alternates), found.label


def _report_path(log: str, report_dir: str | None, label: str | None) -> str:
    """``<log>.logsleuth.json``, or ``DIR/[<job>.]<log name>.logsleuth.json``."""
    name = os.path.basename(log)
    if not report_dir:
        return log + REPORT_SUFFIX
    if not os.path.isdir(report_dir):
        raise InputError(f"--report-dir {report_dir}: not a directory")
    prefix = f"{label}." if label and label not in name else ""
    return os.path.join(report_dir, prefix + name + REPORT_SUFFIX)


def _owner(path: str) -> tuple[int, int] | None:
    """The log's owner, for a report written by root (an epilog) into the user's folder."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_uid, st.st_gid) if os.geteuid() == 0 else None


def _diagnose_with_deadline(logs: list[str], alternates: list[str], deadline: float,
                            max_memory_mb: int) -> dict[str, Any]:
    """:func:`_child` in a forked process; killed at the deadline."""
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    done = ctx.Value("q", 0)  # bytes read so far, for the timed-out line
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(  # type: ignore[attr-defined]
        target=_child, args=(send, logs, alternates, max_memory_mb, done), daemon=True)
    child.start()
    send.close()
    try:
        if receive.poll(max(deadline - time.monotonic(), 0.0)):
            return receive.recv()
        if not child.is_alive():
            return {"status": "error", "error": f"the diagnosis ended without a result (exit {child.exitcode})"}
        return {"status": "timeout", "where": _where(logs, done.value)}
    except EOFError:
        child.join(1)
        return {"status": "error", "error": f"the diagnosis died (exit {child.exitcode})"}
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join(2)


def _where(logs: list[str], read: int) -> str:
    """``diagnosing slurm-1.out (12 MiB of 5.0 GiB read)``."""
    sizes = [os.stat(p).st_size for p in logs if _regular(p)]
    total = f" of {_size(sum(sizes))}" if len(sizes) == len(logs) else ""
    names = ", ".join(os.path.basename(p) for p in logs[-3:])
    return f"diagnosing {names} ({_size(read)}{total} read)"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _child(conn: Any, logs: list[str], alternates: list[str], max_memory_mb: int, done: Any) -> None:
    """Diagnose in the child: low priority, bounded address space; the result or the
    error goes back through ``conn``."""
    try:
        _limit_memory(max_memory_mb)
        conn.send(_diagnosis(logs, alternates, done))
    except MemoryError:
        conn.send({"status": "error", "error": f"out of memory (over --max-memory {max_memory_mb} MiB)"})
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which reports it
        conn.send({"status": "error", "error": _message(exc)})
    finally:
        conn.close()


def _limit_memory(max_memory_mb: int) -> None:
    try:
        os.nice(10)
        import resource

        limit = max_memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (OSError, ValueError, ImportError):
        pass  # a platform without these limits: the deadline still holds


def _diagnosis(logs: list[str], alternates: list[str], done: Any) -> dict[str, Any]:
    """The report and the one-liner; the StdErr files stand in when StdOut has no metrics."""
    from .api import diagnose
    from .report import oneline, to_json

    def progress(_path: str, _size: int | None):  # noqa: ANN202 - the api's callback shape
        def add(n: int) -> None:
            done.value += n
        return add

    result = diagnose(list(logs), progress=progress)
    empty = sum("no training metrics found" in w for w in result.warnings) >= len(logs)
    standins = [p for p in alternates if _regular(p)] if empty else []
    if standins:
        logs, result = standins, diagnose(standins, progress=progress)
    return {"status": "diagnosed", "json": to_json(result), "oneline": oneline(result),
            "failed": result.failed, "logs": logs}


def _finish(opts: Options, outcome: Outcome, seconds: float) -> None:
    """Print the verdict (or the error), then every requested output; each may fail alone."""
    who = f"logsleuth: job {outcome.job}" if outcome.job else "logsleuth"
    if outcome.status == "error" and not outcome.line:
        line = f"{who}: error: {outcome.error}"
        _say(line, sys.stderr)
    else:
        attempts = f" ({len(outcome.logs)} attempts)" if len(outcome.logs) > 1 else ""
        line = f"{who}{attempts}: {outcome.line}"
        _say(line, sys.stdout)
        if outcome.error:
            _say(f"{who}: error: {outcome.error}", sys.stderr)
    outputs = []
    if opts.append_to_log and outcome.logs and outcome.status != "error" and _regular(outcome.logs[-1]):
        outputs.append(lambda: append_line(outcome.logs[-1], line.replace("logsleuth:", "logsleuth postmortem:", 1)))
    if opts.termination_log:
        outputs.append(lambda: write_termination_log(opts.termination_log, line))  # type: ignore[arg-type]
    if opts.ledger:
        outputs.append(lambda: append_to_ledger(opts.ledger, _ledger_entry(opts, outcome, line, seconds)))  # type: ignore[arg-type]
    for output in outputs:
        try:
            output()
        except (OSError, LogsleuthError) as exc:
            _say(f"{who}: error: {exc}", sys.stderr)


def _say(line: str, stream: Any) -> None:
    """Print, unless the stream is gone (an epilog's closed stdout must not fail it)."""
    try:
        print(line, file=stream, flush=True)
    except (OSError, ValueError):
        pass


def _ledger_entry(opts: Options, outcome: Outcome, line: str, seconds: float) -> dict[str, Any]:
    """One JSON line per post-mortem, whatever its outcome: what a fleet dashboard reads."""
    env = opts.env
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "status": outcome.status, "job": outcome.job,
            "user": env.get("SLURM_JOB_USER") or env.get("USER"), "node": socket.gethostname(),
            "job_exit": env.get("SLURM_JOB_EXIT_CODE2") or env.get("SLURM_JOB_EXIT_CODE"),
            "logs": list(outcome.logs), "report": outcome.report, "verdict": outcome.verdict,
            "failed": outcome.failed, "line": line, "error": outcome.error,
            "seconds": round(seconds, 3), "logsleuth": __version__}
