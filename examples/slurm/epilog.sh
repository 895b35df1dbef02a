#!/bin/bash
# Slurm epilog: diagnose the finished job's training log with logsleuth.
#
#   slurm.conf (every compute node):  Epilog=/etc/slurm/epilog.d/logsleuth.sh
#
# slurmd runs it as root after every job, with SLURM_JOB_ID, SLURM_JOB_USER,
# SLURM_JOB_EXIT_CODE2, ... set. logsleuth finds the job's output (scontrol show job:
# StdOut=), writes <output>.logsleuth.json beside it, appends the one-line verdict to
# the output and one JSON line to the ledger. See docs/postmortem.md.
#
# A failing epilog drains the node, so this script exits 0 whatever happens:
# logsleuth postmortem itself exits 0 on its own errors and stops after
# LOGSLEUTH_TIMEOUT seconds; the outer `timeout` is a second fence.
#
# Settings (environment, or edit here):
#   LOGSLEUTH           the logsleuth executable (default: the one on PATH, else /opt/logsleuth/bin/logsleuth)
#   LOGSLEUTH_LEDGER    fleet-wide JSON-lines ledger (default /var/log/logsleuth/ledger.jsonl; empty: none)
#   LOGSLEUTH_VERDICTS  file to append the printed verdict lines to (default: none)
#   LOGSLEUTH_TIMEOUT   seconds (default 60)
#   LOGSLEUTH_ONLY_FAILED=1  skip jobs that exited 0:0 (by default every job is diagnosed:
#                       a run that went NaN often still exits 0)

LOGSLEUTH=${LOGSLEUTH:-$(command -v logsleuth || echo /opt/logsleuth/bin/logsleuth)}
LEDGER=${LOGSLEUTH_LEDGER-/var/log/logsleuth/ledger.jsonl}
VERDICTS=${LOGSLEUTH_VERDICTS:-/dev/null}
TIMEOUT=${LOGSLEUTH_TIMEOUT:-60}

main() {
    [ -n "$SLURM_JOB_ID" ] || return 0
    [ -x "$LOGSLEUTH" ] || return 0
    # slurmd runs the epilog on every node of the job: post-mortem once, on the first
    # (the batch host), where the batch script wrote its output
    if [ -n "${SLURM_JOB_NODELIST:-}" ] && [ -n "${SLURMD_NODENAME:-}" ]; then
        local first
        first=$(timeout 10 scontrol show hostnames "$SLURM_JOB_NODELIST" 2>/dev/null | head -n 1)
        [ -z "$first" ] || [ "$first" = "$SLURMD_NODENAME" ] || return 0
    fi
    if [ "${LOGSLEUTH_ONLY_FAILED:-0}" = 1 ] && [ "${SLURM_JOB_EXIT_CODE2:-}" = "0:0" ]; then
        return 0
    fi
    local args=(postmortem --timeout "$TIMEOUT" --append-to-log)
    if [ -n "$LEDGER" ]; then
        mkdir -p "$(dirname "$LEDGER")" 2>/dev/null
        args+=(--ledger "$LEDGER")
    fi
    local fence=$(( ${TIMEOUT%.*} + 15 ))
    if command -v timeout >/dev/null 2>&1; then
        timeout -k 5 "$fence" "$LOGSLEUTH" "${args[@]}" </dev/null >>"$VERDICTS" 2>&1
    else
        "$LOGSLEUTH" "${args[@]}" </dev/null >>"$VERDICTS" 2>&1
    fi
}

main || true
exit 0
