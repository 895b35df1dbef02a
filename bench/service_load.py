"""Load benchmark for ``logsleuth serve``: latency, throughput and server memory.

What is measured
----------------
The server runs as its own subprocess (``logsleuth serve`` on a free loopback port, the
given ``--workers`` and ``--queue``), and clients on the same machine post a Caffe log
(``bench/throughput.py``'s generator: a noisy descent, test passes, one ``loss = nan``
near the end; reused from ``bench/out/``) to ``POST /v1/diagnose`` as a raw body, each
client one request after another on a kept-alive connection. One cell per log size
(``--sizes``, MB) and number of concurrent clients (``--clients``); a cell issues at
most ``--requests`` requests and starts none after ``--seconds`` (those in flight finish).

Per cell: requests answered 200 and 503 (the queue was full; not retried), p50 and p99
latency of the 200s (the time from sending the first byte to the last of the report;
with few requests p99 is the slowest), requests and log MB per second over the cell's
wall time, the peak of the summed PSS of the server's process tree (the server and its
worker processes, sampled every 50 ms from ``/proc``, as ``throughput.py`` does), and
the largest single process's peak RSS (``VmHWM``, since the server started).

The clients share the machine with the server: on a 2-core machine they take CPU from it,
so the figures are a floor for the server alone.

Usage: ``python bench/service_load.py [--sizes 1,100] [--clients 1,8,32] [--requests N]
[--seconds S] [--workers N] [--queue N] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import MB, TreeMemorySampler, _descendants, ensure_log, logsleuth_exe  # noqa: E402


@dataclass
class Cell:
    size_mb: int
    clients: int
    ok: int
    busy: int
    failed: int
    p50_s: float | None
    p99_s: float | None
    req_s: float
    mb_s: float
    tree_pss_mb: float
    max_rss_mb: float
    wall_s: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, args: argparse.Namespace, log: Path) -> subprocess.Popen:
    import httpx

    cmd = [logsleuth_exe(), "serve", "--port", str(port), "--workers", str(args.workers), "--queue", str(args.queue)]
    server = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the server did not start in 60 s; see {log}")


def _max_rss_mb(root: int) -> float:
    peak = 0
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                peak = max([peak] + [int(line.split()[1]) for line in f if line.startswith("VmHWM:")])
        except (OSError, ValueError):
            pass
    return peak / 1024


def run_cell(url: str, body: bytes, clients: int, requests: int, seconds: float, server_pid: int) -> Cell:
    import httpx

    latencies: list[float] = []
    codes: list[int] = []
    lock = threading.Lock()
    issued = [0]
    start = time.monotonic()

    def client() -> None:
        with httpx.Client(timeout=600) as http:
            while True:
                with lock:
                    if issued[0] >= requests or time.monotonic() - start > seconds:
                        return
                    issued[0] += 1
                t0 = time.monotonic()
                try:
                    code = http.post(url, content=body, params={"name": "bench.log"}).status_code
                except httpx.HTTPError:
                    code = 0
                with lock:
                    codes.append(code)
                    if code == 200:
                        latencies.append(time.monotonic() - t0)

    sampler = TreeMemorySampler(server_pid)
    sampler.start()
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client) for _ in range(clients)]:
            f.result()
    wall = time.monotonic() - start
    sampler.done.set()
    sampler.join()
    latencies.sort()
    ok = codes.count(200)
    return Cell(len(body) // MB, clients, ok, codes.count(503), len(codes) - ok - codes.count(503),
                statistics.median(latencies) if latencies else None,
                latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None,
                ok / wall, ok * len(body) / MB / wall, sampler.peak_kb / 1024, _max_rss_mb(server_pid), wall)


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_table(cells: list[Cell]) -> None:
    print("| log | clients | 200 | 503 | other | p50 s | p99 s | req/s | MB/s | server tree PSS | largest RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in cells:
        print(f"| {c.size_mb} MB | {c.clients} | {c.ok} | {c.busy} | {c.failed} | {_f(c.p50_s, '.2f')} | "
              f"{_f(c.p99_s, '.2f')} | {c.req_s:.2f} | {c.mb_s:.1f} | {c.tree_pss_mb:.0f} MB | {c.max_rss_mb:.0f} MB |")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1,100", help="log sizes in MB, comma-separated")
    p.add_argument("--clients", default="1,8,32", help="concurrent clients, comma-separated")
    p.add_argument("--requests", type=int, default=200, help="at most this many requests per cell")
    p.add_argument("--seconds", type=float, default=20.0, help="start no request after this many seconds per cell")
    p.add_argument("--workers", type=int, default=2, help="the server's --workers")
    p.add_argument("--queue", type=int, default=32, help="the server's --queue (32: every client is admitted)")
    p.add_argument("--workdir", type=Path, default=HERE / "out", help="where the logs are generated and kept")
    p.add_argument("--json", type=Path, help="also write every figure here")
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes, clients = [int(s) for s in args.sizes.split(",")], [int(c) for c in args.clients.split(",")]
    logs = {mb: ensure_log("caffe", args.workdir, mb)[0].read_bytes() for mb in sizes}
    port = free_port()
    server = start_server(port, args, args.workdir / "service_load.server.log")
    url = f"http://127.0.0.1:{port}/v1/diagnose"
    cells = []
    try:
        run_cell(url, logs[sizes[0]], args.workers, args.workers * 2, 60, server.pid)  # warm the workers
        for mb in sizes:
            for n in clients:
                cells.append(run_cell(url, logs[mb], n, args.requests, args.seconds, server.pid))
                print(f"  {mb} MB x {n} clients: {cells[-1].ok} ok in {cells[-1].wall_s:.1f} s", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(30)
    print(f"logsleuth serve --workers {args.workers} --queue {args.queue}; {os.cpu_count()} CPUs; "
          f"at most {args.requests} requests or {args.seconds:g} s per cell")
    print_table(cells)
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in cells], indent=2))


if __name__ == "__main__":
    main()
