"""``logsleuth replay``: the click command. Register it with ``main.add_command(replay)``.

Argument parsing and rendering only; torch is imported inside the command body, so
``logsleuth --help`` and every other command work without the ``[replay]`` extra.
Exit codes: 0 the failure does not reproduce (or there is none), 1 a failure was
reproduced and diagnosed, 2 usage or input error (one line on stderr).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from ..errors import InputError

INSTALL_HINT = "replay needs torch: pip install 'logsleuth[replay]'"


def _friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`logsleuth.cli.friendly`, looked up at call time (``logsleuth.cli`` imports this module)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..cli import friendly

        return friendly(func)(*args, **kwargs)

    return wrapper


def require_torch() -> None:
    """Import torch, or fail with the install hint."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise InputError(INSTALL_HINT) from exc


@click.command("replay")
@click.option("--adapter", required=True, metavar="ADAPTER",
              help="Your adapter: path/to/file.py[:object] or package.module[:object] (see docs/replay.md).")
@click.option("--checkpoint", required=True, metavar="CKPT", help="Checkpoint saved before the failing step.")
@click.option("--step", type=click.IntRange(min=0), metavar="N", help="Global step where the log went non-finite.")
@click.option("--from-diagnosis", "diagnosis", metavar="REPORT",
              help="Take the step from a `logsleuth diagnose` JSON report instead of --step.")
@click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda",
              help="Where to replay: auto uses the GPU when there is one.")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Report format.")
@click.option("--report", metavar="FILE", help="Also write the JSON report to FILE (never overwrites without --force).")
@click.option("--force", is_flag=True, help="Overwrite an existing --report file.")
@click.option("--clip-norm", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Max gradient norm of the clipping counterfactual.")
@click.option("--max-probes", type=click.IntRange(min=1), default=64, show_default=True,
              help="Forward+backward probes allowed for bisecting the batch.")
@click.option("--trust-checkpoint", is_flag=True,
              help="Load the checkpoint with weights_only=False. Unpickling can run arbitrary code: "
                   "only for files you trust.")
@_friendly
def replay(adapter: str, checkpoint: str, step: int | None, diagnosis: str | None, device: str, output: str,
           report: str | None, force: bool, clip_norm: float, max_probes: int, trust_checkpoint: bool) -> None:
    """Re-run the failing step of a PyTorch job and confirm the cause.

    Runs from the checkpoint's step to step N with your adapter, then locates the first
    non-finite module output or gradient, finds the offending samples, and runs
    counterfactuals (learning rate x0.1 and 0, gradient clipping, fp32, the batch without
    the offending samples) to name the confirmed cause in the catalog's codes.

    Exit code 0: the failure does not reproduce; 1: reproduced and diagnosed; 2: usage or
    input error.
    """
    step, causes = _target_step(step, diagnosis)
    if report and os.path.exists(report) and not force:
        raise InputError(f"{report}: exists; pass --force to overwrite it")
    require_torch()
    from .report import to_json, to_text
    from .run import ReplayOptions
    from .run import replay as run_replay

    options = ReplayOptions(adapter=adapter, checkpoint=checkpoint, step=step, device=device,
                            trust_checkpoint=trust_checkpoint, clip_norm=clip_norm, max_probes=max_probes,
                            diagnosis=diagnosis, diagnosis_causes=causes)
    result = run_replay(options, progress=_progress())
    if report:
        with open(report, "w", encoding="utf-8") as f:
            f.write(to_json(result))
    click.echo((to_json(result) if output == "json" else to_text(result)).rstrip("\n"))
    sys.exit(1 if result.failed else 0)


def _target_step(step: int | None, diagnosis: str | None) -> tuple[int, tuple[str, ...]]:
    """The step to replay, from --step or from the diagnose report (not both)."""
    if diagnosis is None:
        if step is None:
            raise InputError("give the failing step: --step N, or --from-diagnosis report.json")
        return step, ()
    if step is not None:
        raise InputError("give either --step or --from-diagnosis, not both")
    from .diagnosis import read_diagnosis

    link = read_diagnosis(diagnosis)
    return link.step, link.causes


def _progress() -> Callable[[str], None] | None:
    """Progress lines on stderr, only when it is a terminal."""
    if not sys.stderr.isatty():
        return None
    return lambda message: click.echo(f"logsleuth replay: {message}", err=True)
