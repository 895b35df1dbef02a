"""Reading a ``logsleuth diagnose`` JSON report: the step to replay, and what the log suggested."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class DiagnosisLink:
    """What replay takes from a diagnose report: the first non-finite step and the causes."""

    path: str
    step: int
    signature: str | None
    causes: tuple[str, ...]


def read_diagnosis(path: str) -> DiagnosisLink:
    """The step of the first non-finite value in the report at ``path``.

    Raises
    ------
    InputError
        Unreadable or not a diagnose report, or a report without a step (the log printed
        none): then pass ``--step``.
    """
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise InputError(f"diagnosis {path}: cannot read it: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"diagnosis {path}: not JSON (line {exc.lineno}): write it with "
                         "`logsleuth diagnose --format json LOG > report.json` or `--report report.json`") from exc
    if not isinstance(doc, dict) or "schema_version" not in doc or "verdict" not in doc:
        raise InputError(f"diagnosis {path}: not a logsleuth diagnose report (no schema_version / verdict)")
    first = doc.get("first_nonfinite") or {}
    step = first.get("step") if isinstance(first, dict) else None
    if not isinstance(step, int) or isinstance(step, bool):
        why = "the log shows no non-finite value" if not first else "the log prints no step for it"
        raise InputError(f"diagnosis {path}: no step to replay ({why}): pass --step N instead")
    causes = tuple(str(c.get("code")) for c in doc.get("causes", []) if isinstance(c, dict) and c.get("code"))
    verdict = doc.get("verdict") or {}
    return DiagnosisLink(path=path, step=step, signature=verdict.get("code"), causes=causes)
