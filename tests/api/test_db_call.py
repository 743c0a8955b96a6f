"""api/db.call's round trip (psycopg's public pipeline): a request's statements are one
implicit transaction, the last statement's rows come back (JSON as bytes), and an error
rolls every statement back and raises the first."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from api import db


def call(url: str, sql: str, params: list[Any], rate: tuple[str, str] | None = None) -> list[tuple[Any, ...]]:
    async def go() -> list[tuple[Any, ...]]:
        pool = db.make_pool(url, 1, 1, 5.0, "/media/")
        await pool.open(wait=True)
        try:
            return await db.call(pool, "nexus", None, sql, params, read_only=False, rate=rate)
        finally:
            await pool.close()

    return asyncio.run(go())


def test_the_statements_are_one_transaction_and_the_last_result_stays(owner_url: str) -> None:
    # db.call's first statement set the role and the statement timeout with set_config(..., true):
    # the call, a later statement, still sees them, so they were one transaction.
    rows = call(owner_url, "select current_setting('statement_timeout'), %s::jsonb", ['{"a": 1}'])
    assert rows == [("10s", b'{"a": 1}')]


def test_an_error_rolls_back_every_statement_and_raises_the_first(owner_url: str) -> None:
    # The first statement takes a rate-limit token (a row in app_private.rate_buckets; signup refills
    # one in 5 minutes, so a token not given back would show); then the call fails.
    caller = f"a:probe-{uuid.uuid4().hex[:8]}"
    bucket = "select tokens from app_private.rate_buckets where key = %s"
    call(owner_url, "select 1", [], rate=("signup", caller))
    with psycopg.connect(owner_url) as conn:
        (taken,) = conn.execute(bucket, [f"signup:{caller}"]).fetchone()  # type: ignore[misc]
    with pytest.raises(psycopg.errors.DivisionByZero):
        call(owner_url, "select 1 / 0", [], rate=("signup", caller))
    with psycopg.connect(owner_url) as conn:
        (left,) = conn.execute(bucket, [f"signup:{caller}"]).fetchone()  # type: ignore[misc]
    assert taken < 5 and left >= taken  # the failed call's token went back with its transaction
