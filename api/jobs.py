"""The scheduled booking job: expire stale holds, complete past stays, purge old idempotency keys.

All the work is one SQL function, `app.run_booking_jobs()` (owner only; a DBA can run it
from psql). This module calls it every `interval_seconds` as the owner (DATABASE_URL):

    python -m api.jobs [--interval 60] [--once]

or, inside another asyncio program (the app's lifespan, a worker):

    task = asyncio.create_task(run_forever(settings.database_url, 60))

Running several copies at once is safe: each run is one transaction over row locks, so
a booking is expired or completed exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("nexus.jobs")

RUN = "select app.run_booking_jobs()::text"


async def run_once(target: str | AsyncConnectionPool) -> dict[str, Any]:
    """Run the job once, as the owner; returns {"expired": n, "completed": n, "purged_keys": n}."""
    if isinstance(target, AsyncConnectionPool):
        async with target.connection() as conn:
            row = await (await conn.execute(RUN)).fetchone()
    else:
        async with await psycopg.AsyncConnection.connect(target, autocommit=True) as conn:
            row = await (await conn.execute(RUN)).fetchone()
    assert row is not None
    result: dict[str, Any] = orjson.loads(row[0])
    return result


async def run_forever(target: str | AsyncConnectionPool, interval_seconds: float = 60.0) -> None:
    """Run the job every `interval_seconds` until cancelled; a failed run is logged and retried next time."""
    while True:
        try:
            result = await run_once(target)
            if any(result.values()):
                log.info(orjson.dumps({"job": "bookings", **result}).decode())
        except (psycopg.Error, OSError):
            log.exception("booking job failed; retrying in %s s", interval_seconds)
        await asyncio.sleep(interval_seconds)


def main() -> None:
    from api.settings import settings

    parser = argparse.ArgumentParser(prog="python -m api.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between runs (default 60)")
    parser.add_argument("--once", action="store_true", help="run once, print the counts, exit")
    parser.add_argument("--database-url", default=settings.database_url, help="owner connection (DATABASE_URL)")
    args = parser.parse_args()
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    if args.once:
        print(orjson.dumps(asyncio.run(run_once(args.database_url))).decode())
        return
    try:
        asyncio.run(run_forever(args.database_url, args.interval))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
