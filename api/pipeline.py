"""Send one request's statements and a Sync, and read their results: the database round trip.

Two ways, the same semantics (every statement up to the Sync is one implicit transaction:
it commits at the Sync, or rolls back whole if any statement fails; the first error raises
once every result is read):

- `public`: psycopg's `conn.pipeline()`, its public API. psycopg flushes the socket after
  every statement and sends a second Sync when the block exits, so PostgreSQL wakes up
  several times per request (~350 us of Python per exchange).
- `direct`: `transaction` below, written on psycopg's pipeline internals (`AsyncPipeline`'s
  queues, the cursor's `_start_query`/`_maybe_prepare_gen`/`_convert_query`, the prepared
  cache's `_to_flush`): the statements go out in one write and come back in one read
  (~200 us), with psycopg's own adaptation and prepared-statement cache.

`direct` is chosen when the installed psycopg has every internal it uses (`DIRECT`), unless
NEXUS_PUBLIC_APIS=1 (or =psycopg) forces the public way (CI runs the API tests once so). What `direct`
buys is measured by `make bench` (bench/README.md); an upgrade of psycopg that moves an
internal falls back by itself, and the tests pass either way.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq
from psycopg.abc import PQGen
from psycopg.waiting import Ready, Wait

from api.settings import internals_allowed

try:
    from psycopg import _preparing
except ImportError:  # a psycopg that moved it: the public way
    _preparing = None  # type: ignore[assignment]


def _has_internals() -> bool:
    cursor, pipeline = psycopg.AsyncCursor, psycopg.AsyncPipeline
    return all(
        (
            all(hasattr(cursor, name) for name in ("_start_query", "_maybe_prepare_gen", "_convert_query")),
            all(hasattr(pipeline, name) for name in ("_enqueue_sync", "_process_results")),
            hasattr(pq.ExecStatus, "PIPELINE_SYNC"),
            "_no_lock" in pipeline.__init__.__code__.co_varnames,
            _preparing is not None
            and hasattr(_preparing.PrepareManager, "maintain_gen")
            and hasattr(_preparing.PrepareManager(), "_to_flush"),
        )
    )


DIRECT = _has_internals() and internals_allowed("psycopg")


async def run(conn: psycopg.AsyncConnection[Any], cur: psycopg.AsyncCursor[Any], steps: list[tuple[Any, Any]]) -> None:
    """Run `steps` (query, params) on `cur` as one implicit transaction (an autocommit connection);
    afterwards `cur` holds the last statement's result."""
    if DIRECT:
        await conn.wait(transaction(conn, cur, steps))
        prepared = conn._prepared
        if prepared._to_flush:  # statements the prepared cache evicted: DEALLOCATE them
            await conn.wait(prepared.maintain_gen(conn))
        return
    async with conn.pipeline():
        for query, params in steps:
            await cur.execute(query, params)


PIPELINE_SYNC = pq.ExecStatus.PIPELINE_SYNC


def transaction(
    conn: psycopg.AsyncConnection[Any], cur: psycopg.AsyncCursor[Any], steps: list[tuple[Any, Any]]
) -> PQGen[None]:
    """Send `steps` (query, params) and a Sync in one write, read every result up to the Sync.

    A generator for `conn.wait` (which, if the task is cancelled, cancels the query in the
    server and runs this to its end). Queries are adapted and prepared by psycopg's cursor, as
    `cur.execute` in a pipeline would; the first error raises once all results are read.
    """
    pgconn = conn.pgconn
    pipe = conn._pipeline = psycopg.AsyncPipeline(conn, _no_lock=True)  # only its queues
    pgconn.enter_pipeline_mode()
    try:
        for query, params in steps:
            yield from cur._start_query(query)
            yield from cur._maybe_prepare_gen(cur._convert_query(query, params))
        pipe._enqueue_sync()
        for command in pipe.command_queue:
            command()  # into libpq's buffer: pipeline mode writes at the Sync, not before
        pipe.command_queue.clear()
        sent = pgconn.flush() == 0
        fetched: list[list[pq.abc.PGresult]] = []
        results: list[pq.abc.PGresult] = []
        synced = False
        while not synced:
            ready = yield (Wait.R if sent else Wait.RW)  # reading while writing: a large body cannot deadlock
            if not ready:
                # Resumed with nothing ready (None): psycopg does so when it drives the generator
                # again after cancelling the query (a request past its deadline). Wait again, as
                # psycopg's own generators do; `None & Ready.W` raised TypeError there, and
                # psycopg closed the connection instead of reading the cancellation through.
                continue
            if not sent and ready & Ready.W:
                sent = pgconn.flush() == 0
            if ready & Ready.R:
                pgconn.consume_input()
                while not pgconn.is_busy():
                    result = pgconn.get_result()
                    if result is None:  # the end of one statement's results, or nothing more yet
                        if not results:
                            break
                        fetched.append(results)
                        results = []
                    elif result.status == PIPELINE_SYNC:
                        fetched.append([result])
                        synced = True
                        break
                    else:
                        results.append(result)
        error: psycopg.Error | None = None
        for group in fetched:
            try:
                pipe._process_results(pipe.result_queue.popleft(), group)
            except psycopg.Error as exc:
                error = error or exc  # the first: the statements after it were only aborted
        if error is not None:
            raise error
    finally:
        conn._pipeline = None
        try:
            pgconn.exit_pipeline_mode()
        except psycopg.OperationalError:  # results left unread (the wait was abandoned): unusable
            pgconn.finish()
