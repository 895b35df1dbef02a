"""Signature accuracy of ``logsleuth diagnose``: confusion matrix and per-signature
precision / recall on

(a) the held-out split of the generated corpus (seeds and formats the model never saw):
    ``python bench/accuracy.py --corpus corpus/data``;
(b) the real logs in ``tests/data/real_logs`` (the in-repo copy of ``../shared/real_logs``,
    ``make real-logs`` refreshes it) against ``labels.csv``.

Mapping of the real-log labels to catalog codes: healthy H001, stalled S401,
exploding_loss X101, sudden_nan N201, fixed_iter_nan N202, early_blowup L301. Rows
labelled ``other`` are mapped one by one in :data:`OTHER` (with the reason), and are
reported apart from the target figure, which is over the non-``other`` rows. A verdict
of N203 (non-finite hidden by the logger) is compared through the curve shape it
carries (``verdict.shape``): the labels name the curve, N203 adds that the logger hid it.

Also checked: no healthy or stalled log is reported as a NaN failure.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = HERE.parent / "tests" / "data" / "real_logs"
LABEL_TO_CODE = {"healthy": "H001", "stalled": "S401", "exploding_loss": "X101", "sudden_nan": "N201",
                 "fixed_iter_nan": "N202", "early_blowup": "L301"}
#: the ``other`` rows of labels.csv, mapped to the catalog code that describes them
OTHER = {
    "apex_apex_1135.log": ("F502", "loss scale stuck far below 1 with persistent overflow: a collapsed scale"),
    "deepspeed_cogvideo_233.log": ("F501", "loss-scale warm-up from 2^32, recovered: benign"),
    "deepspeed_deepspeed_931.log": ("F501", "start-of-training dynamic loss-scale search: benign"),
    "deepspeed_gptneofinetuningexample_7.log": ("F501", "overflows at steps 9-13 halving the scale, no nan loss"),
    "deepspeed_trlx_342.log": ("F501", "overflow skips around step 1044 with finite losses"),
    "caffe_caffesegnet_8.log": ("I000", "two records only; the visible part shows no failure"),
    "fairseq_fairseq_1529.log": ("F502", "'Minimum loss scale reached', loss_scale displayed 0.000"),
    "hf_tinyllama_153.log": ("N203", "train loss finite (collapsed to 0.006) while eval_loss is nan"),
}
NAN_FAILURES = {"X101", "N201", "N202", "L301", "F502", "N203"}


def effective(verdict) -> str:  # type: ignore[no-untyped-def]
    return verdict.shape if verdict.code == "N203" and verdict.shape else verdict.code


def confusion(pairs: list[tuple[str, str]], title: str) -> float:
    """Print the confusion matrix and per-class precision/recall; return the accuracy."""
    labels = sorted({t for t, _ in pairs} | {p for _, p in pairs})
    counts = Counter(pairs)
    print(f"\n== {title}: {len(pairs)} logs")
    print("true\\pred " + " ".join(f"{c:>5}" for c in labels))
    for t in labels:
        print(f"{t:9s} " + " ".join(f"{counts[(t, p)]:5d}" for p in labels))
    print(f"{'code':6s} {'prec':>6s} {'recall':>6s} {'n':>5s}")
    for c in labels:
        tp = counts[(c, c)]
        pred = sum(counts[(t, c)] for t in labels)
        true = sum(counts[(c, p)] for p in labels)
        prec = tp / pred if pred else float("nan")
        rec = tp / true if true else float("nan")
        print(f"{c:6s} {prec:6.2f} {rec:6.2f} {true:5d}")
    accuracy = sum(counts[(c, c)] for c in labels) / max(1, len(pairs))
    print(f"accuracy {accuracy:.3f}")
    return accuracy


def real_logs(root: Path) -> tuple[float, int]:
    from logsleuth.api import diagnose

    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    main, other, bad = [], [], 0
    for row in rows:
        d = diagnose(root / row["file"])
        got = effective(d.verdict)
        if row["signature"] == "other":
            want, why = OTHER[row["file"]]
            other.append((want, d.verdict.code))
            print(f"  other {row['file']:45s} -> {want} ({why}); got {d.verdict.code}")
            continue
        want = LABEL_TO_CODE[row["signature"]]
        main.append((want, got))
        if want in ("H001", "S401") and d.verdict.code in NAN_FAILURES:
            bad += 1
            print(f"  !! {row['file']}: {want} reported as NaN failure {d.verdict.code}")
        if want != got:
            print(f"  miss {row['file']:45s} label {want} got {d.verdict.code}"
                  f"{'/' + str(d.verdict.shape) if d.verdict.shape else ''} ({d.verdict.decided_by[:90]})")
    accuracy = confusion(main, "real logs, non-other rows (target >= 0.85)")
    confusion(other, "real logs, other rows (mapped)")
    print(f"healthy/stalled logs reported as a NaN failure: {bad} (target 0)")
    return accuracy, bad


def corpus(root: Path) -> float:
    from logsleuth.api import diagnose

    with open(root / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "heldout"]
    pairs = []
    for row in rows:
        path = next(p for p in (root / "logs" / f"{row['id']}.log", root / "logs" / f"{row['id']}.log.gz")
                    if p.exists())
        d = diagnose(path)
        pairs.append((row["signature"], d.verdict.code))
    return confusion(pairs, f"corpus held-out split ({root}) (target >= 0.95)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="corpus folder (labels.csv, logs/)")
    parser.add_argument("--real", type=Path, default=REAL)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.corpus:
        corpus(args.corpus)
    real_logs(args.real)
    print(f"\n({time.perf_counter() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
