"""python -m soak [--minutes 20] [--faults all|short|name,name] [--bench-data] [--pgbouncer] [--plot docs/soak.png]

Starts the stack, sets up hosts, listings and guests through the API, drives the mix for the
given minutes while the faults happen on their schedule, then stops the load, lets the queue
drain (retries made due, as time passing would), checks every invariant and prints the report.
Exits 1 when any invariant is violated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from soak import invariants, report
from soak.driver import Driver, Recorder
from soak.faults import ALL, BEHIND_PGBOUNCER, GRACE, RECOVERY_BOUND, Fault, Injector, fault_names, schedule, windows
from soak.stack import Stack, log, rss_mb

CONNECTION_BOUND = 80  # 2 API workers x DB_POOL_MAX 10 + their listeners, the worker's pool and loops, the soak's own


async def monitor(stack: Stack, driver: Driver, out: dict[str, Any]) -> None:
    """Every 5 s: each worker's RSS, the database's connections; every 15 s the cheap invariants."""
    r = driver.recorder
    tick = 0
    while True:
        now = r.now()
        for pid in stack.api.worker_pids():
            mb = rss_mb(pid)
            if mb:
                out["rss"].setdefault(pid, []).append((now, mb, "api worker"))
        wpid = stack.worker.pid
        if wpid and (mb := rss_mb(wpid)):
            out["rss"].setdefault(wpid, []).append((now, mb, "job worker"))

        def sample(tick: int) -> tuple[int, list[invariants.Result]]:
            with psycopg.connect(stack.cluster.owner_url, autocommit=True, connect_timeout=2) as conn:
                row = conn.execute("select count(*) from pg_stat_activity where datname = 'nexus'").fetchone()
            checks = []
            if tick % 3 == 0:
                checks = invariants.sql_checks(stack.cluster.owner_url, invariants.CHEAP)
                checks.append(invariants.jobs_check(stack.cluster.owner_url, end=False))
            return (row[0] if row else 0), checks

        try:
            connections, checks = await asyncio.to_thread(sample, tick)
            out["connections"].append((now, connections))
            for c in checks:
                if not c.ok:
                    out["during"].append((round(now), c.name, c.violations))
                    log(f"INVARIANT VIOLATED during the run: {c.name}: {c.violations}")
        except psycopg.Error:
            pass  # the database is restarting
        tick += 1
        await asyncio.sleep(5)


async def drain(stack: Stack, driver: Driver, seconds: float = 180) -> bool:
    """Load stopped: deliver what the providers still owe, make waiting retries due, until no job is left."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await driver.providers()
        await driver.time_machine()

        def left() -> int:
            with psycopg.connect(stack.cluster.owner_url, autocommit=True) as conn:
                conn.execute(
                    "update procrastinate.procrastinate_jobs set scheduled_at = now()"
                    " where status = 'todo' and scheduled_at > now()"
                )
                row = conn.execute(
                    "select count(*) from procrastinate.procrastinate_jobs where status in ('todo', 'doing')"
                ).fetchone()
                return row[0] if row else 0

        if not driver.mailbag.heap and await asyncio.to_thread(left) == 0:
            return True
        await asyncio.sleep(2)
    return False


async def soak(args: argparse.Namespace) -> int:
    total = args.minutes * 60
    faults: list[Fault] = schedule(fault_names(args.faults, args.pgbouncer), args.minutes)
    with Stack(bench_data=args.bench_data, pgbouncer=args.pgbouncer) as stack:
        recorder = Recorder()
        driver = Driver(stack, recorder)
        log("setting up hosts, listings, guests through the API")
        await driver.setup()
        recorder.samples.clear()
        recorder.started = time.monotonic()
        log(
            f"driving for {args.minutes:g} minutes; faults: {', '.join(f'{f.name}@{f.at * total:.0f}s' for f in faults) or 'none'}"
        )
        tasks = driver.actors(args.scale)
        out: dict[str, Any] = {"rss": {}, "connections": [], "during": []}
        watcher = asyncio.create_task(monitor(stack, driver, out))
        injector = Injector(stack, driver)
        chaos = asyncio.create_task(injector.run(faults, total))
        await asyncio.sleep(total)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(chaos, timeout=RECOVERY_BOUND + 30)
        seconds = recorder.now()
        log("load stopped; draining the queue")
        driver.running = False
        await asyncio.sleep(3)
        for t in tasks[1:]:
            t.cancel()
        drained = await drain(stack, driver)
        tasks[0].cancel()
        watcher.cancel()
        results = invariants.sql_checks(stack.cluster.owner_url)
        results.append(invariants.jobs_check(stack.cluster.owner_url, end=True))
        results += invariants.email_check(
            stack.cluster.owner_url, stack.smtp.deliveries(), recorder.started, windows(faults)
        )
        results.append(invariants.server_errors_outside(recorder.samples, windows(faults)))
        results.append(invariants.recovery_check(faults, RECOVERY_BOUND))
        results.append(invariants.memory_check(out["rss"], warmup=min(120.0, total * 0.2)))
        results.append(invariants.connections_check(out["connections"], CONNECTION_BOUND))
        results.append(
            invariants.Result(
                "no invariant broken during the run (checked every 15 s)",
                len(out["during"]),
                len(out["connections"]) // 3,
                "; ".join(map(str, out["during"][:5])),
            )
        )
        if not drained:
            results.append(invariants.Result("the queue drained within 3 minutes of the load's end", 1, 1))
        counts = {
            **recorder.counts,
            "job worker starts": stack.worker.starts,
            "emails at the relay": len(stack.smtp.messages),
        }
        await driver.client.aclose()

        print()
        route = "through PgBouncer (transaction pooling)" if args.pgbouncer else "straight to PostgreSQL"
        print(
            f"Soak: {args.minutes:g} minutes, {len(recorder.samples)} requests, {len(faults)} faults; the API {route}"
        )
        print()
        print(report.class_table(recorder.samples, seconds))
        print()
        print(report.flow_table(recorder.flows))
        print()
        print(report.fault_table(faults, recorder.samples, GRACE))
        print()
        print("Invariants")
        print(report.invariant_lines(results))
        print()
        print("Counts")
        print(report.summary(counts))
        if args.plot:
            path = Path(args.plot)
            via = " via PgBouncer" if args.pgbouncer else ""
            report.plot(
                path, recorder.samples, faults, seconds, f"Nexus soak: {args.minutes:g} min{via}, faults shaded"
            )
            log(f"plot written to {path}")
        if args.json:
            Path(args.json).write_text(  # noqa: ASYNC240 (the run is over)
                json.dumps(
                    {
                        "minutes": args.minutes,
                        "pgbouncer": args.pgbouncer,
                        "faults": [{**f.__dict__, "recovery": f.recovery} for f in faults],
                        "invariants": [r.__dict__ for r in results],
                        "counts": counts,
                    },
                    indent=2,
                    default=str,
                )
            )
        log(f"logs: {stack.api.logfile.name} (API), {stack.worker.logfile.name} (job worker)")
        failed = [r for r in results if not r.ok]
        if failed:
            print(f"\nsoak: {len(failed)} invariant(s) violated")
            return 1
        print("\nsoak: every invariant held")
        return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument(
        "--faults", default="all", help="all, short, none, or names: " + ",".join([*ALL, BEHIND_PGBOUNCER])
    )
    parser.add_argument("--bench-data", action="store_true", help="load bench/data.sql (100,000 listings) first")
    parser.add_argument(
        "--pgbouncer", action="store_true", help="the API through PgBouncer (transaction pooling), restarted as a fault"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="how many actors of each kind (1: the default mix)")
    parser.add_argument("--plot", default="", help="write the plot here (PNG)")
    parser.add_argument("--json", default="", help="write the faults, invariants and counts here")
    args = parser.parse_args(argv)
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
