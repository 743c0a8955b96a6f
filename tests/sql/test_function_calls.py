"""The catalog's reads call no SQL function that PostgreSQL cannot inline.

PostgreSQL 15 parses and plans a SQL-language function on every call unless the planner
inlines it into the calling statement (a single SELECT with no FROM and no subquery, no SET,
not SECURITY DEFINER). That once cost 80 % of a listing detail's time in the database
(issue 15). With track_functions = 'all', pg_stat_xact_user_functions counts exactly the
calls that were not inlined: none of them may be a SQL-language function on these paths.
Deterministic, not timed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.fix_db import with_user
from tests.fix_users import User

Conn = psycopg.Connection[Any]

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("NEXUS_TEST_DATABASE_URL")), reason="needs the test cluster's superuser (track_functions)"
)


@pytest.fixture
def listing(owner: Conn, make_user: Callable[..., User]) -> dict[str, Any]:
    """A published listing with amenities, photos and a review's worth of host."""
    host = make_user("host")
    slug = "calls-" + uuid.uuid4().hex[:12]
    (category,) = owner.execute(
        "insert into app.categories (name, slug) values (%s, %s) returning id", (slug, slug)
    ).fetchone()  # type: ignore[misc]
    (product,) = owner.execute(
        """insert into app.products (host_id, category_id, name, description, location, price_per_night, max_guests)
           values (%s, %s, 'Calls flat', 'Quiet', 'Accra', 10, 2) returning id""",
        (host.id, category),
    ).fetchone()  # type: ignore[misc]
    owner.execute(
        "insert into app.product_amenities (product_id, amenity) select %s, slug from app.amenities limit 2", (product,)
    )
    for position in range(2):
        owner.execute(
            "insert into app.product_photos (product_id, path, content_type, size_bytes, position)"
            " values (%s, %s, 'image/jpeg', 10, %s)",
            (product, f"photos/{uuid.uuid4().hex}.jpg", position),
        )
    return {"id": str(product), "slug": slug}


def sql_function_calls(owner_url: str, statement: str, params: tuple[Any, ...]) -> dict[str, int]:
    """Run `statement` as anon with every function call counted; the SQL-language ones that ran as calls."""
    with psycopg.connect(with_user(owner_url, "postgres"), autocommit=True) as conn:
        conn.execute("begin")
        conn.execute("set local track_functions = 'all'")
        conn.execute("set local nexus.media_url = '/media/'")
        conn.execute("set local role anon")
        row = conn.execute(statement, params).fetchone()
        assert row is not None and row[0] is not None
        conn.execute("reset role")
        calls = conn.execute(
            """select s.schemaname || '.' || s.funcname, s.calls
               from pg_stat_xact_user_functions s
               join pg_proc p on p.oid = s.funcid
               join pg_language l on l.oid = p.prolang
               where l.lanname = 'sql'"""
        ).fetchall()
        conn.execute("rollback")
    return dict(calls)


def test_a_listing_detail_calls_no_sql_function(owner_url: str, listing: dict[str, Any]) -> None:
    assert sql_function_calls(owner_url, "select api.product_get(%s)", (listing["id"],)) == {}


def test_a_search_page_calls_no_sql_function_per_listing(owner_url: str, listing: dict[str, Any]) -> None:
    calls = sql_function_calls(
        owner_url, "select results from api.product_list(p_category => %s, p_search => 'calls')", (listing["slug"],)
    )
    assert "app.product_json" not in calls
    assert "app.media_url" not in calls
