"""Signature accuracy of ``logsleuth diagnose`` on logs the model has NOT seen, beside the
figures on logs it has.

``python bench/accuracy.py`` (``make accuracy``) prints, for the labelled corpora (see
:mod:`logsleuth.corpora`: ``corpus/framework_runs``, what the real frameworks wrote, and
``corpus/data``, the printed corpus for frameworks that cannot run here):

* **leave-one-framework-out** (the figure that counts): for each framework, a model fitted
  on every other framework's logs diagnoses that framework's logs (the Hugging Face
  generations ``hf`` and ``hf4`` leave together);
* **leave-one-version-out**: where a framework ran in two releases, fitted without one,
  tested on it;
* the **random split** (dev figure): fitted on the train split, tested on the held-out
  split, where every framework was seen;
* the **real development set** (``tests/data/real_logs``) with the model fitted on
  everything (the shipped model), labels mapped as below.

Each fold is the whole verdict (guards, then the fold's model), scored as: correct when
the label is the verdict's code or, for N203, the curve shape it carries. Also printed:
healthy/stalled logs called a failure, top-1 / top-3 cause where the injected cause is
known, and the expected calibration error (ECE, 10 bins) of the confidence.

Real-log labels: healthy H001, stalled S401, exploding_loss X101, sudden_nan N201,
fixed_iter_nan N202, early_blowup L301; ``other`` rows are mapped one by one in
:data:`OTHER` and reported apart from the target figure.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
REAL = REPO / "tests" / "data" / "real_logs"
CORPORA = [REPO / "corpus" / "framework_runs", REPO / "corpus" / "data"]
CACHE = HERE / "out" / "accuracy_features.json"
LABEL_TO_CODE = {"healthy": "H001", "stalled": "S401", "exploding_loss": "X101", "sudden_nan": "N201",
                 "fixed_iter_nan": "N202", "early_blowup": "L301"}
#: the ``other`` rows of labels.csv, mapped to the catalog code that describes them
OTHER = {
    "apex_apex_1135.log": ("F502", "loss scale stuck far below 1 with persistent overflow: a collapsed scale"),
    "apex_factseg_6.log": ("F502", "every step skipped, loss scale at a denormal 2e-320 and halving"),
    "deepspeed_cogvideo_233.log": ("F501", "loss-scale warm-up from 2^32, recovered: benign"),
    "deepspeed_deepspeed_931.log": ("F501", "start-of-training dynamic loss-scale search: benign"),
    "deepspeed_deepspeed_5779.log": ("F501", "start-of-training loss-scale search, 8 skipped steps: benign"),
    "deepspeed_gptneofinetuningexample_7.log": ("F501", "overflows at steps 9-13 halving the scale, no nan loss"),
    "deepspeed_trlx_342.log": ("F501", "overflow skips around step 1044 with finite losses"),
    "caffe_caffesegnet_8.log": ("I000", "two records only; the visible part shows no failure"),
    "demucs_demucs_315.log": ("H001", "the visible part (epoch 35) is normal"),
    "fairseq_fairseq_1529.log": ("F502", "'Minimum loss scale reached', loss_scale displayed 0.000"),
    "hf_tinyllama_153.log": ("N203", "train loss finite (collapsed to 0.006) while eval_loss is nan"),
    "hf_chatglmefficienttuning_49.log": ("N201", "a single nan record after a finite one (PPO), training goes on"),
    "hf_llamafactory_4278.log": ("I000", "only the end-of-run summary"),
    "hf_llm2vec_174.log": ("N203", "eval_loss nan while the train loss is not shown"),
    "hf_minicpmv_346.log": ("F501", "DeepSpeed fp16 loss-scale skips before the first optimizer step"),
    "tf_rnntspeechrecognition_26.log": ("H001", "the pasted part is a normal start"),
}
NAN_FAILURES = {"X101", "N201", "N202", "L301", "F502", "N203"}
def effective(verdict) -> str:  # type: ignore[no-untyped-def]
    return verdict.shape if verdict.code == "N203" and verdict.shape else verdict.code


def correct(label: str, verdict) -> bool:  # type: ignore[no-untyped-def]
    return label in (verdict.code, effective(verdict))


def confusion(pairs: list[tuple[str, str]], title: str, quiet: bool = False) -> float:
    """Print the confusion matrix and per-class precision/recall; return the accuracy."""
    labels = sorted({t for t, _ in pairs} | {p for _, p in pairs})
    counts = Counter(pairs)
    accuracy = sum(counts[(c, c)] for c in labels) / max(1, len(pairs))
    print(f"\n== {title}: {len(pairs)} logs, accuracy {accuracy:.3f}")
    if quiet:
        return accuracy
    print("true\\pred " + " ".join(f"{c:>5}" for c in labels))
    for t in labels:
        print(f"{t:9s} " + " ".join(f"{counts[(t, p)]:5d}" for p in labels))
    return accuracy


def ece(scored: list[tuple[float, bool]], bins: int = 10) -> float:
    """Expected calibration error: |confidence - accuracy| per confidence bin, weighted."""
    total, err = len(scored), 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in scored if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if inside:
            err += len(inside) / total * abs(sum(c for c, _ in inside) / len(inside)
                                             - sum(ok for _, ok in inside) / len(inside))
    return err


# ---- features (cached: parsing ~1,500 logs is the slow part) ------------------------

def _code_version() -> str:
    h = hashlib.sha256()
    for folder in (REPO / "logsleuth", REPO / "parsers"):
        for path in sorted(folder.rglob("*.py")):
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def load_features(rows: list[dict[str, str]]) -> list[dict]:
    """(features, format) of every row's log, from the cache when the code is unchanged."""
    from logsleuth.api import read_run
    from logsleuth.features import compute_features

    version = _code_version()
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    if cache.get("version") != version:
        cache = {"version": version, "logs": {}}
    logs = cache["logs"]
    for i, row in enumerate(rows):
        if row["path"] not in logs:
            series = read_run(row["path"])  # as diagnose reads it
            logs[row["path"]] = {"features": compute_features(series), "format": series.format}
            if (i + 1) % 250 == 0:
                print(f"  features: {i + 1}/{len(rows)} logs", file=sys.stderr)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(cache, allow_nan=True))
    return [logs[r["path"]] for r in rows]


# ---- folds ---------------------------------------------------------------------------

class Fold:
    """A model fitted on some rows, judging others with the whole verdict (guards + model),
    and a cause model fitted on the same rows, ranking their causes."""

    def __init__(self, rows: list[dict], feats: list[dict]) -> None:
        from logsleuth.train import fit_causes, fit_rows, forest_of

        self.forest = forest_of(fit_rows(rows, [f["features"] for f in feats]))
        causes = fit_causes(rows, [f["features"] for f in feats])
        self.causes = forest_of(causes) if causes is not None else None

    def ranked(self, verdicts: list, feats: list[dict]) -> list[list[str]]:
        """Each verdict's cause codes, best first, ranked with this fold's cause model."""
        import logsleuth.explain as explain

        saved = explain.load_cause_model
        explain.load_cause_model = lambda: self.causes  # type: ignore[assignment]
        try:
            return [[c.code for c in explain.rank_causes(v, f["features"], f["format"])] for v, f in zip(verdicts, feats)]
        finally:
            explain.load_cause_model = saved

    def verdicts(self, feats: list[dict]) -> list:
        import logsleuth.classify as classify

        saved = classify.load_model
        classify.load_model = lambda: self.forest  # type: ignore[assignment]
        try:
            return [classify.classify(f["features"]) for f in feats]
        finally:
            classify.load_model = saved


def score(title: str, rows: list[dict], feats: list[dict], verdicts: list, ranked: list[list[str]],
          quiet: bool = True) -> dict:
    from logsleuth.train import CAUSE_CODES

    pairs = [(r["signature"], r["signature"] if correct(r["signature"], v) else v.code) for r, v in zip(rows, verdicts)]
    acc = confusion(pairs, title, quiet)
    false_alarms = sum(1 for r, v in zip(rows, verdicts) if r["signature"] in ("H001", "S401")
                       and v.code in NAN_FAILURES)
    conf = [(v.confidence, correct(r["signature"], v)) for r, v in zip(rows, verdicts)]
    top1 = top3 = known = 0
    for r, v, causes in zip(rows, verdicts, ranked):
        want = CAUSE_CODES.get(r.get("cause", ""))
        if want is None or v.benign or v.code == "I000" or r["signature"] in ("H001",):
            continue
        known += 1
        top1 += bool(causes[:1] == [want])
        top3 += want in causes[:3]
    print(f"   healthy/stalled called a failure: {false_alarms}; ECE {ece(conf):.3f}; "
          f"top-1 cause {top1}/{known}, top-3 {top3}/{known}")
    return {"n": len(rows), "accuracy": acc, "false_alarms": false_alarms, "ece": ece(conf),
            "top1": top1, "top3": top3, "known": known, "scored": conf}


def group(family: str) -> str:
    """The framework of a family: releases of one framework (``hf``, ``hf4``) leave together."""
    return family.rstrip("0123456789")


def real_logs(root: Path, fold: Fold | None) -> dict:
    """The real development set, diagnosed with ``fold``'s model (None: the shipped one)."""
    import logsleuth.classify as classify
    from logsleuth.api import diagnose

    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    saved = classify.load_model
    if fold is not None:
        classify.load_model = lambda: fold.forest  # type: ignore[assignment]
    main, other, bad, conf = [], [], 0, []
    try:
        for row in rows:
            d = diagnose(root / row["file"])
            if row["signature"] == "other":
                want, why = OTHER.get(row["file"], ("I000", "not mapped"))
                other.append((want, d.verdict.code if d.verdict.code == want else effective(d.verdict)))
                continue
            want = LABEL_TO_CODE[row["signature"]]
            ok = correct(want, d.verdict)
            main.append((want, want if ok else d.verdict.code))
            conf.append((d.verdict.confidence, ok))
            if want in ("H001", "S401") and d.verdict.code in NAN_FAILURES:
                bad += 1
                print(f"  !! {row['file']}: {want} reported as NaN failure {d.verdict.code}")
            if not ok:
                print(f"  miss {row['file']:45s} label {want} got {d.verdict.code}"
                      f"{'/' + str(d.verdict.shape) if d.verdict.shape else ''} ({d.verdict.decided_by[:80]})")
    finally:
        classify.load_model = saved
    accuracy = confusion(main, "real development set, non-other rows (seen: the project is built with them)")
    confusion(other, "real development set, other rows (mapped)", quiet=True)
    print(f"   healthy/stalled called a failure: {bad}; ECE {ece(conf):.3f}")
    return {"accuracy": accuracy, "n": len(main), "false_alarms": bad}


def out_of_fold(rows: list[dict], feats: list[dict], key) -> tuple[list, list]:  # type: ignore[no-untyped-def]
    """Every row's verdict and ranked causes from models fitted without the rows sharing its ``key``."""
    verdicts: list = [None] * len(rows)
    ranked: list = [None] * len(rows)
    for value in sorted({key(r) for r in rows}):
        inside = [i for i, r in enumerate(rows) if key(r) == value]
        outside = [i for i, r in enumerate(rows) if key(r) != value]
        fold = Fold([rows[i] for i in outside], [feats[i] for i in outside])
        judged = fold.verdicts([feats[i] for i in inside])
        for i, v, causes in zip(inside, judged, fold.ranked(judged, [feats[i] for i in inside])):
            verdicts[i], ranked[i] = v, causes
    return verdicts, ranked


def judge(fold: Fold, feats: list[dict]) -> tuple[list, list]:
    verdicts = fold.verdicts(feats)
    return verdicts, fold.ranked(verdicts, feats)


def framework_key(row: dict) -> str:
    return group(row["family"])


def calibrate(rows: list[dict], feats: list[dict], verdicts: list, write: bool) -> list[float]:
    """Confidences of ``verdicts`` from tables measured without their framework (nested:
    honest ECE), and, with ``write``, the table from every row shipped with the model."""
    from logsleuth.calibration import build_table, calibrated, is_short, write_table

    scored = [(v.basis, is_short(f["features"]), correct(r["signature"], v)) for r, v, f in zip(rows, verdicts, feats)]
    out = []
    for r, v, f in zip(rows, verdicts, feats):
        table = build_table([s for s, o in zip(scored, rows) if framework_key(o) != framework_key(r)])
        raw = v.probabilities.get(v.code, max(v.probabilities.values(), default=1.0))
        out.append(calibrated(v.basis, raw, f["features"], table))
    if write:
        path = REPO / "logsleuth" / "model" / "calibration.json"
        write_table(str(path), build_table(scored), "right/total of leave-one-framework-out verdicts per basis "
                                                     "(bench/accuracy.py --calibrate)")
        print(f"   calibration table ({len(scored)} out-of-fold verdicts) -> {path}")
    return out


def main(argv: list[str] | None = None) -> int:
    from logsleuth.corpora import read_corpora

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, action="append", help="corpus folders (default: both corpora)")
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--shipped", action="store_true", help="real logs with the shipped model, no folds")
    parser.add_argument("--calibrate", action="store_true", help="write logsleuth/model/calibration.json")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.shipped:
        real_logs(args.real, None)
        return 0
    rows = read_corpora(args.corpus or CORPORA)
    feats = load_features(rows)
    is_run = [not r["family"].startswith("printed:") for r in rows]
    train = [i for i, r in enumerate(rows) if r["split"] == "train"]
    held = [i for i, r in enumerate(rows) if r["split"] == "heldout" and is_run[i]]
    dev = score("random split, framework runs (dev: every framework seen)", [rows[i] for i in held],
                [feats[i] for i in held],
                *judge(Fold([rows[i] for i in train], [feats[i] for i in train]), [feats[i] for i in held]),
                quiet=False)
    verdicts, ranked = out_of_fold(rows, feats, framework_key)
    confidences = calibrate(rows, feats, verdicts, args.calibrate)
    runs = [i for i in range(len(rows)) if is_run[i]]
    for value in sorted({framework_key(rows[i]) for i in runs}):
        inside = [i for i in runs if framework_key(rows[i]) == value]
        score(f"leave-one-framework-out: {value} unseen", *_pick(rows, feats, verdicts, ranked, inside))
    lofo = score("leave-one-framework-out, framework runs pooled (the figure that counts)",
                 *_pick(rows, feats, verdicts, ranked, runs), quiet=False)
    for i in runs:
        if not correct(rows[i]["signature"], verdicts[i]):
            print(f"  miss {rows[i]['id']:45s} label {rows[i]['signature']} got {verdicts[i].code} "
                  f"({verdicts[i].decided_by[:90]})")
    printed = [i for i in range(len(rows)) if not is_run[i]]
    if printed:
        score("leave-one-format-out, printed corpus pooled", *_pick(rows, feats, verdicts, ranked, printed))
    calibrated_ece = ece([(confidences[i], correct(rows[i]["signature"], verdicts[i])) for i in runs])
    print(f"   calibrated confidence, leave-one-framework-out (framework runs): ECE {calibrated_ece:.3f}")
    families = {rows[i]["family"] for i in runs}
    versions = sorted(f for f in families if sum(group(o) == group(f) for o in families) > 1)
    if versions:
        for value in versions:
            inside = [i for i in runs if rows[i]["family"] == value]
            outside = [i for i in range(len(rows)) if rows[i]["family"] != value]
            fold = Fold([rows[i] for i in outside], [feats[i] for i in outside])
            score(f"leave-one-version-out: {value} unseen ({rows[inside[0]]['version']})",
                  [rows[i] for i in inside], [feats[i] for i in inside], *judge(fold, [feats[i] for i in inside]))
    real = real_logs(args.real, Fold(rows, feats))
    print("\n== summary (unseen beside seen)")
    print(f"   framework runs: leave-one-framework-out {lofo['accuracy']:.3f} (n={lofo['n']}, "
          f"false alarms {lofo['false_alarms']}, calibrated ECE {calibrated_ece:.3f}, top-1 cause "
          f"{lofo['top1']}/{lofo['known']}, top-3 {lofo['top3']}/{lofo['known']}) | random split "
          f"{dev['accuracy']:.3f} (n={dev['n']})")
    print(f"   real development set (seen): {real['accuracy']:.3f} (n={real['n']}, false alarms {real['false_alarms']})")
    print(f"({time.perf_counter() - start:.1f}s)")
    return 0


def _pick(rows: list[dict], feats: list[dict], verdicts: list, ranked: list, idx: list[int]) -> tuple[list, ...]:
    return [rows[i] for i in idx], [feats[i] for i in idx], [verdicts[i] for i in idx], [ranked[i] for i in idx]


if __name__ == "__main__":
    sys.exit(main())
