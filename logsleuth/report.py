"""Diagnosis -> text (short, scannable), JSON (versioned, strict), Markdown (tickets),
one line (schedulers, chat: at most 200 characters)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from .types import DIAGNOSIS_SCHEMA_VERSION, Diagnosis

ONELINE_MAX = 200


def strict(value: Any) -> Any:
    """Strict JSON: non-finite floats become the strings "nan", "inf", "-inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def to_dict(d: Diagnosis) -> dict[str, Any]:
    """The JSON document (schema_version bumps on incompatible changes)."""
    first = asdict(d.first_nonfinite) if d.first_nonfinite else None
    return strict({
        "schema_version": DIAGNOSIS_SCHEMA_VERSION,
        "verdict": asdict(d.verdict),
        "first_nonfinite": first,
        "attempts": d.attempts,
        "causes": [asdict(c) for c in d.causes],
        "evidence": [asdict(e) for e in d.evidence],
        "bad_sample": dict(d.bad_sample) if d.bad_sample else None,
        "next_steps": list(d.next_steps),
        "input": [asdict(i) for i in d.inputs],
        "warnings": list(d.warnings),
        "features": dict(d.features),
    })


def to_json(d: Diagnosis) -> str:
    return json.dumps(to_dict(d), indent=2, allow_nan=False)


def oneline(d: Diagnosis) -> str:
    """``N201 sudden-nan step 220 (0.87) train.log: lower base_lr ...`` in <= 200 chars."""
    v = d.verdict
    where = f" step {d.first_nonfinite.step}" if d.first_nonfinite and d.first_nonfinite.step is not None else ""
    name = d.inputs[0].path.rsplit("/", 1)[-1] if d.inputs else ""
    head = f"{v.code} {v.slug}{where} ({v.confidence:.2f}) {name}"
    if d.causes:
        fix = d.causes[0].fixes[0] if d.causes[0].fixes else d.causes[0].title
        head += f": {d.causes[0].slug}: {fix}"
    head = " ".join(head.split())
    return head if len(head) <= ONELINE_MAX else head[: ONELINE_MAX - 1] + "…"


def to_text(d: Diagnosis) -> str:
    v = d.verdict
    lines = [f"{v.code} {v.slug}: {v.title}  (confidence {v.confidence:.2f})"]
    for i in d.inputs:
        size = f"{i.size:,} B" if i.size is not None else "stream"
        lines.append(f"  input: {i.path} ({i.format}, {size})")
    if d.attempts > 1:
        lines.append(f"  attempts: {d.attempts} in the log (the step counter went back, or training restarted)")
    if d.first_nonfinite:
        f = d.first_nonfinite
        lines.append(f"  first non-finite: {f.described()}: {f.text[:160]}")
    if d.evidence:
        lines.append("Evidence")
        for e in d.evidence:
            at = f"line {e.line}" if e.line is not None else "header"
            step = f" step {e.step}" if e.step is not None else ""
            lines.append(f"  {at}{step}: {e.why}")
            if e.text:
                lines.append(f"      {e.text[:160]}")
    if d.causes:
        lines.append("Likely causes")
        for n, c in enumerate(d.causes[:3], 1):
            lines.append(f"  {n}. {c.code} {c.title} ({c.probability:.0%})")
            if c.because:
                lines.append(f"       because {'; '.join(c.because[:2])}")
            if c.fixes:
                lines.append(f"       fix: {c.fixes[0]}")
    if d.bad_sample:
        lines.append(f"Bad sample: {d.bad_sample.get('summary', '')}")
    for step in d.next_steps:
        lines.append(f"Next: {step}")
    for w in d.warnings:
        lines.append(f"Warning: {w}")
    lines.append(f"  ({v.decided_by}; `logsleuth explain {v.code}` documents the signature)")
    return "\n".join(lines) + "\n"


def to_markdown(d: Diagnosis) -> str:
    v = d.verdict
    out = [f"### logsleuth: `{v.code}` {v.slug} — {v.title}", "",
           f"**Confidence** {v.confidence:.2f} · decided by {v.decided_by}", ""]
    for i in d.inputs:
        out.append(f"- input: `{i.path}` ({i.format}, sha256 `{(i.sha256 or '')[:12]}`)")
    if d.first_nonfinite:
        f = d.first_nonfinite
        out += ["", f"**First non-finite**: {f.described()}", "", "```",
                f.text[:300], "```"]
    if d.evidence:
        out += ["", "| line | step | why |", "|---|---|---|"]
        out += [f"| {e.line or ''} | {e.step if e.step is not None else ''} | {e.why} |" for e in d.evidence]
    if d.causes:
        out += ["", "**Likely causes**", ""]
        for n, c in enumerate(d.causes[:4], 1):
            out.append(f"{n}. `{c.code}` {c.title} — {c.probability:.0%}")
            out += [f"   - fix: {fix}" for fix in c.fixes[:2]]
    if d.bad_sample:
        out += ["", f"**Bad sample**: {d.bad_sample.get('summary', '')}"]
    out += [f"- next: {s}" for s in d.next_steps]
    out += [f"> warning: {w}" for w in d.warnings]
    return "\n".join(out) + "\n"


RENDERERS = {"text": to_text, "json": to_json, "markdown": to_markdown}
