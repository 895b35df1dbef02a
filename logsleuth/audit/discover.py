"""Find the runs under the paths given to ``logsleuth audit``: which files make one run.

A run is a directory or a single file. Discovery looks at names only (the worker that
audits a run sniffs contents), so it stays cheap on trees of thousands of runs:

* **artefacts**: text logs (``*.log``, ``*.out``, ``*.err``, ``*.txt``, ``stdout``/
  ``stderr``, also ``.gz``/``.bz2``/``.xz``/``.zst`` compressed), TensorBoard event files
  (``*tfevents*``), ``trainer_state.json``, ``*.csv`` (Lightning ``metrics.csv``, Keras
  ``CSVLogger``), and MLflow run directories (``meta.yaml`` + ``metrics/``, one artefact).
  Checkpoints, configs, CSV files that are no metrics table (``labels.csv``; the head is
  read) and everything else are ignored.
* **grouping** (``group="auto"``): an artefact belongs to its directory, climbing out of
  directories that frameworks create *inside* a run: ``train``/``validation``/``eval``
  (Keras), ``runs/<Mon DD_HH-MM-SS_host>`` (Hugging Face's TensorBoard dir),
  ``lightning_logs/version_N``, ``checkpoint-N``, ``logs``, ``tb``, ``tensorboard`` ...
  Several loose files (text logs, CSV tables) directly in one directory are a *flat
  fleet* (``slurm-1.out slurm-2.out ...``): each is its own run -- unless structured
  artefacts (event files, ``trainer_state.json``, an inner ``metrics.csv``) come with at
  most three of them (stdout, stderr, an attempt): then they are one run. When in doubt
  this splits rather than merges: two rows for one run beat one row for forty runs, and
  ``group="dir"`` merges a directory whatever it holds. The root given on the
  command line is climbed into only when it is itself a run (it holds artefacts of its
  own); otherwise ``lightning_logs/version_0`` under a root ``lightning_logs`` stays a run.
* ``group="dir"``: every directory holding artefacts is one run, no climbing or splitting;
  ``group="file"``: every artefact is its own run.

A path given as a file is always one run. Runs come out sorted by path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError

GROUPS = ("auto", "dir", "file")

_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zstd")
_LOG_SUFFIXES = (".log", ".out", ".err", ".txt")
_LOG_NAMES = frozenset({"stdout", "stderr", "output", "log", "train_log", "console"})
_INNER_DIRS = re.compile(
    r"^(train|training|validation|val|valid|eval|evaluation|test|tb|tensorboard|tb_logs|tensorboard_logs|logs|log|"
    r"events|summaries|summary|runs|checkpoints|checkpoint-\d+|version_\d+|lightning_logs|csv_logs|metrics)$",
    re.I)
#: Hugging Face's default TensorBoard dir under ``runs/``: ``Jan01_12-30-45_hostname``
_HF_TB_DIR = re.compile(r"^[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}_")
_SKIP_DIRS = frozenset({".git", "__pycache__", ".ipynb_checkpoints", "wandb", ".cache"})
#: loose text logs that still make one run when structured artefacts come with them
MAX_LOGS_PER_RUN = 3


@dataclass(frozen=True)
class Artifact:
    """One piece of evidence of a run: ``kind`` is ``log``, ``tfevents``, ``json``, ``csv``
    (sniffed when read) or ``mlflow`` (a run directory)."""

    path: str
    kind: str
    size: int


@dataclass(frozen=True)
class Run:
    """The unit of the audit (one output row): a directory or a single file."""

    path: str
    artifacts: tuple[Artifact, ...]

    @property
    def size(self) -> int:
        return sum(a.size for a in self.artifacts)


def classify_name(name: str) -> str | None:
    """The artefact kind a file name promises, or None (not evidence)."""
    low = name.lower()
    if "tfevents" in low:
        return "tfevents"
    for suffix in _COMPRESSED:
        if low.endswith(suffix):
            low = low[: -len(suffix)]
            break
    if low.endswith("trainer_state.json"):
        return "json"
    if low.endswith(".csv"):
        return "csv"
    if low.endswith(_LOG_SUFFIXES) or low in _LOG_NAMES:
        return "log" if "requirements" not in low and not low.startswith(("license", "readme")) else None
    return None


def _metrics_table(path: str) -> bool:
    """A CSV that is a run's metrics table, told as diagnose tells it (a compressed one
    from its decompressed head; one whose header alone passes the head, from more)."""
    from ..artifacts import artifact_kind

    try:
        with open(path, "rb"):
            pass
    except OSError:
        return True  # unreadable: let the audit report it as a row with an error
    return artifact_kind(path) in ("lightning_csv", "keras_csv", "csv_metrics")


def _is_mlflow_run(path: str, dirs: list[str], files: list[str]) -> bool:
    return "metrics" in dirs and "meta.yaml" in files


def _dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(h, f)) for h, _, fs in os.walk(path) for f in fs)


def _walk(root: str) -> dict[str, list[Artifact]]:
    """Artefacts per directory (MLflow run directories are one artefact of their parent)."""
    found: dict[str, list[Artifact]] = {}
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        if _is_mlflow_run(here, dirs, files):
            found.setdefault(os.path.dirname(here), []).append(Artifact(here, "mlflow", _dir_size(here)))
            dirs[:] = []
            continue
        for name in sorted(files):
            kind = classify_name(name)
            path = os.path.join(here, name)
            if kind == "csv" and not _metrics_table(path):
                continue  # labels.csv, a dataset index: not evidence
            if kind:
                try:
                    size = os.path.getsize(path)
                except OSError:
                    size = 0
                found.setdefault(here, []).append(Artifact(path, kind, size))
    return found


def _inner(path: str) -> bool:
    """A directory a framework makes inside a run (climbed out of when grouping)."""
    name = os.path.basename(path)
    return bool(_INNER_DIRS.match(name)) or (
        bool(_HF_TB_DIR.match(name)) and os.path.basename(os.path.dirname(path)).lower() == "runs")


def _split(path: str, artifacts: list[Artifact]) -> list[Run]:
    """The runs of one group: an MLflow run is always its own; several loose files (text
    logs, CSV tables) directly in ``path`` are separate runs unless structured artefacts
    come with them (then up to :data:`MAX_LOGS_PER_RUN` are stdout, stderr, attempts)."""
    runs = [Run(a.path, (a,)) for a in artifacts if a.kind == "mlflow"]
    rest = [a for a in artifacts if a.kind != "mlflow"]
    loose = [a for a in rest if a.kind in ("log", "csv") and os.path.dirname(a.path) == path]
    other = [a for a in rest if not (a.kind in ("log", "csv") and os.path.dirname(a.path) == path)]
    if len(loose) >= 2 and (not other or len(loose) > MAX_LOGS_PER_RUN):
        runs += [Run(a.path, (a,)) for a in loose]
        rest = other
    if rest:
        runs.append(Run(path, tuple(rest)))
    return runs


def _group_auto(root: str, found: dict[str, list[Artifact]]) -> list[Run]:
    own = [a for a in found.get(root, []) if a.kind != "mlflow"]
    root_is_run = len(_split(root, own)) == 1
    groups: dict[str, list[Artifact]] = {}
    for here, artifacts in found.items():
        target = here
        while target != root and _inner(target):
            parent = os.path.dirname(target)
            if parent == root and not root_is_run:
                break
            target = parent
        groups.setdefault(target, []).extend(artifacts)
    return [run for path, artifacts in groups.items() for run in _split(path, artifacts)]


def discover(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], group: str = "auto") -> list[Run]:
    """The runs under ``paths`` (files and directories), sorted by path, each once.

    Raises
    ------
    InputError
        A path does not exist, or ``group`` is unknown.
    """
    if group not in GROUPS:
        raise InputError(f"unknown grouping {group!r}; use one of {', '.join(GROUPS)}")
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    runs: dict[str, Run] = {}
    for item in items:
        path = os.path.abspath(os.fspath(item))
        if not os.path.exists(path):
            raise InputError(f"{item}: no such file or directory")
        if os.path.isfile(path):
            kind = classify_name(os.path.basename(path)) or "log"
            runs.setdefault(path, Run(path, (Artifact(path, kind, os.path.getsize(path)),)))
            continue
        found = _walk(path)
        if group == "file":
            found_runs = [Run(a.path, (a,)) for arts in found.values() for a in arts]
        elif group == "dir":
            found_runs = [Run(a.path, (a,)) for arts in found.values() for a in arts if a.kind == "mlflow"]
            found_runs += [Run(here, tuple(a for a in arts if a.kind != "mlflow")) for here, arts in found.items()
                           if any(a.kind != "mlflow" for a in arts)]
        else:
            found_runs = _group_auto(path, found)
        for run in found_runs:
            runs.setdefault(run.path, run)
    return [runs[k] for k in sorted(runs)]


def run_files(run: Run) -> list[str]:
    """Every file whose content makes up the run (what its content hash covers), sorted."""
    out = []
    for a in run.artifacts:
        if os.path.isdir(a.path):
            out += [os.path.join(h, f) for h, _, fs in os.walk(a.path) for f in fs]
        else:
            out.append(a.path)
    return sorted(out)
