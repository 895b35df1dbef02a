"""The runtime install stays small: diagnosis needs no scikit-learn (it is the [train]
extra), and training without it says how to install it instead of a traceback."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib

import pytest

from logsleuth import train

from .conftest import REAL_LOGS, REPO


def test_scikit_learn_is_a_train_extra_not_a_runtime_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert not any(d.startswith("scikit-learn") for d in project["dependencies"])
    assert any(d.startswith("scikit-learn") for d in extras["train"])
    assert any(d.startswith("scikit-learn") for d in extras["dev"])


def test_diagnosis_does_not_import_scikit_learn() -> None:
    code = ("import sys; from logsleuth.api import diagnose; "
            f"d = diagnose({str(REPO / 'sample_logs' / 'caffe_sudden_nan.log')!r}); "
            "print(d.verdict.code, 'sklearn' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["N201", "False", "False"]


def test_training_without_scikit_learn_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    with pytest.raises(SystemExit, match=r"pip install 'logsleuth\[train\]'"):
        train.main([str(REPO / "corpus" / "data")])


def test_the_real_logs_are_in_the_repository() -> None:
    assert REAL_LOGS.is_relative_to(REPO) and (REAL_LOGS / "labels.csv").is_file()
    assert len(list(REAL_LOGS.glob("*.log"))) >= 40
