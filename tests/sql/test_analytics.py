"""The analyst reads curated views and nothing else, read-only, with no personal data."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

PERSONAL = {"email", "first_name", "last_name", "phone_number", "guest_id", "host_id", "user_id", "cancel_reason"}


def test_analyst_reads_every_view(owner: psycopg.Connection[Any], analyst_url: str) -> None:
    views = [
        v for (v,) in owner.execute("select table_name from information_schema.views where table_schema = 'analytics'")
    ]

    assert {"bookings", "revenue_daily", "payments", "payouts", "money_daily"} <= set(views)
    with psycopg.connect(analyst_url) as conn:
        for view in views:
            conn.execute(f"select * from analytics.{view} limit 5").fetchall()


def test_views_expose_no_personal_columns(owner: psycopg.Connection[Any]) -> None:
    columns = {
        c
        for (c,) in owner.execute("select column_name from information_schema.columns where table_schema = 'analytics'")
    }
    assert columns and not (columns & PERSONAL)


def test_analyst_cannot_write_or_reach_tables(analyst_url: str) -> None:
    with psycopg.connect(analyst_url) as conn:
        assert conn.execute("show transaction_read_only").fetchone() == ("on",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("create temp table t (x int)")
    with psycopg.connect(analyst_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select * from app.bookings")
    with psycopg.connect(analyst_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select api.me()")
