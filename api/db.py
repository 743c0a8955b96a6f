"""One request = one transaction, in one round trip.

The connection pool logs in as `authenticator`. For each request, pipelined up to a
single Sync: one statement takes a rate-limit token
(app.rate_take, as authenticator) and sets role, JWT claims, MEDIA_URL, the statement
timeout, for GETs read-only, and the request id (and, with tracing on, the traceparent: a job
the transaction defers carries both, app_private.defer), all with set_config(..., true); for a signed-in user
`app.check_session()` (deactivated users and revoked sessions stop here); the call itself. In the extended query protocol
everything up to a Sync is one implicit transaction: it commits at the Sync, or
rolls back whole if any statement fails, and the local settings end with it; so no
BEGIN or COMMIT is sent; nothing is set on the session, so PgBouncer's transaction pooling
is safe. JSON comes back as bytes, untouched.

The statements go out in psycopg's pipeline (`conn.pipeline()`, its public API): the Sync
is sent when the block ends, and the first error raises once every result is read. A driver
of psycopg's pipeline internals that wrote them in one write and read them in one pass was
dropped (issue 23): make bench, interleaved, 20 s slices, measured it buying 3.4 % on detail,
5.1 % on a signed-in read and 5.6 % on browse, under the 10 % a library internal must buy.
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
from psycopg.adapt import Loader
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from api import logs, tracing
from api.errors import from_database

# One statement, its target list run left to right: the token is taken (as authenticator, which
# may execute app.rate_take; nulls, for internal calls, skip it) before the role switches and
# before the transaction turns read-only. A second statement for the take cost ~10 % of a
# detail request (make bench, rate limit's cost).
CONTEXT = (
    "select app.rate_take(%s, %s), set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
    " set_config('nexus.media_url', %s, true), set_config('statement_timeout', %s, true),"
    " set_config('transaction_read_only', %s, true), set_config('nexus.request_id', %s, true)"
)
# With tracing on (api/tracing.py), the SQL call's span as the parent of the jobs the transaction defers.
CONTEXT_TRACED = CONTEXT + ", set_config('nexus.traceparent', %s, true)"
CHECK_SESSION = "select app.check_session()"


class RawJSON(Loader):
    """Keep json/jsonb as the bytes PostgreSQL produced: no parse, no re-encode."""

    def load(self, data: Any) -> bytes:
        return bytes(data)


def configure(conn: psycopg.AsyncConnection[Any]) -> None:
    conn.adapters.register_loader("json", RawJSON)
    conn.adapters.register_loader("jsonb", RawJSON)


class Pool(AsyncConnectionPool):
    """The authenticator's pool, the MEDIA_URL each transaction learns (nexus.media_url, read by
    app.media_url()), and the statement timeout of each client role."""

    media_url: str = "/media/"
    statement_timeouts: dict[str, str] = {}


def make_pool(
    url: str,
    min_size: int,
    max_size: int,
    timeout: float,
    media_url: str,
    prepare: bool = True,
    statement_timeouts: dict[str, str] | None = None,
) -> Pool:
    """The authenticator's pool.

    Everything a transaction needs is set in that transaction (CONTEXT), never on the
    session, so it also works through PgBouncer in transaction pooling. `prepare=False` sends
    no server-side prepared statements (PgBouncer before 1.21 cannot route them).
    """

    async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
        configure(conn)

    pool = Pool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        configure=_configure,
        kwargs={"autocommit": True, "prepare_threshold": 0 if prepare else None},
        timeout=timeout,
    )
    pool.media_url = media_url
    pool.statement_timeouts = statement_timeouts or {}
    return pool


async def call(
    pool: Pool,
    role: str,
    claims: dict[str, Any] | None,
    sql: str | psycopg.sql.Composed,
    params: list[Any],
    read_only: bool,
    rate: tuple[str, str] | None = None,
    name: str | None = None,
) -> list[tuple[Any, ...]]:
    """Run `sql` as `role` with `claims` in one transaction; return its rows.

    `rate` is (route class, caller) for the shared rate limit (app.rate_take): a client's
    request passes it; the API's own internal calls do not. `name` names the call's span when
    tracing is on (the function called: else read from `sql`).
    """
    claims_json = orjson.dumps(claims).decode() if claims else ""
    rate_class, caller = rate or (None, None)
    context = (
        rate_class,
        caller,
        role,
        claims_json,
        pool.media_url,
        pool.statement_timeouts.get(role, "10s"),
        "on" if read_only else "off",
        logs.REQUEST_ID.get(),
    )
    if tracing.ON:
        with tracing.sql_span(name or (sql if isinstance(sql, str) else "sql")) as traceparent:
            return await _call(pool, CONTEXT_TRACED, (*context, traceparent), claims, sql, params)
    return await _call(pool, CONTEXT, context, claims, sql, params)


async def _call(
    pool: Pool,
    statement: str,
    context: tuple[Any, ...],
    claims: dict[str, Any] | None,
    sql: str | psycopg.sql.Composed,
    params: list[Any],
) -> list[tuple[Any, ...]]:
    steps: list[tuple[Any, Any]] = [(statement, context)]
    if claims:
        steps.append((CHECK_SESSION, None))
    steps.append((sql, params))
    # On any error the implicit transaction has already rolled back at the Sync; a
    # connection left in any other state is rolled back or discarded by the pool.
    # (getconn/putconn rather than pool.connection(): its commit on the way out is a wait for nothing.)
    conn = await pool.getconn()
    try:
        cur = conn.cursor(row_factory=tuple_row)  # each statement's result replaces the last: the call's stays
        async with conn.pipeline():
            for statement, values in steps:
                await cur.execute(statement, values)
        return await cur.fetchall()
    finally:
        await pool.putconn(conn)


async def call_as(pool: Pool, role: str, sql: str, params: list[Any]) -> Any:
    """One call as `role` without a user (e.g. `api_internal`, for what only this process verified); its value.

    A database error becomes the Problem a client would see (as an anonymous caller).
    """
    try:
        rows = await call(pool, role, None, sql, params, read_only=False)
    except psycopg.Error as exc:
        raise from_database(exc, anonymous=True) from exc
    return rows[0][0]
