"""What metrics cost a request: the ASGI app called in-process, metrics off and on, interleaved.

    python -m bench.metrics_cost [--requests 20000] [--rounds 15] [--cached]

Builds the app twice from the same settings (metrics off; on, with METRICS_TOKEN, in
prometheus_client's multiprocess mode as api.serve runs it) and calls each with the same
request, in rounds that alternate off, on, on, off, ... under uvloop, so a drift in the
machine's load weighs on both alike. It prints the CPU microseconds a request takes in this
process for each (median and best round) and their difference: what metrics add (one
histogram observation, the layer's send wrapper), the same on every route.

- default: GET /healthz, no database: the stack's own work;
- --cached: a listing's detail answered by the catalog cache (make bench-data's nexus_bench in
  the local cluster): the cheapest request that serves data, where the cost weighs most.

Uncached, a request's database work comes on top unchanged (make bench: 400-1,250 us a request
on 2 cores), so what is printed against 400 us is the upper bound there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import MutableMapping
from dataclasses import replace
from typing import Any

# Before prometheus_client is imported (by create_app, metrics on): every series in files, as served.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="nexus-metrics-bench-"))

import uvloop
from starlette.applications import Starlette

from api.app import create_app
from api.cache import CatalogCache
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


class Answers:
    """The statuses of the answers sent (a bench that measured 503s would measure nothing)."""

    def __init__(self) -> None:
        self.statuses: set[int] = set()

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.statuses.add(message["status"])


async def per_request_us(app: Any, scope: dict[str, Any], n: int, send: Answers) -> float:
    """CPU microseconds a request (this process's CPU time: waiting for a core another process
    holds does not count, so a loaded machine skews it far less than the wall clock)."""
    started = time.process_time()
    for _ in range(n):
        await app(dict(scope), receive, send)  # each request gets its own scope, as from the server
    return (time.process_time() - started) / n * 1e6


async def start(app: Starlette) -> asyncio.Task[None]:
    """Run the app's lifespan startup (its pool, the cache's listener); the task holds it open."""
    inbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put))
    message = await outbox.get()
    assert message["type"] == "lifespan.startup.complete", message
    return task


async def warm_cache(app: Starlette, scope: dict[str, Any], send: Answers) -> None:
    layer: Any = app.middleware_stack
    while not isinstance(layer, CatalogCache):
        layer = layer.app
    deadline = time.monotonic() + 30
    while layer.cache.hits < 100:  # the listener connected and the entry is kept
        assert time.monotonic() < deadline, "the catalog cache did not start serving"
        await app(dict(scope), receive, send)
        await asyncio.sleep(0.001)


async def measure(requests: int, rounds: int, cached: bool) -> tuple[list[float], list[float], set[int]]:
    base = replace(Settings(), access_log=False, rate_limits=False, cache_max_bytes=0)
    scope = dict(SCOPE)
    if cached:
        from bench.data import IDS_FILE, owner_url

        listing = IDS_FILE.read_text().split()[0]
        scope.update(path=f"/api/products/{listing}/", raw_path=f"/api/products/{listing}/".encode())
        base = replace(base, database_url=owner_url(), app_database_url="", cache_max_bytes=64 * 2**20)
    off = create_app(base)
    on = create_app(replace(base, metrics_token="bench-token-0123456789"))
    send = Answers()
    running = [await start(app) for app in (off, on)] if cached else []
    for app in (off, on):  # warm: routes, label children, files, the cache
        if cached:
            await warm_cache(app, scope, send)
        await per_request_us(app, scope, 2000, send)
    times: dict[str, list[float]] = {"off": [], "on": []}
    for r in range(rounds):
        order = ("off", "on") if r % 2 == 0 else ("on", "off")
        for name in order:
            times[name].append(await per_request_us(off if name == "off" else on, scope, requests, send))
    for task in running:
        task.cancel()
    return times["off"], times["on"], send.statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cached", action="store_true", help="a listing's detail from the catalog cache")
    args = parser.parse_args()
    off, on, statuses = uvloop.run(measure(args.requests, args.rounds, args.cached))
    what = "a cached listing detail" if args.cached else "GET /healthz"
    print(f"{what} through the whole ASGI stack, {args.rounds} interleaved rounds of {args.requests},")
    print(f"answered {sorted(statuses)}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}:")
    print("               median of rounds   best round (the least disturbed by other load)")
    print(f"  metrics off  {statistics.median(off):8.2f} us          {min(off):8.2f} us")
    print(f"  metrics on   {statistics.median(on):8.2f} us          {min(on):8.2f} us")
    for what, cost, of in (
        ("median", statistics.median(on) - statistics.median(off), statistics.median(off)),
        ("best", min(on) - min(off), min(off)),
    ):
        print(
            f"  cost ({what}) {cost:6.2f} us a request: {cost / of:.1%} of this request in this process,"
            f" {cost / 400:.2%} of a 400 us request"
        )
    os._exit(0)  # the apps' pools and listeners: nothing to finish


if __name__ == "__main__":
    main()
