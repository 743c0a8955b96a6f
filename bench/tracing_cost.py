"""What tracing costs a request: the ASGI app driven directly (no HTTP, no client), traces off and on.

    python -m bench.tracing_cost [--seconds 3] [--rounds 4] [--baseline DIR]

It starts a throwaway PostgreSQL (testing.postgresql, as the test suite does), migrates it, loads
200 listings, and then runs, in interleaved slices (off, on, down, down, on, off, ...: a drift in
the machine's load weighs on each alike), a subprocess per slice that builds the app and calls it
in a loop for --seconds after a warm-up, on two requests: a listing's detail and the seed search
(`?category=electronics&ordering=-price&search=laptop`), anonymous, cache off, no access log,
rate limits off. Modes:

  off   OTEL_EXPORTER_OTLP_ENDPOINT unset: the default.
  on    set, to an OTLP/HTTP receiver on loopback (a thread of this process answering 200): every
        request's spans (server + SQL) are made, batched and sent, in the same process.
  down  set, to a loopback port nobody listens on: spans are made and dropped.
  1in10 on, sampling one trace in ten (OTEL_TRACES_SAMPLER=parentbased_traceidratio, _ARG=0.1).
  base  (--baseline DIR) `off` run from another checkout, e.g. main before the request id went into
        each transaction: `git worktree add /tmp/base main` or `git archive main | tar -x -C DIR`.

It prints µs per request (mean of the slices' means, and the slices' median) and the ratios to off.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DETAIL = "/api/products/{id}/"
SEARCH = "/api/products/"
SEARCH_QUERY = b"category=electronics&ordering=-price&search=laptop"


# --- one slice (a subprocess) -------------------------------------------------------------------


async def _drive(app: Any, path: str, query: bytes, seconds: float, warmup: float) -> tuple[int, float, float]:
    """Call the app with one GET in a loop for `seconds` after `warmup`: (requests, wall µs per request,
    CPU µs per request). The CPU is the whole process's: the span exporter's thread's included, its
    queue flushed before the clock stops."""
    sent: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "app": app,
        }

    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        await app(scope(), receive, send)
    try:
        from api.tracing import force_flush
    except ImportError:  # --baseline: a checkout from before tracing

        def force_flush() -> None:
            pass

    force_flush()
    sent.clear()
    count = 0
    cpu = time.process_time()
    started = time.perf_counter()
    end = started + seconds
    while time.perf_counter() < end:
        await app(scope(), receive, send)
        count += 1
    elapsed = time.perf_counter() - started  # a flush's wait for an endpoint that does not answer is no request's
    force_flush()
    cpu = time.process_time() - cpu
    assert set(sent) == {200}, set(sent)
    return count, elapsed / count * 1e6, cpu / count * 1e6


def run_slice(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from api.app import create_app
    from api.settings import Settings

    cfg = replace(
        Settings(),
        database_url=args.owner_url,
        app_database_url=args.app_url,
        rate_limits=False,
        cache_max_bytes=0,
        access_log=False,
        pool_min=2,
        pool_max=2,
    )
    if args.mode in ("on", "down", "1in10"):
        cfg = replace(cfg, otel_endpoint=args.endpoint)
    app = create_app(cfg)

    async def main() -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            detail = await _drive(app, DETAIL.format(id=args.listing), b"", args.seconds, args.warmup)
            search = await _drive(app, SEARCH, SEARCH_QUERY, args.seconds, args.warmup)
        return {
            "detail": detail[1],
            "search": search[1],
            "detail_cpu": detail[2],
            "search_cpu": search[2],
            "requests": detail[0] + search[0],
        }

    try:
        import uvloop

        result = uvloop.run(main())
    except ImportError:
        result = asyncio.run(main())
    if args.mode in ("on", "down", "1in10"):
        from api import tracing

        tracing.shutdown()  # sends what is queued (on), gives up at once (down)
    print("SLICE " + json.dumps(result), flush=True)


# --- the driver ---------------------------------------------------------------------------------


class Receiver(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes every batch (200, empty ExportTraceServiceResponse)."""

    batches = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        Receiver.batches += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load(owner_url: str) -> str:
    """200 listings, 20 of them laptops in `electronics`; returns one listing's id."""
    import psycopg

    with psycopg.connect(owner_url, autocommit=True) as conn:
        (host,) = conn.execute(
            "insert into app.users (email, first_name, last_name, role)"
            " values ('host@bench.test', 'Bench', 'Host', 'host') returning id"
        ).fetchone()  # type: ignore[misc]
        (other,) = conn.execute(
            "insert into app.categories (name, slug) values ('Other', 'other') returning id"
        ).fetchone()  # type: ignore[misc]
        (electronics,) = conn.execute(
            "insert into app.categories (name, slug) values ('Electronics', 'electronics')"
            " on conflict (slug) do update set name = excluded.name returning id"
        ).fetchone()  # type: ignore[misc]
        conn.execute(
            """insert into app.products (host_id, category_id, name, description, location, price_per_night,
                                         currency, max_guests, cancellation_policy, published)
               select %s, case when i %% 10 = 0 then %s else %s end,
                      case when i %% 10 = 0 then 'Laptop-friendly loft ' else 'Flat ' end || i,
                      'A bright place with a desk for a laptop.', 'Lagos', 50 + i, 'USD', 2, 'moderate', true
                 from generate_series(1, 200) i""",
            (host, electronics, other),
        )
        (listing,) = conn.execute("select id from app.products order by name limit 1").fetchone()  # type: ignore[misc]
    return str(listing)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per request kind and slice")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=4, help="each mode runs 2 x rounds slices")
    parser.add_argument("--baseline", type=Path, help="another checkout to run `off` from (mode base)")
    parser.add_argument("--slice", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="off", help=argparse.SUPPRESS)
    parser.add_argument("--owner-url", help=argparse.SUPPRESS)
    parser.add_argument("--app-url", help=argparse.SUPPRESS)
    parser.add_argument("--listing", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.slice:
        run_slice(args)
        return

    import testing.postgresql

    from api.migrate import migrate

    server = testing.postgresql.Postgresql(
        initdb=str(ROOT / "scripts" / "initdb"),
        postgres=str(ROOT / "scripts" / "postgres"),
        postgres_args="-h 127.0.0.1 -F -c logging_collector=off -c fsync=off",
    )
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        import psycopg

        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("create role nexus login createrole")
            conn.execute("create database nexus owner nexus")
        port = server.settings["port"]
        owner_url = f"postgresql://nexus@127.0.0.1:{port}/nexus"
        migrate(owner_url)
        listing = load(owner_url)
        app_url = f"postgresql://authenticator@127.0.0.1:{port}/nexus"
        modes = ["off", "on", "1in10", "down"] + (["base"] if args.baseline else [])
        receiving = f"http://127.0.0.1:{receiver.server_address[1]}"
        endpoints = {"on": receiving, "1in10": receiving, "down": f"http://127.0.0.1:{free_port()}"}
        results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        order = []
        for r in range(args.rounds):
            order += modes if r % 2 == 0 else list(reversed(modes))
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        for n, mode in enumerate(order, 1):
            cwd = args.baseline if mode == "base" else ROOT
            if mode == "base":
                shutil.copy(__file__, Path(cwd) / "bench" / "tracing_cost.py")
            cmd = [sys.executable, "-m", "bench.tracing_cost", "--slice", "--mode", mode]
            cmd += ["--owner-url", owner_url, "--app-url", app_url, "--listing", listing]
            cmd += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
            cmd += ["--endpoint", endpoints.get(mode, "")]
            extra = {
                "1in10": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
                # Each batch gives up after 2 s instead of 10: the slice's flushes wait less (no request does).
                "down": {"OTEL_EXPORTER_OTLP_TIMEOUT": "2"},
            }.get(mode, {})
            out = subprocess.run(cmd, cwd=cwd, env={**env, **extra}, capture_output=True, text=True, timeout=300)
            line = next((x for x in out.stdout.splitlines() if x.startswith("SLICE ")), None)
            if line is None:
                raise SystemExit(f"slice {mode} failed:\n{out.stdout}\n{out.stderr}")
            results[mode].append(json.loads(line[6:]))
            print(f"  slice {n:2}/{len(order)} {mode:5} {line[6:]}", file=sys.stderr, flush=True)
    finally:
        receiver.shutdown()
        server.stop()

    kinds = ("detail", "search", "detail_cpu", "search_cpu")
    print(f"\nµs per request through the ASGI app ({args.rounds * 2} slices per mode of {args.seconds:g} s each;")
    print("wall: the request's whole time, database included; cpu: this process's CPU, the exporter's thread included)")
    print(f"{'mode':6} " + " ".join(f"{k + ' mean':>16} {'median':>8} {'vs off':>7}" for k in kinds))
    off = {k: statistics.fmean(s[k] for s in results["off"]) for k in kinds}
    for mode in modes:
        cells = []
        for k in kinds:
            values = [s[k] for s in results[mode]]
            mean = statistics.fmean(values)
            cells += [f"{mean:16.1f}", f"{statistics.median(values):8.1f}", f"{mean / off[k]:7.3f}"]
        print(f"{mode:6} " + " ".join(cells))
    print(f"OTLP batches the receiver took: {Receiver.batches}")


if __name__ == "__main__":
    main()
