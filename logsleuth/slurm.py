"""Find a Slurm job's output file(s), for ``logsleuth postmortem``.

The job's record comes from ``scontrol show job ID`` (``StdOut=``, ``StdErr=``,
``WorkDir=``, ``ArrayJobId=``, ...); where scontrol is missing, slow or has forgotten the
job (finished records go after ``MinJobAge``, 300 s by default), the environment the
epilog or the job itself gets (``SLURM_JOB_ID``, ``SLURM_ARRAY_*``, ``SLURM_SUBMIT_DIR``,
...) and Slurm's default name (``slurm-%j.out``, ``slurm-%A_%a.out`` for arrays) stand in.

Filename patterns are expanded as sbatch does (``%j %J %A %a %x %u %N %n %s %t %%``, with
zero padding such as ``%4a``), because older scontrol versions print them unexpanded.
Earlier tasks of an array (a chain such as ``--array=1-10%1``, where each task resumes
the last) are found on disk from the pattern, since the controller forgets them: they are
the attempts of one job, which is evidence (recurrence at the same step).
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InputError

#: what Slurm substitutes for ``%a`` in a job that is not an array (NO_VAL)
NO_ARRAY_TASK = "4294967294"
_TOKEN = re.compile(r"%(\d*)([AajJNnstux%])")
_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=")
_SCONTROL_OUTPUT_MAX = 8 << 20  # bytes: a huge array's records, bounded


@dataclass(frozen=True)
class JobLogs:
    """A job's log files, oldest attempt first, and where they were found."""

    label: str  # "4242" or "4242_7", for the verdict line and the ledger
    logs: tuple[str, ...]
    alternates: tuple[str, ...]  # StdErr files when the job splits them: used if StdOut has no metrics
    source: str  # "scontrol" or "environment"
    fields: Mapping[str, str]


def parse_records(text: str) -> list[dict[str, str]]:
    """``scontrol show job`` output (multi-line or ``--oneliner``) as one dict per job.

    A record starts at ``JobId=``; values may contain spaces (``Command=/a b.sh``) and
    ``=`` (``TRES=cpu=1``): a key is a word right after whitespace, followed by ``=``."""
    records, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("JobId=") and current.strip():
            records.append(current)
            current = ""
        current += " " + line.strip()
    if current.strip():
        records.append(current)
    return [_fields(r) for r in records if "JobId=" in r]


def _fields(record: str) -> dict[str, str]:
    keys = list(_KEY.finditer(record))
    out = {}
    for k, nxt in zip(keys, [*keys[1:], None]):
        out[k.group(1)] = record[k.end(): nxt.start() if nxt else len(record)].strip()
    return out


def substitutions(fields: Mapping[str, str]) -> dict[str, str]:
    """The value of each pattern letter for one job record."""
    job = fields.get("JobId", "")
    task = fields.get("ArrayTaskId", "") or NO_ARRAY_TASK
    node = (fields.get("BatchHost") or fields.get("NodeList") or "").split(",")[0].split(".")[0]
    return {"j": job, "J": job, "A": fields.get("ArrayJobId", "") or job, "a": task,
            "x": fields.get("JobName", ""), "u": fields.get("UserId", "").split("(")[0],
            "N": node, "n": "0", "t": "0", "s": "batch", "%": "%"}


def expand(pattern: str, fields: Mapping[str, str], overrides: Mapping[str, str] | None = None) -> str:
    """An sbatch filename pattern with this job's values; relative to ``WorkDir``."""
    values = {**substitutions(fields), **(overrides or {})}

    def one(m: re.Match[str]) -> str:
        value = values[m.group(2)]
        pad = int(m.group(1)) if m.group(1) else 0
        return value.zfill(pad) if value.isdigit() else value

    path = _TOKEN.sub(one, pattern)
    workdir = fields.get("WorkDir", "")
    return os.path.join(workdir, path) if workdir and not os.path.isabs(path) else path


def scontrol_records(job_id: str, timeout: float) -> list[dict[str, str]]:
    """``scontrol show job JOB_ID``, parsed; an :class:`InputError` when it fails."""
    try:
        done = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=max(timeout, 0.1), check=False)
    except FileNotFoundError:
        raise InputError("scontrol not found on PATH") from None
    except subprocess.TimeoutExpired:
        raise InputError(f"scontrol show job {job_id}: no answer in {timeout:.0f} s") from None
    text = done.stdout[:_SCONTROL_OUTPUT_MAX].decode("utf-8", "replace")
    if done.returncode != 0 or "JobId=" not in text:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"scontrol show job {job_id}: {err[-1] if err else f'exit {done.returncode}'}")
    return parse_records(text)


def environment_record(env: Mapping[str, str], job_id: str) -> dict[str, str]:
    """The fields scontrol would give, from what Slurm puts in the environment."""
    same_job = env.get("SLURM_JOB_ID") == job_id
    fields = {"JobId": job_id, "WorkDir": env.get("SLURM_SUBMIT_DIR", "") if same_job else os.getcwd()}
    if same_job:
        fields.update(ArrayJobId=env.get("SLURM_ARRAY_JOB_ID", ""), ArrayTaskId=env.get("SLURM_ARRAY_TASK_ID", ""),
                      JobName=env.get("SLURM_JOB_NAME", ""), UserId=env.get("SLURM_JOB_USER", ""),
                      BatchHost=env.get("SLURMD_NODENAME", ""),
                      StdOut=env.get("SLURM_JOB_STDOUT", ""), StdErr=env.get("SLURM_JOB_STDERR", ""))
    return {k: v for k, v in fields.items() if v}


def _default_pattern(fields: Mapping[str, str]) -> str:
    return "slurm-%A_%a.out" if fields.get("ArrayTaskId") else "slurm-%j.out"


def _pick(records: list[dict[str, str]], job_id: str) -> dict[str, str]:
    """The record of ``job_id`` itself (``123``, or ``123_4`` for one array task)."""
    for r in records:
        task = f"{r.get('ArrayJobId')}_{r.get('ArrayTaskId')}"
        if job_id in (r.get("JobId"), task):
            return r
    return records[-1]


def array_siblings(pattern: str, fields: Mapping[str, str], limit: int) -> list[str]:
    """Earlier tasks' output files of the same array (task id <= this one), oldest first.

    With ``%a`` in the pattern, the other tasks are globbed from it (``%j`` differs per
    task too); with a pattern scontrol has already expanded, from the ``<array>_<task>``
    part of the name."""
    task = fields.get("ArrayTaskId", "")
    if not task.isdigit() or limit <= 1:
        return []
    if "%a" in pattern or re.search(r"%\d+a", pattern):
        wild = expand(pattern, fields, {"a": "\0", "j": "\1", "J": "\1"})
    else:
        here = expand(pattern, fields)
        stem = f"{fields.get('ArrayJobId', '')}_{task}"
        if stem not in os.path.basename(here):
            return []
        head, name = os.path.split(here)
        wild = os.path.join(head, name.replace(stem, f"{fields.get('ArrayJobId', '')}_\0"))
    rx = re.compile(re.escape(wild).replace("\\\0", r"0*(\d+)").replace("\0", r"0*(\d+)")
                    .replace("\\\1", r"\d+").replace("\1", r"\d+") + r"\Z")
    found = []
    for path in glob.glob(glob.escape(wild).replace("\0", "*").replace("\1", "*")):
        m = rx.match(path)
        if m and int(m.group(1)) <= int(task):
            found.append((int(m.group(1)), path))
    return [p for _, p in sorted(found)][-limit:]


def find_job_logs(job_id: str, env: Mapping[str, str], timeout: float, max_attempts: int = 8) -> JobLogs:
    """The output file(s) of ``job_id``: this task's, after earlier array tasks' ones."""
    try:
        fields, source = _pick(scontrol_records(job_id, timeout), job_id), "scontrol"
    except InputError:
        fields, source = environment_record(env, job_id), "environment"
    out_pattern = fields.get("StdOut") or _default_pattern(fields)
    err_pattern = fields.get("StdErr") or out_pattern
    logs = array_siblings(out_pattern, fields, max_attempts)
    this = expand(out_pattern, fields)
    logs = [p for p in logs if p != this][-(max_attempts - 1):] if max_attempts > 1 else []
    err = expand(err_pattern, fields)
    label = f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}" if fields.get("ArrayTaskId") else job_id
    return JobLogs(label=label, logs=(*logs, this), alternates=(err,) if err != this else (),
                   source=source, fields=fields)
