"""Train the signature model on the labelled corpus: ``python -m logsleuth.train corpus/data``.

Reads ``labels.csv`` (built by ``python -m corpus.build``), parses every training-split
log with logsleuth itself, computes the features, and fits a scikit-learn
``HistGradientBoostingClassifier`` (missing features are NaN, which it handles
natively). Writes ``logsleuth/model/signatures.joblib`` with the feature-schema version,
the feature names and the classes, and ``signatures.npz``, the same trees as arrays that
diagnosis evaluates without importing scikit-learn (:mod:`logsleuth.forest`).
Guard-decided signatures (N203, F501, F502, I000) are not the model's job and are left
out of its classes.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

MODEL_CLASSES = ("H001", "X101", "N201", "N202", "L301", "S401", "R601")
MODEL_PATH = Path(__file__).resolve().parent / "model" / "signatures.joblib"
TRAIN_HINT = "training needs scikit-learn, the [train] extra: pip install 'logsleuth[train]' (or make model)"


def require_sklearn() -> None:
    """Fail with an install hint, not a traceback: scikit-learn (and joblib, which it
    brings) is only a training dependency, absent from a runtime install."""
    import importlib.util

    if importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("joblib") is None:
        raise SystemExit(f"logsleuth.train: {TRAIN_HINT}")


def corpus_rows(root: Path, split: str) -> list[dict[str, str]]:
    with open(root / "labels.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if row["split"] == split]


def log_path(root: Path, row: dict[str, str]) -> Path:
    for candidate in (root / "logs" / f"{row['id']}.log", root / "logs" / f"{row['id']}.log.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no log for corpus row {row['id']}")


def feature_matrix(root: Path, rows: list[dict[str, str]]) -> tuple[np.ndarray, list[str]]:
    """One feature row per corpus log (parsed with logsleuth, as a user's log would be)."""
    from . import read_log
    from .classify import _bounded  # the same inf -> +-1e6 as at diagnosis
    from .features import FEATURES, compute_features

    names = [f.name for f in FEATURES]
    matrix = np.full((len(rows), len(names)), np.nan)
    for i, row in enumerate(rows):
        feats = compute_features(read_log(log_path(root, row)))
        matrix[i] = [_bounded(feats[n]) for n in names]
    return matrix, names


def fit(root: Path, seed: int = 0) -> dict:
    require_sklearn()
    from sklearn.ensemble import HistGradientBoostingClassifier

    from .features import FEATURE_SCHEMA_VERSION

    rows = [r for r in corpus_rows(root, "train") if r["signature"] in MODEL_CLASSES]
    if not rows:
        raise SystemExit(f"{root}/labels.csv has no training rows with model classes {MODEL_CLASSES}")
    X, names = feature_matrix(root, rows)
    y = np.array([r["signature"] for r in rows])
    keep = [j for j in range(X.shape[1]) if len(np.unique(X[~np.isnan(X[:, j]), j])) >= 2]
    X, names = X[:, keep], [names[j] for j in keep]  # a constant column carries nothing (and trips the binner)
    model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.08, max_leaf_nodes=15,
                                           l2_regularization=1.0, class_weight="balanced", random_state=seed)
    model.fit(X, y)
    return {"schema_version": FEATURE_SCHEMA_VERSION, "feature_names": names, "classes": list(model.classes_),
            "pipeline": model, "trained_on": len(rows), "seed": seed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="corpus folder with labels.csv and logs/")
    parser.add_argument("-o", "--output", type=Path, default=MODEL_PATH)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    require_sklearn()
    import joblib

    from .forest import export

    start = time.perf_counter()
    bundle = fit(args.corpus, args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(bundle, args.output, compress=3)
    trees = export(bundle["pipeline"], bundle["feature_names"], bundle["schema_version"])
    np.savez_compressed(args.output.with_suffix(".npz"), **trees)
    print(f"trained on {bundle['trained_on']} logs, classes {bundle['classes']}, "
          f"{time.perf_counter() - start:.1f}s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
