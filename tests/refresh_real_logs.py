"""Refresh the in-repo copy of the real training logs: ``python -m tests.refresh_real_logs``.

The test suite and ``bench/accuracy.py`` read ``tests/data/real_logs/`` so that a clone of
the repository works on its own. The logs are collected in a folder beside the checkout
(``../shared/real_logs`` by default); this mirrors it: every ``*.log`` plus ``labels.csv``,
``notes.csv`` and ``README.md`` are copied, and logs no longer there are removed, so the
copy never carries a log its ``labels.csv`` does not describe. Review the diff and commit it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "tests" / "data" / "real_logs"
SOURCE = REPO.parent / "shared" / "real_logs"
META = ("labels.csv", "notes.csv", "README.md")


def wanted(source: Path) -> list[Path]:
    """The files of ``source`` that belong in the copy (labels.csv is required)."""
    if not (source / "labels.csv").is_file():
        raise SystemExit(f"refresh_real_logs: {source}: no labels.csv here; pass --source DIR")
    return sorted([*source.glob("*.log"), *(source / m for m in META if (source / m).is_file())])


def refresh(source: Path, dest: Path) -> tuple[int, int, int]:
    """Mirror ``source`` into ``dest``; returns (copied or changed, unchanged, removed)."""
    dest.mkdir(parents=True, exist_ok=True)
    files = wanted(source)
    names = {f.name for f in files}
    changed = same = 0
    for f in files:
        target = dest / f.name
        if target.is_file() and target.read_bytes() == f.read_bytes():
            same += 1
            continue
        shutil.copyfile(f, target)
        changed += 1
    stale = [p for p in dest.iterdir() if p.is_file() and p.name not in names]
    for p in stale:
        p.unlink()
    return changed, same, len(stale)


def differences(source: Path, dest: Path) -> list[str]:
    """What :func:`refresh` would change, as ``+name`` / ``~name`` / ``-name``."""
    files = wanted(source)
    names = {f.name for f in files}
    out = [("~" if (dest / f.name).is_file() else "+") + f.name for f in files
           if not (dest / f.name).is_file() or (dest / f.name).read_bytes() != f.read_bytes()]
    return out + [f"-{p.name}" for p in sorted(dest.glob("*")) if p.is_file() and p.name not in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help=f"default {SOURCE}")
    parser.add_argument("--dest", type=Path, default=DEST, help=f"default {DEST}")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 and list the differences when the copy is stale")
    args = parser.parse_args(argv)
    if args.check:
        diff = differences(args.source, args.dest)
        print(f"{args.dest}: " + (f"stale ({len(diff)}: {' '.join(diff[:10])}{' ...' if len(diff) > 10 else ''}); "
                                  "run make real-logs" if diff else "up to date"))
        return 1 if diff else 0
    changed, same, removed = refresh(args.source, args.dest)
    print(f"{args.dest}: {changed} copied or changed, {same} unchanged, {removed} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
