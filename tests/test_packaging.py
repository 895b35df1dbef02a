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


def test_scanning_a_log_for_diagnosis_does_not_import_pandas(tmp_path) -> None:
    """pandas (about 50 MB) is imported once the rows are read (the run's frame and the
    features), not while the chunks are scanned: the row sample works in Arrow."""
    from .test_diagnose import caffe, descending

    log = tmp_path / "long.log"
    log.write_text(caffe(descending(3_000, every=10)))
    code = ("import sys; from logsleuth import api, io, parallel, sample; "
            "sample.WINDOW = io.CHUNK = parallel.CHUNK = 16_384; "  # many chunks, a sample that strides
            f"parse = api.start_parse({str(log)!r}, None); "
            "s = sample.RowSample(window=300); [s.add(f) for f in parse.frames()]; t = s.tables(); "
            "print(s.dropped > 0, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False"]


@pytest.mark.parametrize("chosen", [None, "mimalloc"])
def test_the_command_line_has_arrow_allocate_through_the_system_allocator(chosen) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    code = ("import sys, pyarrow as pa; from logsleuth.allocator import return_freed_memory; "
            "return_freed_memory(); print(pa.default_memory_pool().backend_name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == (chosen or "system")
