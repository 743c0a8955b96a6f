"""What tracing costs a request: the ASGI app called directly (no HTTP, no client), traces off and on.

    python -m bench.tracing_cost [--seconds 20] [--block 40]     (make bench-tracing)

It starts a throwaway PostgreSQL (testing.postgresql, as the test suite does), migrates it, loads
200 listings, and measures two requests, anonymous, cache off, no access log, rate limits off: a
listing's detail and the seed search (`?category=electronics&ordering=-price&search=laptop`).

Each variant is measured against `off` in one process, in alternating blocks of --block requests
(off, X, X, off, ...) for --seconds: both see the same machine, whatever else it is running. Two
apps share the process and the event loop, one built with tracing off (no middleware), one with
it on; `tracing.ON`, which the hot path reads, is set before each block. Variants:

  on     OTEL_EXPORTER_OTLP_ENDPOINT set, to an OTLP/HTTP receiver on loopback (a thread of the
         driver answering 200): every request's spans (server + SQL) made, batched, encoded, sent.
  1in10  the same, sampling one trace in ten (OTEL_TRACES_SAMPLER=parentbased_traceidratio, 0.1).
  down   the endpoint is a loopback port nobody listens on: spans made, then dropped.
  rid    tracing off, against `off` with the request id's set_config in each request's statement
         replaced by a bare parameter (as before it was there): what carrying the request id into the
         transaction costs (always on: the jobs' log lines name their request).

Per request it reports the wall time (the database's included) and the CPU of the API's thread
(`thread_time`); for a tracing variant, the CPU of the exporter's thread too, spread over the
variant's requests (the process's CPU less the main thread's). The figures are µs; "x" is the
variant's total over off's.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEARCH_QUERY = b"category=electronics&ordering=-price&search=laptop"
VARIANTS = ("on", "1in10", "down", "rid")


# --- one variant against off (a subprocess) -----------------------------------------------------


def _scope(app: Any, path: str, query: bytes) -> dict[str, Any]:
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


def run_variant(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from api import db, tracing
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
    off_app = create_app(cfg)  # tracing off: no middleware
    traced = args.variant in ("on", "1in10", "down")
    x_app = create_app(replace(cfg, otel_endpoint=args.endpoint) if traced else cfg)
    contexts = {False: db.CONTEXT, True: db.CONTEXT}
    if args.variant == "rid":  # off: without it
        contexts[False] = db.CONTEXT.replace("set_config('nexus.request_id', %s, true)", "%s")
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    requests = {"detail": (f"/api/products/{args.listing}/", b""), "search": ("/api/products/", SEARCH_QUERY)}
    # (variant?, request kind) -> [requests, wall s, main thread CPU s]
    totals: dict[tuple[bool, str], list[float]] = {(x, k): [0, 0.0, 0.0] for x in (False, True) for k in requests}

    async def block(x: bool, kind: str, n: int) -> None:
        app = x_app if x else off_app
        tracing.ON = traced and x
        db.CONTEXT = contexts[x]
        path, query = requests[kind]
        cpu, wall = time.thread_time(), time.perf_counter()
        for _ in range(n):
            await app(_scope(app, path, query), receive, send)
        total = totals[(x, kind)]
        total[0] += n
        total[1] += time.perf_counter() - wall
        total[2] += time.thread_time() - cpu

    async def main() -> None:
        async with off_app.router.lifespan_context(off_app), x_app.router.lifespan_context(x_app):
            for x in (False, True):  # warm both (pools, prepared statements, caches)
                for kind in requests:
                    await block(x, kind, args.block)
            for key in totals:
                totals[key] = [0, 0.0, 0.0]
            tracing.force_flush()
            process, main_thread = time.process_time(), time.thread_time()
            end = time.perf_counter() + args.seconds
            i = 0
            while time.perf_counter() < end:
                x = i % 4 in (1, 2)  # off, x, x, off: a drift weighs on both alike
                for kind in requests:
                    await block(x, kind, args.block)
                i += 1
            tracing.force_flush()  # the exporter's work for these requests, done before the clock stops
            background = (time.process_time() - process) - (time.thread_time() - main_thread)
            totals_out = {f"{'x' if x else 'off'}:{k}": v for (x, k), v in totals.items()}
            print("VARIANT " + json.dumps({"totals": totals_out, "background": background}), flush=True)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    tracing.ON = traced
    tracing.shutdown()
    assert statuses == {200}, statuses


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
        conn.execute("analyze")
        (listing,) = conn.execute("select id from app.products order by name limit 1").fetchone()  # type: ignore[misc]
    return str(listing)


def report(variant: str, measured: dict[str, Any]) -> list[str]:
    totals, background = measured["totals"], measured["background"]
    x_requests = sum(v[0] for k, v in totals.items() if k.startswith("x:"))
    rows = []
    for kind in ("detail", "search"):
        n0, wall0, cpu0 = totals[f"off:{kind}"]
        n1, wall1, cpu1 = totals[f"x:{kind}"]
        exporter = max(0.0, background / x_requests) if variant != "rid" else 0.0
        off_wall, off_cpu = wall0 / n0 * 1e6, cpu0 / n0 * 1e6
        x_wall, x_cpu = wall1 / n1 * 1e6, cpu1 / n1 * 1e6 + exporter * 1e6
        rows.append(
            f"| {variant} | {kind} | {int(n0)} / {int(n1)} | {off_wall:,.0f} | {x_wall:,.0f} | {x_wall / off_wall:.3f}"
            f" | {off_cpu:,.0f} | {x_cpu:,.0f} (exporter {exporter * 1e6:,.0f}) | {x_cpu / off_cpu:.3f}"
            f" | {x_cpu - off_cpu:+,.0f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per variant")
    parser.add_argument("--block", type=int, default=40, help="requests of one kind per block")
    parser.add_argument("--only", default=",".join(VARIANTS), help="variants, comma separated")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--owner-url", help=argparse.SUPPRESS)
    parser.add_argument("--app-url", help=argparse.SUPPRESS)
    parser.add_argument("--listing", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        run_variant(args)
        return

    import psycopg
    import testing.postgresql

    from api.migrate import migrate

    server = testing.postgresql.Postgresql(
        initdb=str(ROOT / "scripts" / "initdb"),
        postgres=str(ROOT / "scripts" / "postgres"),
        postgres_args="-h 127.0.0.1 -F -c logging_collector=off -c fsync=off",
    )
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    rows = []
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("create role nexus login createrole")
            conn.execute("create database nexus owner nexus")
        port = server.settings["port"]
        owner_url = f"postgresql://nexus@127.0.0.1:{port}/nexus"
        migrate(owner_url)
        listing = load(owner_url)
        receiving = f"http://127.0.0.1:{receiver.server_address[1]}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        for variant in args.only.split(","):
            extra = {
                "1in10": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
                "down": {"OTEL_EXPORTER_OTLP_TIMEOUT": "2"},  # each batch gives up after 2 s (no request waits)
            }.get(variant, {})
            cmd = [sys.executable, "-m", "bench.tracing_cost", "--variant", variant, "--listing", listing]
            cmd += ["--owner-url", owner_url, "--app-url", f"postgresql://authenticator@127.0.0.1:{port}/nexus"]
            cmd += ["--seconds", str(args.seconds), "--block", str(args.block)]
            cmd += ["--endpoint", f"http://127.0.0.1:{free_port()}" if variant == "down" else receiving]
            print(f"  {variant} against off, {args.seconds:g} s ...", file=sys.stderr, flush=True)
            out = subprocess.run(cmd, cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, timeout=600)
            line = next((x for x in out.stdout.splitlines() if x.startswith("VARIANT ")), None)
            if line is None or out.returncode:
                raise SystemExit(f"variant {variant} failed:\n{out.stdout}\n{out.stderr}")
            rows += report(variant, json.loads(line[8:]))
    finally:
        receiver.shutdown()
        server.stop()

    print(f"\nµs per request through the ASGI app, each variant against off in alternating blocks of {args.block}")
    print("(wall: the whole request, database included; cpu: the API thread's, plus the exporter thread's share)\n")
    print("| variant | request | requests off / variant | wall off | wall | x | cpu off | cpu | x | cpu added |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nOTLP batches the receiver took: {Receiver.batches}")


if __name__ == "__main__":
    main()
