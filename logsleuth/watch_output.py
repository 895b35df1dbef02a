"""How ``logsleuth watch`` says what it saw: text or JSON lines, and the ``--on-alert`` command.

The command gets the alert in environment variables, never in its command line:
``LOGSLEUTH_EVENT`` (``warning``, ``failure`` or ``final``), ``LOGSLEUTH_CODE`` (the
signature: the one a warning points to, diagnose's verdict so far for a failure, the final
verdict), ``LOGSLEUTH_STEP``, ``LOGSLEUTH_LINE``, ``LOGSLEUTH_MESSAGE``, ``LOGSLEUTH_LOG``
and ``LOGSLEUTH_KIND`` (the condition). It is split with :func:`shlex.split` and run
without a shell, so a log line can never become shell code; it runs synchronously with a
timeout, and its failure is one line on stderr, never the end of the watch.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import InputError
from .forecast import Alert

if TYPE_CHECKING:
    from .types import Diagnosis

#: seconds an --on-alert command may take before it is killed
HOOK_TIMEOUT = 60.0


def alert_fields(event: str, alert: Alert | None, diagnosis: Diagnosis | None, log: str) -> dict[str, str]:
    """The alert as the ``LOGSLEUTH_*`` variables (strings; empty when unknown)."""
    from .report import oneline

    if alert is not None:
        code = diagnosis.verdict.code if diagnosis is not None else alert.code
        step, line = alert.step, alert.line
        message = alert.message + (f": {alert.text}" if alert.text else "")
        kind = alert.kind
    else:
        assert diagnosis is not None
        code, kind, message = diagnosis.verdict.code, "verdict", oneline(diagnosis)
        first = diagnosis.first_nonfinite
        step, line = (first.step, first.line) if first else (None, None)
    return {"LOGSLEUTH_EVENT": event, "LOGSLEUTH_CODE": code, "LOGSLEUTH_KIND": kind,
            "LOGSLEUTH_STEP": "" if step is None else str(step), "LOGSLEUTH_LINE": "" if line is None else str(line),
            "LOGSLEUTH_MESSAGE": message, "LOGSLEUTH_LOG": log}


def render(fields: dict[str, str], alert: Alert | None, as_json: bool) -> str:
    """One output line: ``logsleuth watch: warning step 120 line 345: ...`` or a JSON object."""
    if as_json:
        record: dict[str, object] = {k.removeprefix("LOGSLEUTH_").lower(): v for k, v in fields.items()}
        for key in ("step", "line"):
            record[key] = int(fields[f"LOGSLEUTH_{key.upper()}"]) if fields[f"LOGSLEUTH_{key.upper()}"] else None
        if alert is not None:
            record["evidence"] = {k: _strict(v) for k, v in alert.evidence.items()}
        return json.dumps(record, allow_nan=False, default=str)
    event = fields["LOGSLEUTH_EVENT"]
    if event == "final":
        return fields["LOGSLEUTH_MESSAGE"]
    where = " ".join(f"{k} {fields[f'LOGSLEUTH_{k.upper()}']}" for k in ("step", "line")
                     if fields[f"LOGSLEUTH_{k.upper()}"])
    code = f" ({fields['LOGSLEUTH_CODE']})" if fields["LOGSLEUTH_CODE"] else ""
    return f"{event}{code} {where}: {fields['LOGSLEUTH_MESSAGE']}"


def _strict(value: object) -> object:
    """Non-finite numbers as the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON, as the report)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def hook_argv(command: str | None) -> list[str] | None:
    """The ``--on-alert`` command as an argument list (checked once, before watching)."""
    if not command:
        return None
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InputError(f"--on-alert: cannot split {command!r} ({exc})") from None
    if not argv:
        raise InputError("--on-alert: empty command")
    return argv


def run_hook(argv: list[str], fields: dict[str, str]) -> None:
    """Run the command with the alert in its environment; its trouble is one line on stderr."""
    try:
        done = subprocess.run(argv, env={**os.environ, **fields}, timeout=HOOK_TIMEOUT,
                              stdin=subprocess.DEVNULL, check=False)
        if done.returncode:
            print(f"logsleuth watch: --on-alert exited {done.returncode}", file=sys.stderr)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"logsleuth watch: --on-alert failed: {exc}", file=sys.stderr)


def printer(log: str, as_json: bool, hook: list[str] | None,
            echo: Callable[[str], None]) -> Callable[[str, Alert | None, Diagnosis | None], None]:
    """The ``emit`` callback of :func:`logsleuth.watch.watch`: print, then run the hook."""

    def emit(event: str, alert: Alert | None, diagnosis: Diagnosis | None) -> None:
        fields = alert_fields(event, alert, diagnosis, log)
        echo(render(fields, alert, as_json))
        if hook:
            run_hook(hook, fields)

    return emit
