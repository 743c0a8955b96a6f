"""What metrics cost a request: the ASGI app called in-process, metrics off and on, interleaved.

    python -m bench.metrics_cost [--requests 20000] [--rounds 15]

Builds the app twice from the same settings (metrics off; on, with METRICS_TOKEN, in
prometheus_client's multiprocess mode as api.serve runs it) and calls each with the same GET
/healthz scope (no database: what is left is the stack's own work), in rounds that alternate
off, on, on, off, ... under uvloop, so a drift in the machine's load weighs on both alike. It
prints the CPU microseconds a request for each (median and best round) and their difference: the layer's cost
(one histogram observation, its send wrapper and the in-flight count), the same on every route.
The database's part of a real request comes on top, unchanged (make bench: 400-1,250 us a
request on 2 cores), so the ratio printed against 400 us is the upper bound of what metrics cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace
from typing import Any

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="nexus-metrics-bench-"))

import uvloop

from api.app import create_app
from api.settings import Settings

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/healthz",
    "raw_path": b"/healthz",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: dict[str, Any]) -> None:
    pass


async def per_request_us(app: Any, n: int) -> float:
    """CPU microseconds a request (this process's CPU time: waiting for a core another process
    holds does not count, so a loaded machine skews it far less than the wall clock)."""
    started = time.process_time()
    for _ in range(n):
        await app(dict(SCOPE), receive, send)  # each request gets its own scope, as from the server
    return (time.process_time() - started) / n * 1e6


async def measure(requests: int, rounds: int) -> tuple[list[float], list[float]]:
    base = replace(Settings(), access_log=False, rate_limits=False, cache_max_bytes=0)
    off = create_app(base)
    on = create_app(replace(base, metrics_token="bench-token-0123456789"))
    for app in (off, on):  # warm: routes, label children, files
        await per_request_us(app, 2000)
    times: dict[str, list[float]] = {"off": [], "on": []}
    for r in range(rounds):
        order = ("off", "on") if r % 2 == 0 else ("on", "off")
        for name in order:
            times[name].append(await per_request_us(off if name == "off" else on, requests))
    return times["off"], times["on"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    off, on = uvloop.run(measure(args.requests, args.rounds))
    print(f"GET /healthz through the whole ASGI stack, {args.rounds} interleaved rounds of {args.requests},")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}:")
    print("               median of rounds   best round (the least disturbed by other load)")
    print(f"  metrics off  {statistics.median(off):8.2f} us          {min(off):8.2f} us")
    print(f"  metrics on   {statistics.median(on):8.2f} us          {min(on):8.2f} us")
    for what, cost in (("median", statistics.median(on) - statistics.median(off)), ("best", min(on) - min(off))):
        print(
            f"  cost ({what}) {cost:6.2f} us a request: {cost / 400:.2%} of a 400 us request,"
            f" {cost / 1250:.2%} of a 1,250 us one (800-2,500 req/s on 2 cores)"
        )


if __name__ == "__main__":
    main()
