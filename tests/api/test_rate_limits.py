"""Shared rate limits: a token bucket per route class and caller in PostgreSQL, so every worker
and instance counts together: taken in the request's own round trip, or admitted under a
worker's lease (a bounded number per caller) and debited in batches (api/ratelimit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from api.settings import Settings
from tests.fix_api import assert_problem, new_email
from tests.fix_contract import contract_app
from tests.fix_users import User


@pytest.fixture
def limits(owner: psycopg.Connection[Any]) -> Iterator[Any]:
    """Set a class's bucket (and lease: none unless given) for one test; forget every bucket before and after."""

    def set_limit(rate_class: str, capacity: int, per_minute: float, lease: int = 0) -> None:
        owner.execute(
            "update app_private.rate_limits set capacity = %s, per_minute = %s, lease = %s where class = %s",
            (capacity, per_minute, lease, rate_class),
        )

    saved = owner.execute("select class, capacity, per_minute, lease from app_private.rate_limits").fetchall()
    owner.execute("update app_private.rate_limits set lease = 0")
    owner.execute("delete from app_private.rate_buckets")
    yield set_limit
    for rate_class, capacity, per_minute, lease in saved:
        owner.execute(
            "update app_private.rate_limits set capacity = %s, per_minute = %s, lease = %s where class = %s",
            (capacity, per_minute, lease, rate_class),
        )
    owner.execute("delete from app_private.rate_buckets")


@pytest.fixture
def limited(settings: Settings, limits: Any) -> Iterator[TestClient]:
    # After `limits` (every lease 0): the app learns the leases when it starts, and would
    # otherwise admit reads under the migrated read lease until its next refresh.
    app = contract_app(replace(settings, rate_limits=True, trusted_proxies=frozenset({"testclient"})))
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


def test_past_the_burst_reads_get_429_with_retry_after_and_ratelimit_headers(limited: TestClient, limits: Any) -> None:
    limits("read", 3, 6)  # 3 at once, then one every 10 seconds

    statuses = [
        limited.get("/api/categories/", headers={"X-Forwarded-For": "198.51.100.1"}).status_code for _ in range(4)
    ]

    assert statuses == [200, 200, 200, 429]
    refused = limited.get("/api/categories/", headers={"X-Forwarded-For": "198.51.100.1"})
    body = assert_problem(refused, 429)
    assert "slow down" in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert refused.headers["ratelimit-limit"] == "3" and refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-policy"] == "3;w=30"
    # Another address has its own bucket.
    assert limited.get("/api/categories/", headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 200


def test_a_signed_in_user_has_one_bucket_wherever_they_come_from(limited: TestClient, limits: Any, guest: User) -> None:
    limits("read", 2, 1)

    for addr in ("203.0.113.1", "203.0.113.2"):
        assert limited.get("/api/bookings/", headers={**guest.auth, "X-Forwarded-For": addr}).status_code == 200
    assert_problem(limited.get("/api/bookings/", headers={**guest.auth, "X-Forwarded-For": "203.0.113.3"}), 429)


def test_classes_are_counted_apart_and_a_refused_write_changes_nothing(
    limited: TestClient, limits: Any, owner: psycopg.Connection[Any]
) -> None:
    limits("signup", 1, 0.1)
    addr = {"X-Forwarded-For": "192.0.2.9"}
    body = {"password": "password-123", "first_name": "R", "last_name": "L"}

    assert limited.post("/api/register/", json={**body, "email": new_email()}, headers=addr).status_code == 201
    second = new_email()
    assert_problem(limited.post("/api/register/", json={**body, "email": second}, headers=addr), 429)
    assert owner.execute("select count(*) from app.users where email = %s", (second,)).fetchone() == (0,)
    assert limited.get("/api/categories/", headers=addr).status_code == 200  # reads are another bucket


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(settings: Settings, limits: Any) -> None:
    limits("read", 1, 1)
    app = contract_app(replace(settings, rate_limits=True))  # no trusted proxies: the peer is the client
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as c:
        assert c.get("/api/categories/", headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 200
        # A forged header does not buy a fresh bucket: it is the same peer.
        assert_problem(c.get("/api/categories/", headers={"X-Forwarded-For": "198.51.100.8"}), 429)


def test_a_dba_lifts_a_class(limited: TestClient, limits: Any, owner: psycopg.Connection[Any]) -> None:
    limits("read", 1, 1)
    addr = {"X-Forwarded-For": "198.51.100.20"}
    limited.get("/api/categories/", headers=addr)
    assert limited.get("/api/categories/", headers=addr).status_code == 429

    owner.execute("update app_private.rate_limits set enabled = false where class = 'read'")
    try:
        assert limited.get("/api/categories/", headers=addr).status_code == 200
    finally:
        owner.execute("update app_private.rate_limits set enabled = true where class = 'read'")


def test_two_app_instances_share_one_bucket(settings: Settings, limits: Any) -> None:
    limits("read", 3, 1)
    cfg = replace(settings, rate_limits=True, trusted_proxies=frozenset({"testclient"}))
    addr = {"X-Forwarded-For": "198.51.100.30"}
    with (
        TestClient(contract_app(cfg), base_url="http://testserver", raise_server_exceptions=False) as one,
        TestClient(contract_app(cfg), base_url="http://testserver", raise_server_exceptions=False) as two,
    ):
        statuses = [c.get("/api/categories/", headers=addr).status_code for c in (one, two, one, two)]

        assert statuses == [200, 200, 200, 429]
        assert_problem(one.get("/api/categories/", headers=addr), 429)


def test_leases_admit_a_bounded_number_per_instance_and_the_table_still_refuses(
    settings: Settings, limits: Any, owner: psycopg.Connection[Any]
) -> None:
    limits("read", 3, 1, lease=2)  # each instance admits up to 2 of a caller's reads between settles
    cfg = replace(
        settings, rate_limits=True, trusted_proxies=frozenset({"testclient"}), rate_settle_seconds=3600
    )  # settled by the test, at the points it chooses
    addr = {"X-Forwarded-For": "198.51.100.40"}
    with (
        TestClient(contract_app(cfg), base_url="http://testserver", raise_server_exceptions=False) as one,
        TestClient(contract_app(cfg), base_url="http://testserver", raise_server_exceptions=False) as two,
    ):

        def settle(client: TestClient) -> None:
            state = client.app.app.state  # type: ignore[attr-defined]  # the Starlette app inside the contract check
            client.portal.call(state.leases.settle, state.pool)  # type: ignore[union-attr]

        def reads(client: TestClient, n: int) -> list[int]:
            return [client.get("/api/categories/", headers=addr).status_code for _ in range(n)]

        settle(one), settle(two)  # both know the lease
        first = reads(one, 2)
        settle(one)
        (tokens,) = owner.execute(
            "select tokens from app_private.rate_buckets where key = 'read:a:198.51.100.40'"
        ).fetchone()
        second = reads(two, 3)
        settle(two)
        third = reads(two, 1) + reads(one, 3)

        assert first == [200, 200] and 0.9 < tokens < 1.1  # the table counted one's two
        # two's own 2, then a token taken in the request's transaction (the last one)
        assert second == [200, 200, 200]
        # two knows the bucket is empty: the table refuses; one still had its lease of 2, then the table
        assert third == [429, 200, 200, 429]
        # 7 admitted against a bucket of 3: the bound, 2 per instance (3 + 2 x 2)
        refused = two.get("/api/categories/", headers=addr)
        assert_problem(refused, 429)
        assert refused.headers["ratelimit-limit"] == "3" and int(refused.headers["retry-after"]) >= 60


def test_a_migrated_database_leases_reads_and_nothing_else(owner: psycopg.Connection[Any]) -> None:
    # A read lease of 0 makes every read a writing transaction (app.rate_take): make bench showed
    # the limit costing a detail request 14-20 % on nexus_bench (built fresh, lease 0), ~0 % with 10.
    # 0015 set it on databases that had their policies already; on a fresh one (this one) 0017 does.
    leases = dict(owner.execute("select class, lease from app_private.rate_limits").fetchall())

    assert leases == {"read": 10, "write": 0, "signup": 0, "upload": 0, "payment": 0, "message": 0}
