"""Make the example jobs' checkpoints and logs: ``python examples/replay/make_checkpoints.py OUTDIR``.

Each example runs its "original job" (:func:`_common.train`) from a seeded
initialisation until a few steps past its failure, saving the checkpoint just before
``CHECKPOINT_STEP`` and the training log, both deterministic and small (a few KB). It
then prints the commands of the user's path: diagnose the log, replay the failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import train  # noqa: E402

#: example module -> the cause its replay must confirm
EXAMPLES = {
    "corrupt_sample": "C09",
    "lr_too_high": "C01",
    "unsafe_log": "C06",
    "fp16_overflow": "C10",
    "exploding_rnn": "C02",
}


@dataclass(frozen=True)
class Made:
    """One example job's files: its adapter, checkpoint and log, and where it failed."""

    name: str
    adapter: Path
    checkpoint: Path
    log: Path
    checkpoint_step: int
    fail_step: int | None


def make(name: str, outdir: str | Path) -> Made:
    """Run example ``name``'s job into ``outdir``: ``<name>.pt`` and ``<name>.log``."""
    module = importlib.import_module(name)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint, log = out / f"{name}.pt", out / f"{name}.log"
    failed = train(module.adapter, module.FAIL_STEP + 3, module.CHECKPOINT_STEP, checkpoint, log)
    return Made(name, HERE / f"{name}.py", checkpoint, log, module.CHECKPOINT_STEP, failed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="where to write <example>.pt and <example>.log")
    parser.add_argument("names", nargs="*", choices=[*EXAMPLES, []], help="examples to make (default: all)")
    args = parser.parse_args(argv)
    for name in args.names or EXAMPLES:
        made = make(name, args.outdir)
        print(f"{name}: checkpoint at step {made.checkpoint_step}, non-finite at step {made.fail_step} "
              f"(expect {EXAMPLES[name]})")
        print(f"  logsleuth diagnose {made.log} --report {made.log.with_suffix('.json')}")
        print(f"  logsleuth replay --adapter {made.adapter} --checkpoint {made.checkpoint} "
              f"--from-diagnosis {made.log.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
