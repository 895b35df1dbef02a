"""ReplayResult -> text (short, scannable) and JSON (versioned, strict), like ``diagnose``.

JSON conventions are those of :mod:`logsleuth.report`: strict JSON (``allow_nan=False``),
non-finite floats as the strings ``"nan"``, ``"inf"``, ``"-inf"``, and a
``schema_version`` that bumps on incompatible changes. ``kind`` is ``"replay"`` so a
consumer can tell a replay report from a diagnose report.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ..report import strict
from .result import REPLAY_SCHEMA_VERSION, CounterfactualResult, ReplayResult


def to_dict(r: ReplayResult) -> dict[str, Any]:
    """The JSON document of a replay."""
    doc: dict[str, Any] = strict({
        "schema_version": REPLAY_SCHEMA_VERSION,
        "kind": "replay",
        "verdict": _verdict(r),
        "target": asdict(r.target),
        "deterministic": r.deterministic,
        "instrumentation_exact": r.instrumentation_exact,
        "location": asdict(r.location) if r.location else None,
        "samples": asdict(r.samples) if r.samples else None,
        "counterfactuals": [asdict(c) for c in r.counterfactuals],
        "causes": [asdict(c) for c in r.causes],
        "evidence": [asdict(e) for e in r.evidence],
        "steps": [asdict(s) for s in r.steps],
        "input": asdict(r.inputs),
        "warnings": list(r.warnings),
        "timings": dict(r.timings) if r.timings else None,
    })
    return doc


def _verdict(r: ReplayResult) -> dict[str, Any]:
    c = r.cause
    return {"reproduced": r.reproduced, "summary": r.summary, "code": c.code if c else None,
            "slug": c.slug if c else None, "title": c.title if c else None,
            "confirmed": bool(c and c.confirmed and r.reproduced)}


def to_json(r: ReplayResult) -> str:
    return json.dumps(to_dict(r), indent=2, allow_nan=False)


def to_text(r: ReplayResult) -> str:
    """The human report: verdict, where, which samples, counterfactuals, causes, fixes."""
    t = r.target
    lines = [_headline(r.summary),
             f"  replayed steps {t.checkpoint_step}..{r.steps[-1].step if r.steps else t.checkpoint_step} on {t.device}"
             f" ({_precision(r)}) from {r.inputs.checkpoint}"]
    if not r.reproduced and r.steps:
        last = r.steps[-1]
        lines.append(f"  step {last.step}: loss {last.loss:.6g}, grad norm {last.grad_norm:.6g} (finite)")
    if r.location:
        lines += _location_lines(r)
    if r.samples and r.samples.positions:
        lines += _sample_lines(r)
    if r.counterfactuals:
        lines.append(f"Counterfactuals (from the checkpoint, steps {t.checkpoint_step}..{t.failed_step})")
        lines += [_counterfactual_line(c) for c in r.counterfactuals]
    lines += _cause_lines(r)
    if r.inputs.diagnosis and r.inputs.diagnosis_causes:
        lines.append(f"From the log alone, diagnose ranked: {', '.join(r.inputs.diagnosis_causes[:3])} "
                     f"({r.inputs.diagnosis})")
    lines += [f"Warning: {w}" for w in r.warnings]
    return "\n".join(lines) + "\n"


def _headline(summary: str) -> str:
    """``reproduced at step 13: ...`` -> ``REPRODUCED at step 13: ...``."""
    for word in ("not reproduced", "reproduced"):
        if summary.startswith(word):
            return word.upper() + summary[len(word):]
    return summary


def _precision(r: ReplayResult) -> str:
    t = r.target
    parts = [f"autocast {t.autocast}" if t.autocast else "fp32"]
    if t.grad_scaler:
        parts.append("grad scaler")
    if t.clip_grad_norm is not None:
        parts.append(f"clip {t.clip_grad_norm:g}")
    return ", ".join(parts)


def _location_lines(r: ReplayResult) -> list[str]:
    loc = r.location
    assert loc is not None
    lines = ["Where", f"  {loc.describe()}"]
    if loc.input_positions:
        ids = loc.input_indices if loc.input_indices is not None else loc.input_positions
        what = "dataset indices" if loc.input_indices is not None else "batch positions"
        lines.append(f"  inputs with nan/inf: {what} {', '.join(map(str, ids))}")
    else:
        lines.append("  inputs: finite")
    checks = f"{loc.modules_checked} module outputs and {loc.gradients_checked} gradients checked"
    exact = {True: "; instrumented step identical to the plain step", False: "; instrumented step DIFFERS",
             None: ""}[r.instrumentation_exact]
    lines.append(f"  ({checks}{exact})")
    return lines


def _sample_lines(r: ReplayResult) -> list[str]:
    s = r.samples
    assert s is not None
    if s.all_samples:
        return [f"Samples: {s.note or 'every sample fails'} ({s.method}, {s.probes} probes)"]
    ids = s.indices if s.indices is not None else s.positions
    what = "dataset indices" if s.indices is not None else "batch positions"
    confirmed = {True: ", confirmed: the batch without them is finite", False: ", not confirmed", None: ""}[s.confirmed]
    line = f"Offending samples: {what} {', '.join(map(str, ids))} of {s.batch_size} ({s.method}{confirmed})"
    return [line] + ([f"  {s.note}"] if s.note else [])


def _counterfactual_line(c: CounterfactualResult) -> str:
    if not c.applicable:
        return f"  n/a                  {c.title}: {c.note}"
    if c.fixed:
        outcome = "removes the failure"
    else:
        outcome = f"still fails (step {c.first_failing_step})"
    note = f"  [{c.note}]" if c.note else ""
    return f"  {outcome:20s} {c.title}{note}"


def _cause_lines(r: ReplayResult) -> list[str]:
    if not r.causes:
        return []
    head = "Cause" if r.reproduced else "Candidates"
    lines = [head]
    for n, c in enumerate(r.causes, 1):
        state = "confirmed" if c.confirmed and r.reproduced else "not confirmed"
        lines.append(f"  {n}. {c.code} {c.slug}: {c.title} ({state})")
        lines += [f"       because {b}" for b in c.because]
        if n == 1 and c.fixes:
            lines.append(f"       fix: {c.fixes[0]}")
    return lines
