"""The dataset card (``README.md``) written by :mod:`corpus.build`, counts included."""

from __future__ import annotations

import inspect
import sys
from collections import Counter
from pathlib import Path

from . import causes, label, render, variations
from .printers import PRINTERS

_SIGS = ("H001", "S401", "R601", "F501", "F502", "L301", "X101", "N201", "N202", "N203")
_TITLES = {"H001": "healthy", "S401": "stalled", "R601": "recovered spike", "F501": "benign fp16 overflow",
           "F502": "loss-scale collapse", "L301": "early blowup", "X101": "exploding loss",
           "N201": "sudden nan", "N202": "nan at a fixed iteration", "N203": "nan hidden by the logger"}


def _table(rows: list[dict], key: str, cols: list[str], col_key: str) -> list[str]:
    counts = Counter((r[key], r[col_key]) for r in rows)
    keys = sorted({r[key] for r in rows}, key=lambda k: (_SIGS.index(k) if k in _SIGS else 99, k))
    out = [f"| {key} | " + " | ".join(cols) + " | total |", "|---" * (len(cols) + 2) + "|"]
    for k in keys:
        vals = [counts[(k, c)] for c in cols]
        out.append(f"| {k} {_TITLES.get(k, '')} | " + " | ".join(str(v) for v in vals) + f" | {sum(vals)} |")
    tot = [sum(counts[(k, c)] for k in keys) for c in cols]
    out.append("| total | " + " | ".join(str(v) for v in tot) + f" | {sum(tot)} |")
    return out


def _doc(obj: object) -> str:
    return inspect.cleandoc(obj.__doc__ or "")


def readme(rows: list[dict], runs_info: list[dict], summary: dict, stats: dict, out: Path) -> str:
    formats = sorted({r["format"] for r in rows})
    heldout_seeds = sorted({r["seed"] for r in rows if r["split"] == "heldout"})
    lines = [
        "# logsleuth training-log corpus",
        "",
        "A reproducible, labelled corpus of deep-learning training logs for training and evaluating a",
        "failure-signature classifier. Every log comes from a **real training run** of a tiny PyTorch",
        "model on the CPU (2-layer MLP on Gaussian blobs, small CNN on 8x8 synthetic images, GRU on",
        "synthetic sequences, linear / MLP regression with MSE) with one injected cause (or none);",
        "the trajectory is printed the way each framework prints it, and each log's signature is",
        "**measured** on the loss values that log prints (by the same rules as the full-resolution",
        "trajectory signature, which is kept beside it), never taken from the cause. Nothing is downloaded.",
        "",
        "## Rebuild",
        "",
        "```",
        "/work/main/.venv/bin/pip install torch==2.13.0        # CPU wheel, once",
        "python -m corpus.build --out corpus/data              # default corpus",
        "python -m corpus.build --out /tmp/c --quick           # ~60 logs, under two minutes",
        "python -m corpus.validate corpus/data                 # re-check logs against logsleuth",
        "```",
        "",
        f"This build: `--seed {stats['seed']}`, {stats['runs']} runs, {stats['logs']} logs. The same seed and",
        "run count give byte-identical files (gzip timestamps are zeroed); only `build_info.json` (timing)",
        "differs between builds.",
        "",
        "## Layout",
        "",
        "* `labels.csv` -- one row per log (columns below);",
        "* `logs/<run>-<k>-<format>.log.gz` -- the rendered logs (gzip; `logsleuth` reads them as is);",
        "* `trajectories/<run>.jsonl.gz` -- the full per-step record of each run (see `corpus/store.py`):",
        "  a header (spec, injected cause, measured signature with its evidence), one line per step",
        "  (attempt, step, epoch, it, loss, grad_norm, lr, acc, scale, overflow, loss terms) and one",
        "  line per attempt (start, resumed_from, end);",
        "* `runs.json` -- per-run summary; `validation.json` -- the logsleuth check (below);",
        "  `build_info.json` -- build time.",
        "",
        "### labels.csv columns",
        "",
        "* `id`, `format` (the logsleuth format name the log was rendered in), `path`;",
        "* `signature` -- measured on the loss values the log prints (see rules and rendering labels;",
        "  a few signatures keep the full-resolution one), or `N203` for a rendering that hides the nan;",
        "* `first_nonfinite_step` -- the step of the first line showing a non-finite value or event, in",
        "  the step convention of the format as the log prints it (Caffe `Iteration N` and detectron2",
        "  `iter` are 0-based, Keras / Lightning / mmcv count `(epoch) * T + batch`, the MNIST template",
        "  counts samples, a Hugging Face log without a progress bar counts logged dicts); a line that",
        "  prints no step gets the last step printed before it (`first_nonfinite_exact` = 0); `?` when",
        "  nothing before it printed a step; empty when nothing is non-finite. For `N203` it is the",
        "  trajectory's first non-finite step in the format's convention;",
        "* `first_nonfinite_line` -- its physical line (1-based) in the log;",
        "* `injected_cause`, `model`, `seed`, `log_interval`, `variation` (`+`-joined: `restarts`,",
        "  `noise`, `ansi`, `ranks`, `truncate_head`, `truncate_tail`, or `plain`), `split`;",
        "* `trajectory`, `trajectory_signature` (measured on the full-resolution trajectory: it differs",
        "  from `signature` where the log does not print what decided it), `attempts`, `max_steps`,",
        "  `steps_per_epoch`, `batch_size`, `lr`, `optimizer`, `options` (the printer's variant choices, JSON).",
        "",
        "## Label rules (corpus/label.py)",
        "",
        _doc(label),
        "",
        "### Rendering labels (corpus/render.py)",
        "",
        _doc(render),
        "",
        "## Split",
        "",
        "* `heldout` = every log of a run whose seed is 3 mod 4 (seeds never seen in `train`);",
        "* the formats `mmcv` and `detectron2` render held-out runs only: they never occur in `train`.",
        "",
        f"Held-out seeds in this build: {len(heldout_seeds)} runs.",
        "",
        "## Formats and variations",
        "",
    ]
    for p in PRINTERS:
        lines += [f"### `{p.name}`{' (held out)' if p.heldout else ''}", "",
                  _doc(sys.modules[type(p).__module__]), ""]
    lines += ["### Variations", "", _doc(variations), "", "## Injected causes (corpus/causes.py)", ""]
    for name, (_, weight) in causes.CAUSES.items():
        lines.append(f"* `{name}` (relative frequency {weight}): {causes.NOTES[name]}")
    lines += ["", _doc(causes), "", "## Counts", "", "### Signature x split", ""]
    lines += _table(rows, "signature", ["train", "heldout"], "split")
    lines += ["", "### Signature x format", ""]
    lines += _table(rows, "signature", formats, "format")
    lines += ["", "### Injected cause x measured trajectory signature (runs)", ""]
    sigs = [s for s in _SIGS if any(r["signature"] == s for r in runs_info)]
    lines += _table([{"cause": r["cause"], "sig": r["signature"]} for r in runs_info], "cause", sigs, "sig")
    lines += ["", "## Validation against logsleuth.read_log", "",
              f"* {summary['logs']} logs read, {summary['read_errors']} read errors;",
              f"* detected as another format than rendered: {summary['detection_warnings']} "
              f"{summary['detected_as'] or ''};",
              f"* first non-finite step agreement (labels with an integer step, signature not N203): "
              f"{summary['agree']}/{summary['comparable']} = {summary['agreement']};",
              f"* a non-finite moment found at all in logs that have one (N203 and `?` included): "
              f"{summary['nonfinite_found']}/{summary['nonfinite_logs']} = {summary['found_rate']}; "
              f"false alarms on logs without one: {summary['false_alarms']}.", "",
              "| format | logs | other format | step agrees | comparable | rate | found | non-finite logs |"
              " false alarms |", "|---|---|---|---|---|---|---|---|---|"]
    for fmt, c in summary["per_format"].items():
        lines.append(f"| {fmt} | {c.get('logs', 0)} | {c.get('detected_other', 0)} | {c.get('agree', 0)} | "
                     f"{c.get('comparable', 0)} | {c['agreement']} | {c.get('found', 0)} | {c.get('nonfinite', 0)} | "
                     f"{c.get('false_alarm', 0)} |")
    lines += ["", "Disagreements are listed in `validation.json`; most come from log shapes the parser does",
              "not read yet (see the notes in `corpus/NOTES.md`).", ""]
    return "\n".join(lines)
