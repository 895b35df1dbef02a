"""Labelled corpora as one list of rows, for training and for the accuracy benchmark.

Two kinds of corpus are read:

* ``corpus/framework_runs`` -- real CPU trainings run through the real frameworks (the
  Hugging Face Trainer, Lightning, Keras, PyTorch loops, ...; see
  ``corpus/frameworks/README.md``): what each framework itself wrote, labelled by
  measuring the loss the code computed. Its ``family`` is the framework (``hf``, ``hf4``,
  ``keras``...), its ``version`` the installed release.
* ``corpus/data`` -- the printed corpus: real tiny PyTorch runs rendered by the
  project's printers. Only the formats of frameworks that cannot run here are kept
  (Caffe, Megatron, detectron2, fairseq, DeepSpeed's engine, mmcv, TF1): where the real
  framework runs, what it writes is the teacher, not an imitation of it.

A row is a plain dict: ``id``, ``path`` (absolute), ``signature``, ``family``,
``version``, ``split`` (``train`` / ``heldout``, the random split the dev figure uses).
"""

from __future__ import annotations

import csv
import zlib
from pathlib import Path

#: printer formats whose framework runs here: their printed logs are not trained on
RUNNABLE_FORMATS = frozenset({"hf_trainer", "lightning", "keras", "pytorch"})
#: every fifth framework run (by a hash of its id) is held out for the random split
_HELDOUT_ONE_IN = 5


def read_corpus(root: Path) -> list[dict[str, str]]:
    """The rows of one corpus folder (either kind, told apart by its columns)."""
    root = root.resolve()
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and "framework" in rows[0]:
        return [_framework_row(root, r) for r in rows]
    return [_printed_row(root, r) for r in rows if r["format"] not in RUNNABLE_FORMATS]


def read_corpora(roots: list[Path]) -> list[dict[str, str]]:
    """Rows of every corpus folder given, in order; missing folders are skipped."""
    return [row for root in roots if (root / "labels.csv").exists() for row in read_corpus(root)]


def _framework_row(root: Path, r: dict[str, str]) -> dict[str, str]:
    split = "heldout" if zlib.crc32(r["id"].encode()) % _HELDOUT_ONE_IN == 0 else "train"
    return {"id": r["id"], "path": str(root / r["path"]), "signature": r["signature"],
            "family": r["framework"], "version": r.get("framework_version", ""), "split": split,
            "cause": r.get("injected_cause", "")}


def _printed_row(root: Path, r: dict[str, str]) -> dict[str, str]:
    path = root / "logs" / f"{r['id']}.log"
    if not path.exists():
        path = root / "logs" / f"{r['id']}.log.gz"
    return {"id": r["id"], "path": str(path), "signature": r["signature"], "family": f"printed:{r['format']}",
            "version": "", "split": r["split"], "cause": r.get("injected_cause", "")}


__all__ = ["read_corpus", "read_corpora", "RUNNABLE_FORMATS"]
