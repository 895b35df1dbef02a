"""How logsleuth reads the real-framework logs: one diagnosis per log, a summary table.

``python corpus/frameworks/check.py [corpus/framework_runs] [--logsleuth .venv/bin/logsleuth]``

Runs ``logsleuth diagnose --format json`` (the project's CLI, as a user would) on every
``runs/<id>/job.log.gz`` of ``labels.csv`` and prints, per framework x variant: logs, logs
parsed with training records (``features.n_train_records > 0``), detected formats,
signature accuracy against the measured label, first-non-finite-step agreement (the
label's step, or the first logging step at or after it, on logs whose label has one) and whether the last step logsleuth read (``logsleuth
parse``) is the run's last step, within one logging interval. Every diagnosis is kept in ``check.json``
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
    q = subprocess.run([cli, "parse", str(path)], capture_output=True, text=True, timeout=300)
    steps = [float(x.split(",")[0]) for x in q.stdout.splitlines()[1:] if ",loss," in x and x.split(",")[0]]
    return {"last_step": int(max(steps)) if steps else None, "code": d["verdict"]["code"], "confidence": d["verdict"].get("confidence"),
            "format": (d.get("input") or [{}])[0].get("format"), "records": f.get("n_train_records"),
            "fns": fn.get("step"), "fns_text": (fn.get("text") or "")[:200], "warnings": d.get("warnings")}


def step_ok_(r: dict) -> bool:
    """logsleuth's first non-finite step is the label's, or the first logged step at or after it."""
    got, want, every = r["got"].get("fns"), int(r["first_nonfinite_step"]), max(1, int(r["log_every"]))
    return got is not None and int(got) in (want, -(-want // every) * every)


def last_step_ok(r: dict) -> bool:
    """The last step logsleuth read is the run's last step (within one logging interval)."""
    got, final, every = r["got"].get("last_step"), int(r.get("final_step") or 0), int(r["log_every"])
    return got is not None and final - max(every, 1) < got <= final


def table(rows: list[dict]) -> str:
    groups: dict[tuple, list] = defaultdict(list)
    for r in rows:
        groups[(r["framework"], r["variant"])].append(r)
    out = ["| framework | variant | logs | parsed with records | formats | signature correct | first non-finite step correct "
           "| last step read correct |", "|---|---|---|---|---|---|---|---|"]
    tot = Counter()
    for (fw, var), rs in sorted(groups.items()):
        parsed = sum(1 for r in rs if (r["got"].get("records") or 0) > 0)
        ok = sum(1 for r in rs if r["got"].get("code") == r["signature"])
        with_step = [r for r in rs if r["first_nonfinite_step"] not in ("", None)]
        step_ok = sum(1 for r in with_step if step_ok_(r))
        last_ok = sum(1 for r in rs if last_step_ok(r))
        fmts = ", ".join(f"{k}:{v}" for k, v in Counter(r["got"].get("format") for r in rs).most_common())
        out.append(f"| {fw} | {var} | {len(rs)} | {parsed} | {fmts} | {ok}/{len(rs)} | {step_ok}/{len(with_step)} | {last_ok}/{len(rs)} |")
        tot.update(logs=len(rs), parsed=parsed, ok=ok, steps=len(with_step), step_ok=step_ok, last=last_ok)
    out.append(f"| all | | {tot['logs']} | {tot['parsed']} | | {tot['ok']}/{tot['logs']} "
               f"({tot['ok'] / max(1, tot['logs']):.2f}) | {tot['step_ok']}/{tot['steps']} | {tot['last']}/{tot['logs']} |")
    return "\n".join(out)


def confusion(rows: list[dict]) -> str:
    c = Counter((r["signature"], r["got"].get("code")) for r in rows)
    labels = sorted({a for a, _ in c} | {b for _, b in c if b})
    out = ["| measured \\ logsleuth | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for a in sorted({a for a, _ in c}):
        out.append(f"| {a} | " + " | ".join(str(c.get((a, b), 0) or "") for b in labels) + " |")
    return "\n".join(out)


def final_step(trace: Path) -> int | None:
    """The last step of the last attempt, from the run's own trace."""
    import gzip
    rows = [json.loads(x) for x in gzip.open(trace, "rt") if x.strip()] if trace.exists() else []
    return rows[-1]["step"] if rows else None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(ROOT / "corpus" / "framework_runs"))
    ap.add_argument("--logsleuth", default=str(ROOT / ".venv" / "bin" / "logsleuth"))
    args = ap.parse_args(argv)
    root = Path(args.corpus)
    rows = list(csv.DictReader(open(root / "labels.csv")))
    for r in rows:
        r["got"] = diagnose(args.logsleuth, root / r["path"])
        r["final_step"] = final_step(root / "runs" / r["id"] / "trace.jsonl.gz")
    (root / "check.json").write_text(json.dumps(
        {r["id"]: {"label": r["signature"], "label_fns": r["first_nonfinite_step"],
                  "final_step": r["final_step"], **r["got"]} for r in rows},
        indent=1, sort_keys=True) + "\n")
    print(table(rows))
    print()
    print(confusion(rows))


if __name__ == "__main__":
    main()
