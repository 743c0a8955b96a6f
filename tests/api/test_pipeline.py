"""api/pipeline.py: the direct way (psycopg's internals) and the public way (conn.pipeline())
run a request's statements with the same meaning, and the public way takes over by itself when
an internal is missing. (CI also runs the API and SQL tests through PgBouncer with
NEXUS_PUBLIC_APIS=1: the whole suite on the public way.)"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import tuple_row

from api import db, pipeline


def run(url: str, steps: list[tuple[Any, Any]]) -> list[tuple[Any, ...]]:
    async def go() -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            db.configure(conn)
            cur = conn.cursor(row_factory=tuple_row)
            await pipeline.run(conn, cur, steps)
            rows = await cur.fetchall()
            # The connection is usable afterwards, outside any transaction.
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            return rows

    return asyncio.run(go())


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "public"])
def test_the_statements_are_one_transaction_and_the_last_result_stays(
    owner_url: str, monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    monkeypatch.setattr(pipeline, "DIRECT", direct)
    rows = run(
        owner_url,
        [
            ("select set_config('nexus.probe', %s, true)", ["one transaction"]),
            ("select current_setting('nexus.probe'), %s::jsonb", ['{"a": 1}']),
        ],
    )
    assert rows == [("one transaction", b'{"a": 1}')]  # a local setting lived to the last statement; JSON as bytes


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "public"])
def test_an_error_rolls_back_every_statement_and_raises_the_first(
    owner_url: str, monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    monkeypatch.setattr(pipeline, "DIRECT", direct)
    slug = f"probe-{uuid.uuid4().hex[:8]}"
    with pytest.raises(psycopg.errors.DivisionByZero):
        run(
            owner_url,
            [
                ("insert into app.categories (name, slug) values (%s, %s)", [slug, slug]),
                ("select 1 / 0", None),
                ("select 'never reached'", None),
            ],
        )
    with psycopg.connect(owner_url) as conn:
        assert conn.execute("select count(*) from app.categories where slug = %s", [slug]).fetchone() == (0,)


def test_the_public_way_is_chosen_when_an_internal_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pipeline._has_internals()  # the pinned psycopg has them
    (owner,) = [k for k in psycopg.AsyncCursor.__mro__ if "_maybe_prepare_gen" in vars(k)]
    monkeypatch.delattr(owner, "_maybe_prepare_gen")  # as a psycopg release that renamed it would
    assert not pipeline._has_internals()
