"""Train the signature model on labelled corpora:
``python -m logsleuth.train corpus/framework_runs corpus/data``.

Reads each corpus's ``labels.csv`` (see :mod:`logsleuth.corpora`: real framework runs,
and the printed corpus for the frameworks that cannot run here), parses every training
log with logsleuth itself, computes the features, and fits a scikit-learn
``HistGradientBoostingClassifier`` (missing features are NaN, which it handles
natively). Writes ``logsleuth/model/signatures.joblib`` with the feature-schema version,
the feature names and the classes, and ``signatures.npz``, the same trees as arrays that
diagnosis evaluates without importing scikit-learn (:mod:`logsleuth.forest`).
Guard-decided signatures (N203, F501, F502, I000) are not the model's job and are left
out of its classes. ``--all`` trains on the held-out rows too (the shipped model: every
figure about unseen logs comes from ``bench/accuracy.py``'s folds, not from this fit).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_CLASSES = ("H001", "X101", "N201", "N202", "L301", "S401", "R601")
MODEL_PATH = Path(__file__).resolve().parent / "model" / "signatures.joblib"
#: the cause model's trees (the same export as the signature model's), beside it
CAUSES_PATH = MODEL_PATH.with_name("causes.npz")
#: verdict codes the cause model sees as 0/1 columns ``verdict=<code>``
CAUSE_SIGNATURES = (*MODEL_CLASSES, "N203", "F501", "F502")
VERDICT_COLUMNS = tuple(f"verdict={c}" for c in CAUSE_SIGNATURES)
#: injected cause names of the corpora -> catalog cause codes (what the cause model learns)
CAUSE_CODES = {"lr_far_too_high": "C01", "lr_too_high_gradual": "C01", "rnn_no_clip": "C02",
               "loss_weight_too_large": "C03", "unnormalised_input": "C04", "bad_init": "C05",
               "unsafe_log": "C06", "label_count_zero": "C07", "softmax_overflow": "C08",
               "corrupt_sample": "C09", "fp16_collapse": "C10", "lr_far_too_low": "C12", "dead_network": "C12",
               "lr_zero": "C12", "fp16_benign": "C15"}
TRAIN_HINT = "training needs scikit-learn, the [train] extra: pip install 'logsleuth[train]' (or make model)"


def require_sklearn() -> None:
    """Fail with an install hint, not a traceback: scikit-learn (and joblib, which it
    brings) is only a training dependency, absent from a runtime install."""
    import importlib.util

    if importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("joblib") is None:
        raise SystemExit(f"logsleuth.train: {TRAIN_HINT}")


def features_of(path: str) -> dict[str, float]:
    """The features of one corpus log, parsed as a user's log would be."""
    from .api import read_run
    from .features import compute_features

    return compute_features(read_run(path))


def feature_rows(rows: Sequence[dict[str, str]], progress: bool = False) -> list[dict[str, float]]:
    """Features of every row's log (the slow part: each log is parsed)."""
    out = []
    for i, row in enumerate(rows):
        out.append(features_of(row["path"]))
        if progress and (i + 1) % 200 == 0:
            print(f"  features: {i + 1}/{len(rows)} logs", file=sys.stderr)
    return out


def matrix(features: Sequence[dict[str, float]]) -> tuple[np.ndarray, list[str]]:
    from .classify import _bounded  # the same inf -> +-1e6 as at diagnosis
    from .features import FEATURES

    names = [f.name for f in FEATURES]
    return np.array([[_bounded(f[n]) for n in names] for f in features], dtype=np.float64).reshape(-1, len(names)), \
        names


def fit_rows(rows: Sequence[dict[str, str]], features: Sequence[dict[str, float]], seed: int = 0) -> dict:
    """Fit on the rows whose signature is a model class; returns the model bundle."""
    kept = [i for i, r in enumerate(rows) if r["signature"] in MODEL_CLASSES]
    if not kept:
        raise SystemExit(f"no training rows with model classes {MODEL_CLASSES}")
    X, names = matrix([features[i] for i in kept])
    return _fit(X, names, np.array([rows[i]["signature"] for i in kept]), seed)


def cause_matrix(features: Sequence[dict[str, float]], codes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """The feature matrix of :func:`matrix` plus one 0/1 column per verdict code
    (:data:`VERDICT_COLUMNS`): which signature the log shows is itself evidence of the cause."""
    X, names = matrix(features)
    onehot = np.array([[float(code == c) for c in CAUSE_SIGNATURES] for code in codes]).reshape(-1, len(VERDICT_COLUMNS))
    return np.hstack([X, onehot]), [*names, *VERDICT_COLUMNS]


def cause_rows(rows: Sequence[dict[str, str]]) -> list[int]:
    """Rows that teach causes: a known injected cause (:data:`CAUSE_CODES`) behind a failure
    or a stall, the run's measured signature beside it."""
    return [i for i, r in enumerate(rows) if r.get("cause") in CAUSE_CODES and r["signature"] in CAUSE_SIGNATURES
            and r["signature"] not in ("H001", "I000")]


def fit_causes(rows: Sequence[dict[str, str]], features: Sequence[dict[str, float]], seed: int = 0) -> dict | None:
    """Fit the cause model (catalog cause code from features + measured signature); None
    when the rows teach fewer than two causes."""
    kept = cause_rows(rows)
    y = np.array([CAUSE_CODES[rows[i]["cause"]] for i in kept])
    if len(set(y.tolist())) < 2:
        return None
    X, names = cause_matrix([features[i] for i in kept], [rows[i]["signature"] for i in kept])
    return _fit(X, names, y, seed, balanced=False)


def _fit(X: np.ndarray, names: list[str], y: np.ndarray, seed: int, balanced: bool = True) -> dict:
    """Boosted trees on ``X``. Signatures are fitted with balanced class weights (each
    signature matters as much as any other); causes without (``balanced=False``): how
    often a cause lies behind a signature is itself the evidence, and reweighting would
    push a rare cause onto any log unlike the runs that taught it."""
    require_sklearn()
    from sklearn.ensemble import HistGradientBoostingClassifier

    from .features import FEATURE_SCHEMA_VERSION

    keep = [j for j in range(X.shape[1]) if len(np.unique(X[~np.isnan(X[:, j]), j])) >= 2]
    X, names = X[:, keep], [names[j] for j in keep]  # a constant column carries nothing (and trips the binner)
    model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.08, max_leaf_nodes=15,
                                           l2_regularization=1.0, class_weight="balanced" if balanced else None,
                                           random_state=seed)
    model.fit(X, y)
    return {"schema_version": FEATURE_SCHEMA_VERSION, "feature_names": names, "classes": list(model.classes_),
            "pipeline": model, "trained_on": len(y), "seed": seed}


def forest_of(bundle: dict) -> Any:
    """The bundle's trees as a :class:`~logsleuth.forest.Forest` (what diagnosis evaluates)."""
    from .forest import Forest, export

    return Forest(export(bundle["pipeline"], bundle["feature_names"], bundle["schema_version"]))


def main(argv: list[str] | None = None) -> int:
    from .corpora import read_corpora

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=Path, nargs="+", help="corpus folders with labels.csv")
    parser.add_argument("-o", "--output", type=Path, default=MODEL_PATH)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="train on the held-out split too")
    args = parser.parse_args(argv)
    require_sklearn()
    import joblib

    from .forest import export

    start = time.perf_counter()
    rows = [r for r in read_corpora(args.corpora) if args.all or r["split"] == "train"]
    features = feature_rows(rows, progress=True)
    bundle = fit_rows(rows, features, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(bundle, args.output, compress=3)
    trees = export(bundle["pipeline"], bundle["feature_names"], bundle["schema_version"])
    np.savez_compressed(args.output.with_suffix(".npz"), **trees)  # type: ignore[arg-type]
    causes = fit_causes(rows, features, args.seed)
    if causes is not None:
        np.savez_compressed(args.output.with_name(CAUSES_PATH.name),
                            **export(causes["pipeline"], causes["feature_names"], causes["schema_version"]))  # type: ignore[arg-type]
        print(f"cause model: {causes['trained_on']} logs with a known cause, classes {[str(c) for c in causes['classes']]}")
    families = sorted({r["family"] for r in rows})
    print(f"trained on {bundle['trained_on']} logs of {len(families)} families, classes {[str(c) for c in bundle['classes']]}, "
          f"{time.perf_counter() - start:.1f}s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
