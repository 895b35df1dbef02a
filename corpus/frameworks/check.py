"""How logsleuth reads the real-framework logs: one diagnosis per log, a summary table.

``python corpus/frameworks/check.py [corpus/framework_runs] [--logsleuth .venv/bin/logsleuth]``

Runs ``logsleuth diagnose --format json`` (the project's CLI, as a user would) on every
``runs/<id>/job.log.gz`` of ``labels.csv`` and prints, per framework x variant: logs, logs
parsed with training records (``features.n_train_records > 0``), detected formats,
signature accuracy against the measured label, and first-non-finite-step agreement
(exact, on logs whose label has one). Every diagnosis is kept in ``check.json``
beside ``labels.csv`` for the per-log disagreements. Needs only the standard library.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def diagnose(cli: str, path: Path) -> dict:
    p = subprocess.run([cli, "diagnose", "--format", "json", str(path)], capture_output=True, text=True, timeout=300)
    try:
        d = json.loads(p.stdout)
    except json.JSONDecodeError:
        return {"error": (p.stderr or p.stdout)[-300:], "code": None}
    f, fn = d.get("features") or {}, d.get("first_nonfinite") or {}
    return {"code": d["verdict"]["code"], "confidence": d["verdict"].get("confidence"),
            "format": (d.get("input") or [{}])[0].get("format"), "records": f.get("n_train_records"),
            "fns": fn.get("step"), "fns_text": (fn.get("text") or "")[:200], "warnings": d.get("warnings")}


def table(rows: list[dict]) -> str:
    groups: dict[tuple, list] = defaultdict(list)
    for r in rows:
        groups[(r["framework"], r["variant"])].append(r)
    out = ["| framework | variant | logs | parsed with records | formats | signature correct | first non-finite step correct |",
           "|---|---|---|---|---|---|---|"]
    tot = Counter()
    for (fw, var), rs in sorted(groups.items()):
        parsed = sum(1 for r in rs if (r["got"].get("records") or 0) > 0)
        ok = sum(1 for r in rs if r["got"].get("code") == r["signature"])
        with_step = [r for r in rs if r["first_nonfinite_step"] not in ("", None)]
        step_ok = sum(1 for r in with_step if str(r["got"].get("fns")) == str(r["first_nonfinite_step"]))
        fmts = ", ".join(f"{k}:{v}" for k, v in Counter(r["got"].get("format") for r in rs).most_common())
        out.append(f"| {fw} | {var} | {len(rs)} | {parsed} | {fmts} | {ok}/{len(rs)} | {step_ok}/{len(with_step)} |")
        tot.update(logs=len(rs), parsed=parsed, ok=ok, steps=len(with_step), step_ok=step_ok)
    out.append(f"| all | | {tot['logs']} | {tot['parsed']} | | {tot['ok']}/{tot['logs']} "
               f"({tot['ok'] / max(1, tot['logs']):.2f}) | {tot['step_ok']}/{tot['steps']} |")
    return "\n".join(out)


def confusion(rows: list[dict]) -> str:
    c = Counter((r["signature"], r["got"].get("code")) for r in rows)
    labels = sorted({a for a, _ in c} | {b for _, b in c if b})
    out = ["| measured \\ logsleuth | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for a in sorted({a for a, _ in c}):
        out.append(f"| {a} | " + " | ".join(str(c.get((a, b), 0) or "") for b in labels) + " |")
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT / "corpus" / "framework_runs"))
    ap.add_argument("--logsleuth", default=str(ROOT / ".venv" / "bin" / "logsleuth"))
    args = ap.parse_args(argv)
    root = Path(args.corpus)
    rows = list(csv.DictReader(open(root / "labels.csv")))
    for r in rows:
        r["got"] = diagnose(args.logsleuth, root / r["path"])
    (root / "check.json").write_text(json.dumps(
        {r["id"]: {"label": r["signature"], "label_fns": r["first_nonfinite_step"], **r["got"]} for r in rows},
        indent=1, sort_keys=True) + "\n")
    print(table(rows))
    print()
    print(confusion(rows))


if __name__ == "__main__":
    main()
