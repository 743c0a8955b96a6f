"""Rate-limit leases: a worker admits a caller's requests itself, up to a bound, and debits them in batches.

The buckets live in PostgreSQL (app_private.rate_buckets), shared by every worker and instance.
Taking a token in each request's own transaction made every read a writing transaction; for a
class with a lease (app_private.rate_limits.lease, read by default) a worker instead:

- admits a request of (class, caller) without a token if it has admitted fewer than `lease` of
  that caller's requests since its last settle and the table did not report the caller empty;
- otherwise sends the request through app.rate_take in its own transaction as before (the
  table decides: a token, or 429 with Retry-After and RateLimit-* headers);
- every SETTLE_SECONDS debits what it admitted, all callers in one transaction
  (app.rate_settle), which returns the callers now empty and the classes' leases.

The bound: a caller gets at most `lease` requests per worker (over all instances) beyond what
its bucket allows, and the table is debited for them afterwards (it may go below zero), so the
rate over time is exact. A request that fails in the database gives its admission back, as a
failed request's token rolls back. A worker that has not settled yet (just started) admits
nothing itself. It remembers at most MAX_BLOCKED callers as empty (past that it forgets them
all: each may then get one more lease before the table refuses it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import orjson
import psycopg

from api import db

log = logging.getLogger("nexus.ratelimit")

SETTLE_SECONDS = 0.2
REFRESH_SECONDS = 5.0  # the classes' leases are re-read at least this often (a DBA's UPDATE)
MAX_BLOCKED = 100_000  # callers remembered as empty
SETTLE = "select app.rate_settle(%s::text[], %s::text[], %s::int[])"

Key = tuple[str, str]  # (class, caller)


class Leases:
    """One worker's admissions per (class, caller) since its last settle."""

    def __init__(self, interval: float = SETTLE_SECONDS) -> None:
        self.interval = interval
        self.sizes: dict[str, int] = {}  # class -> lease, as of the last settle
        self.admitted: dict[Key, int] = {}
        self.blocked: set[Key] = set()  # reported empty: through app.rate_take until it gives a token
        self.refreshed = 0.0

    def admit(self, key: Key) -> bool:
        """Whether this worker admits the request itself (counted); else it must take a token."""
        if key in self.blocked:
            return False
        n = self.admitted.get(key, 0)
        if n >= self.sizes.get(key[0], 0):
            return False
        self.admitted[key] = n + 1
        return True

    def give_back(self, key: Key) -> None:
        """An admitted request failed in the database: it takes nothing (if not yet settled)."""
        n = self.admitted.get(key, 0)
        if n > 1:
            self.admitted[key] = n - 1
        elif n == 1:
            del self.admitted[key]

    def took(self, key: Key) -> None:
        """A request took a token in its own transaction: the bucket is not empty."""
        self.blocked.discard(key)

    async def settle(self, pool: db.Pool) -> None:
        """Debit what was admitted since the last settle; learn who is empty and the leases."""
        admitted, self.admitted = self.admitted, {}
        if not admitted and time.monotonic() - self.refreshed < REFRESH_SECONDS:
            return
        keys = list(admitted)
        try:
            rows = await db.call(
                pool,
                "api_internal",
                None,
                SETTLE,
                [[k[0] for k in keys], [k[1] for k in keys], list(admitted.values())],
                read_only=False,
            )
        except BaseException:
            for key, n in admitted.items():  # debited at the next settle
                self.admitted[key] = self.admitted.get(key, 0) + n
            raise
        result = orjson.loads(rows[0][0])
        self.sizes = {str(c): int(n) for c, n in result["leases"].items()}
        if len(self.blocked) > MAX_BLOCKED:  # memory, under a flood of addresses: each may get one more lease
            self.blocked.clear()
        self.blocked.update((str(c), str(caller)) for c, caller in result["blocked"])
        self.refreshed = time.monotonic()

    async def run(self, pool: db.Pool) -> None:
        """Settle every `interval` until cancelled; then once more, so nothing admitted is lost."""
        try:
            while True:
                try:
                    await self.settle(pool)
                except (TimeoutError, psycopg.Error, OSError) as exc:  # the database away: retried
                    log.warning("rate-limit settle failed: %s", exc.__class__.__name__)
                except Exception:
                    log.exception("rate-limit settle failed")
                await asyncio.sleep(self.interval)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.settle(pool), 2)

    def __repr__(self) -> str:
        return f"Leases(sizes={self.sizes}, admitted={len(self.admitted)}, blocked={len(self.blocked)})"
