"""`make lint`: ruff, mypy and the import contracts (pyproject.toml holds their settings).

``parsers/`` is installed as ``logsleuth.parsers`` (a package-dir mapping) which neither
mypy nor import-linter can follow from the source tree, so both run over a temporary tree
of symbolic links with the installed layout: ``logsleuth/*`` plus ``logsleuth/parsers``.
Exit status: 0 when every check passes, else 1 (each check's own output says why).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKED = ["logsleuth", "parsers", "tests", "bench", "corpus", "tools"]


def installed_layout(root: Path) -> Path:
    """``root/logsleuth``: links to the package's entries, and ``parsers`` inside it."""
    package = root / "logsleuth"
    package.mkdir()
    for entry in (REPO / "logsleuth").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "parsers").symlink_to(REPO / "parsers")
    return package


def run(name: str, command: list[str], **kwargs: object) -> bool:
    shown = command[2:] if command[1] == "-m" else [Path(command[0]).name, *command[1:]]
    print(f"== {name}: {' '.join(shown)}", flush=True)
    ok = subprocess.run(command, **kwargs).returncode == 0  # type: ignore[call-overload]
    print(f"   {name}: {'ok' if ok else 'FAILED'}", flush=True)
    return ok


def main() -> int:
    config = str(REPO / "pyproject.toml")
    results = [run("ruff", [sys.executable, "-m", "ruff", "check", *CHECKED], cwd=REPO)]
    with tempfile.TemporaryDirectory(prefix="logsleuth-lint-") as tmp:
        installed_layout(Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        results.append(run("mypy", [sys.executable, "-m", "mypy", "--config-file", config, "-p", "logsleuth"],
                           cwd=tmp, env=env))
        lint_imports = str(Path(sys.executable).with_name("lint-imports"))
        results.append(run("import contracts", [lint_imports, "--no-cache", config], cwd=tmp, env=env))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
