"""Trajectories on disk: gzip-compressed JSON lines, written reproducibly.

Line 1 is a header (``"kind": "header"``: id, injected cause, model, seed, steps per
epoch, loss weights, the full spec and the measurement); then, per attempt, one line per
step (``"kind": "step"``: attempt, step, epoch, it, loss, grad_norm, lr, acc, scale,
overflow, terms) and one ``"kind": "attempt"`` line (start, resumed_from, end). Non-finite
numbers are written as Python's ``json`` writes them (``NaN``, ``Infinity``,
``-Infinity``), which ``json.loads`` and pandas read back.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from pathlib import Path
from typing import Any

from .label import Measurement
from .runs import Attempt, RunSpec, Trajectory

_STEP_KEYS = ("step", "epoch", "it", "loss", "grad_norm", "lr", "acc", "scale", "overflow")


def write_gz(path: Path, text: str) -> None:
    """gzip with a zero timestamp and no file name, so equal text gives equal bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    path.write_bytes(buf.getvalue())


def _first_nonfinite(att: Attempt) -> int | None:
    """First step whose loss or grad norm is non-finite (overflow skips included)."""
    for step, loss, grad in zip(att.rows["step"], att.column("loss"), att.column("grad_norm")):
        if not (math.isfinite(loss) and math.isfinite(grad)):
            return int(step)
    return None


def dumps(traj: Trajectory, meas: Measurement) -> str:
    header = {"kind": "header", **traj.header(),
              "measured": {"signature": meas.signature, "rule": meas.rule,
                           "first_nonfinite_step": meas.first_nonfinite_step, "fail_step": meas.fail_step,
                           "evidence": meas.evidence}}
    out = [json.dumps(header, sort_keys=True, default=str)]
    for att in traj.attempts:
        rows = att.rows
        for k in range(len(att)):
            rec: dict[str, Any] = {"kind": "step", "a": att.index}
            for key in _STEP_KEYS:
                if key in rows and rows[key][k] is not None:
                    rec[key] = rows[key][k]
            if att.terms:
                rec["terms"] = {name: vals[k] for name, vals in att.terms.items()}
            out.append(json.dumps(rec))
        out.append(json.dumps({"kind": "attempt", "a": att.index, "start": att.start,
                               "resumed_from": att.resumed_from, "end": att.end,
                               "first_nonfinite_step": _first_nonfinite(att)}))
    return "\n".join(out) + "\n"


def save(path: Path, traj: Trajectory, meas: Measurement) -> None:
    write_gz(path, dumps(traj, meas))


def load(path: str | Path) -> tuple[Trajectory, dict]:
    """(trajectory, header) from a ``.jsonl.gz`` file written by :func:`save`."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    header = records[0]
    spec = RunSpec(**header["spec"])
    attempts: dict[int, Attempt] = {}
    for rec in records[1:]:
        a = rec["a"]
        att = attempts.setdefault(a, Attempt(a, 1, None))
        if rec["kind"] == "step":
            for key in _STEP_KEYS:
                if key in rec or key in att.rows:
                    att.rows.setdefault(key, []).append(rec.get(key))
            for name, value in rec.get("terms", {}).items():
                att.terms.setdefault(name, []).append(value)
        else:
            att.start, att.resumed_from, att.end = rec["start"], rec["resumed_from"], rec["end"]
    traj = Trajectory(spec, [attempts[k] for k in sorted(attempts)], header.get("loss_weights", {}))
    return traj, header
