"""A deploy locks as little as it can (api/migrate.py): unchanged code is not re-applied, the
catalog counts are rebuilt only when what they count changed, and a migrate waits for a lock at
most LOCK_TIMEOUT at a time, so the requests queued behind it never wait long."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg

from api.migrate import LOCK_TIMEOUT, code_applied, migrate

Conn = psycopg.Connection[Any]


def oid(owner: Conn, function: str) -> int:
    (value,) = owner.execute("select %s::regprocedure::oid::int", (function,)).fetchone()  # type: ignore[misc]
    return int(value)


def test_unchanged_code_is_not_re_applied_and_force_re_applies_it(owner_url: str, owner: Conn) -> None:
    before = oid(owner, "api.payment_get(text)")
    assert code_applied(owner_url)

    assert migrate(owner_url) == []
    assert oid(owner, "api.payment_get(text)") == before  # nothing dropped, nothing locked

    assert migrate(owner_url, force=True) == []
    assert oid(owner, "api.payment_get(text)") != before
    assert code_applied(owner_url)


def test_the_counts_are_rebuilt_only_when_their_definition_changed(owner_url: str, owner: Conn) -> None:
    slug = "migrate-" + uuid.uuid4().hex[:8]
    (category,) = owner.execute(  # type: ignore[misc]
        "insert into app.categories (name, slug) values (%s, %s) returning id", (slug, slug)
    ).fetchone()
    stray = "select count(*) from app_private.catalog_counts where term = 'zz-not-a-lexeme'"
    owner.execute(
        "insert into app_private.catalog_counts (category_id, term, listings) values (%s, 'zz-not-a-lexeme', 7)",
        (category,),
    )
    try:
        migrate(owner_url, force=True)  # the code is re-applied, the counts' definition is the same
        assert owner.execute(stray).fetchone() == (1,)

        owner.execute("update app_private.code_state set counts_definition = 'an older definition'")
        migrate(owner_url, force=True)
        assert owner.execute(stray).fetchone() == (0,)  # rebuilt from the listings
        assert owner.execute(
            "select counts_definition = app.catalog_counts_definition() from app_private.code_state"
        ).fetchone() == (True,)
    finally:
        owner.execute("delete from app_private.catalog_counts where term = 'zz-not-a-lexeme'")


def test_a_migrate_behind_a_long_reader_lets_other_requests_through(owner_url: str, owner: Conn) -> None:
    """A report holds app.payments for 3 s: the migrate waits at most LOCK_TIMEOUT at a time, gives
    the lock queue back between attempts, and succeeds once the report is done; a request arriving
    meanwhile waits about LOCK_TIMEOUT at worst, not the report's 3 s."""
    assert LOCK_TIMEOUT == "1s"
    done: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        migrate(owner_url, force=True)
        done["seconds"] = time.monotonic() - started

    with psycopg.connect(owner_url) as report, psycopg.connect(owner_url, autocommit=True) as other:
        report.execute("select count(*) from app.payments").fetchone()  # holds its lock until commit
        migrating = threading.Thread(target=run)
        migrating.start()
        worst = 0.0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            started = time.monotonic()
            other.execute("select count(*) from app.payments").fetchone()
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.05)
        report.rollback()
        migrating.join(timeout=60)

    assert done["seconds"] > 3  # it waited for the report, and then succeeded
    assert worst < 1.5, worst
