"""The shipped signature model as plain arrays, evaluated with numpy.

``python -m logsleuth.train`` fits a scikit-learn ``HistGradientBoostingClassifier`` and
writes it twice: ``signatures.joblib`` (the fitted estimator, to inspect or reuse with
scikit-learn) and ``signatures.npz`` (its trees as flat arrays, :func:`export`). Diagnosis
evaluates the arrays (:class:`Forest`): importing scikit-learn and unpickling the
estimator takes about a second, longer than judging a log once it is parsed. The tests
check that both give the same probabilities.

Evaluation follows the estimator's own rule: at a split, a missing (nan) feature goes
where ``missing_go_to_left`` says, any other value goes left when ``<= num_threshold``;
each class sums its trees' leaf values over the iterations, plus the baseline, and the
probabilities are the softmax of those sums.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def export(model: Any, feature_names: Sequence[str], schema_version: int) -> dict[str, np.ndarray]:
    """The fitted classifier's trees as arrays (numeric splits only, as this project fits)."""
    nodes, roots, tree_class = [], [], []
    offset = 0
    for trees in model._predictors:  # one list per boosting iteration, one tree per class
        for k, tree in enumerate(trees):
            n = tree.nodes
            if n["is_categorical"].any():
                raise ValueError("categorical splits are not exported")
            shifted = n.copy()
            shifted["left"] = n["left"] + offset
            shifted["right"] = n["right"] + offset
            nodes.append(shifted)
            roots.append(offset)
            tree_class.append(k)
            offset += len(n)
    flat = np.concatenate(nodes)
    return {"feature": flat["feature_idx"].astype(np.int32), "threshold": flat["num_threshold"].astype(np.float64),
            "missing_left": flat["missing_go_to_left"].astype(bool), "left": flat["left"].astype(np.int32),
            "right": flat["right"].astype(np.int32), "leaf": flat["is_leaf"].astype(bool),
            "value": flat["value"].astype(np.float64), "roots": np.array(roots, np.int32),
            "tree_class": np.array(tree_class, np.int32),
            "baseline": np.asarray(model._baseline_prediction, np.float64).reshape(-1),
            "classes": np.array([str(c) for c in model.classes_]), "feature_names": np.array(list(feature_names)),
            "schema_version": np.array(schema_version)}


class Forest:
    """Signature probabilities from the exported trees."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.a = {k: np.asarray(v) for k, v in arrays.items()}
        self.classes = [str(c) for c in self.a["classes"]]
        self.feature_names = [str(n) for n in self.a["feature_names"]]
        self.schema_version = int(self.a["schema_version"])

    @classmethod
    def load(cls, path: Path | str) -> Forest:
        with np.load(path, allow_pickle=False) as data:
            return cls({k: data[k] for k in data.files})

    def predict_proba(self, row: np.ndarray) -> np.ndarray:
        """Class probabilities for one feature row (in :attr:`feature_names` order)."""
        a = self.a
        node = a["roots"].copy()
        while True:
            inner = ~a["leaf"][node]
            if not inner.any():
                break
            at = node[inner]
            x = row[a["feature"][at]]
            go_left = np.where(np.isnan(x), a["missing_left"][at], x <= a["threshold"][at])
            node[inner] = np.where(go_left, a["left"][at], a["right"][at])
        raw = a["baseline"] + np.bincount(a["tree_class"], weights=a["value"][node], minlength=len(self.classes))
        e = np.exp(raw - raw.max())
        return e / e.sum()


def shipped(resource: str) -> Forest | None:
    """The trees shipped as ``logsleuth/model/<resource>``, or None when there are none."""
    from importlib import resources

    try:
        blob = resources.files("logsleuth.model").joinpath(resource)
        if not blob.is_file():
            return None
        with resources.as_file(blob) as path:
            return Forest.load(path)
    except (ModuleNotFoundError, FileNotFoundError):
        return None
