"""Check every rendered log against ``logsleuth.read_log``.

For each log: it must be read without error; the detected format should be the one it
was rendered in (a mismatch is a *warning*, counted); and, where the label has an integer
``first_nonfinite_step`` and the signature is not ``N203``,
``series.first_nonfinite().step`` should equal it (the *agreement* rate, overall and per
format, with the disagreeing logs listed for inspection).

``python -m corpus.validate corpus/data`` re-checks an existing corpus.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path


def check(path: Path, fmt: str, signature: str, first_step: str) -> dict:
    """Read one log; report detection, the parser's first non-finite step, agreement."""
    import logsleuth

    out: dict = {"path": str(path), "format": fmt, "signature": signature, "label_step": first_step}
    try:
        series = logsleuth.read_log(str(path))
    except Exception as exc:  # noqa: BLE001 -- every failure is reported, none stops the run
        out.update(error=f"{type(exc).__name__}: {exc}"[:300], detected=None, parsed_step=None, agree=None)
        return out
    nf = series.first_nonfinite()
    out["detected"] = series.format
    out["parsed_step"] = None if nf is None or nf.step is None else int(nf.step)
    out["parsed_any"] = nf is not None
    out["rows"] = int(len(series.frame))
    comparable = signature != "N203" and first_step not in ("", "?")
    out["label_any"] = first_step != "" or signature == "N203"
    out["agree"] = (out["parsed_step"] == int(first_step)) if comparable else None
    return out


def summarize(results: Iterable[dict]) -> dict:
    """Counts: read errors, detection warnings, agreement overall and per format."""
    results = list(results)
    per_fmt: dict[str, Counter] = defaultdict(Counter)
    wrong_format: Counter = Counter()
    disagreements: list[dict] = []
    errors = []
    for r in results:
        c = per_fmt[r["format"]]
        c["logs"] += 1
        if r.get("error"):
            c["errors"] += 1
            errors.append(r)
            continue
        if r["detected"] != r["format"]:
            c["detected_other"] += 1
            wrong_format[f"{r['format']}->{r['detected']}"] += 1
        if r["label_any"]:
            c["nonfinite"] += 1
            c["found"] += int(r["parsed_any"])
        elif r["parsed_any"]:
            c["false_alarm"] += 1
        if r["agree"] is not None:
            c["comparable"] += 1
            c["agree"] += int(r["agree"])
            if not r["agree"]:
                disagreements.append(r)
    comparable = sum(c["comparable"] for c in per_fmt.values())
    nonfinite = sum(c["nonfinite"] for c in per_fmt.values())
    found = sum(c["found"] for c in per_fmt.values())
    agree = sum(c["agree"] for c in per_fmt.values())
    return {
        "logs": len(results), "read_errors": len(errors), "detection_warnings": sum(wrong_format.values()),
        "detected_as": dict(wrong_format), "comparable": comparable, "agree": agree,
        "agreement": round(agree / comparable, 4) if comparable else None,
        "nonfinite_logs": nonfinite, "nonfinite_found": found,
        "found_rate": round(found / nonfinite, 4) if nonfinite else None,
        "false_alarms": sum(c["false_alarm"] for c in per_fmt.values()),
        "per_format": {f: dict(c, agreement=round(c["agree"] / c["comparable"], 4) if c["comparable"] else None)
                       for f, c in sorted(per_fmt.items())},
        "errors": errors[:50], "disagreements": disagreements[:400],
    }


def print_summary(s: dict, out=sys.stdout) -> None:  # noqa: ANN001
    print(f"validated {s['logs']} logs: {s['read_errors']} read errors, {s['detection_warnings']} detected as "
          f"another format {s['detected_as'] or ''}", file=out)
    print(f"first non-finite step agreement: {s['agree']}/{s['comparable']} = {s['agreement']}", file=out)
    print(f"non-finite moment found at all: {s['nonfinite_found']}/{s['nonfinite_logs']} = {s['found_rate']} "
          f"(incl. N203 and '?'); false alarms on finite logs: {s['false_alarms']}", file=out)
    for fmt, c in s["per_format"].items():
        print(f"  {fmt:12s} logs {c.get('logs', 0):5d}  other-format {c.get('detected_other', 0):4d}  "
              f"agree {c.get('agree', 0):4d}/{c.get('comparable', 0):<4d} ({c['agreement']})  "
              f"found {c.get('found', 0):4d}/{c.get('nonfinite', 0):<4d} false-alarm {c.get('false_alarm', 0)}",
              file=out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="corpus directory (with labels.csv and logs/)")
    args = ap.parse_args(argv)
    with open(args.data / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    results = [{**check(args.data / r["path"], r["format"], r["signature"], r["first_nonfinite_step"]),
                "path": r["path"]} for r in rows]
    summary = summarize(results)
    (args.data / "validation.json").write_text(json.dumps(summary, indent=1, default=str))
    print_summary(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
