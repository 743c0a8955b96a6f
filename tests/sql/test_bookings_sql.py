"""Bookings in SQL: refund policy boundaries, transitions, holds, the job, the pending cap, RLS.

Calls go through the authenticator exactly as the API makes them (role + claims + call,
committed), so what is tested is what the API runs. Setup is done as the owner.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.fix_data import day, new_listing, new_user, today

UTC = dt.UTC


# --- helpers ------------------------------------------------------------------------------


def call(conn: psycopg.Connection[Any], role: str, user_id: str | None, query: str, params: Any = ()) -> Any:
    """One committed transaction as `role` with the user's claims, like the API; returns the first column."""
    claims = json.dumps({"sub": user_id, "role": role}) if user_id else ""
    try:
        with conn.transaction():
            conn.execute(
                "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)", (role, claims)
            )
            row = conn.execute(query, params).fetchone()
    except psycopg.Error:
        raise
    return row[0] if row else None


def book(
    conn: psycopg.Connection[Any],
    guest: str,
    product: str,
    start: int,
    end: int,
    guests: int = 1,
    key: str | None = None,
    role: str = "guest",
) -> dict[str, Any]:
    body = json.dumps({"product_id": product, "start_date": day(start), "end_date": day(end), "guests": guests})
    return call(  # type: ignore[no-any-return]
        conn, role, guest, "select api.booking_create(p_body => %s::jsonb, p_idempotency_key => %s)", (body, key)
    )


@pytest.fixture
def app(app_url: str) -> Any:
    with psycopg.connect(app_url, autocommit=True, prepare_threshold=None) as conn:
        yield conn


def sqlstate(exc: pytest.ExceptionInfo[psycopg.Error]) -> str | None:
    return exc.value.sqlstate


# --- the refund policy, at its boundaries -------------------------------------------------

CHECK_IN = dt.datetime(2030, 6, 15, 15, 0, tzinfo=UTC)
SECOND = dt.timedelta(seconds=1)


@pytest.mark.parametrize(
    ("policy", "now", "expected"),
    [
        ("flexible", CHECK_IN - dt.timedelta(days=30), "300.00"),
        ("flexible", CHECK_IN - dt.timedelta(hours=24), "300.00"),
        ("flexible", CHECK_IN - dt.timedelta(hours=24) + SECOND, "0"),
        ("flexible", CHECK_IN + dt.timedelta(days=1), "0"),
        ("moderate", CHECK_IN - dt.timedelta(days=30), "300.00"),
        ("moderate", CHECK_IN - dt.timedelta(days=5), "300.00"),
        ("moderate", CHECK_IN - dt.timedelta(days=5) + SECOND, "150.00"),
        ("moderate", CHECK_IN - dt.timedelta(hours=1), "150.00"),
        ("strict", CHECK_IN - dt.timedelta(days=30), "150.00"),
        ("strict", CHECK_IN - dt.timedelta(days=7), "150.00"),
        ("strict", CHECK_IN - dt.timedelta(days=7) + SECOND, "0"),
        ("strict", CHECK_IN - dt.timedelta(hours=1), "0"),
    ],
)
def test_refund_policy_boundaries(owner: psycopg.Connection[Any], policy: str, now: dt.datetime, expected: str) -> None:
    (refund,) = owner.execute(
        "select app.booking_refund(%s::app.cancellation_policy, 300.00, %s, false, %s)", (policy, CHECK_IN, now)
    ).fetchone()  # type: ignore[misc]
    assert Decimal(refund) == Decimal(expected)


@pytest.mark.parametrize("policy", ["flexible", "moderate", "strict"])
def test_host_cancellation_refunds_in_full_even_after_check_in(owner: psycopg.Connection[Any], policy: str) -> None:
    (refund,) = owner.execute(
        "select app.booking_refund(%s::app.cancellation_policy, 300.00, %s, true, %s)",
        (policy, CHECK_IN, CHECK_IN + dt.timedelta(days=1)),
    ).fetchone()  # type: ignore[misc]
    assert refund == Decimal("300.00")


def test_half_refunds_round_to_the_currency(owner: psycopg.Connection[Any]) -> None:
    (usd, jpy) = owner.execute(
        """select app.booking_refund('strict', 100.01, %s, false, %s, 2),
                  app.booking_refund('strict', 1001, %s, false, %s, 0)""",
        (CHECK_IN, CHECK_IN - dt.timedelta(days=30), CHECK_IN, CHECK_IN - dt.timedelta(days=30)),
    ).fetchone()  # type: ignore[misc]
    assert (usd, jpy) == (Decimal("50.01"), Decimal("501"))


def test_check_in_is_start_date_at_15_00_utc(owner: psycopg.Connection[Any]) -> None:
    (at,) = owner.execute("select app.booking_check_in('2030-06-15')").fetchone()  # type: ignore[misc]
    assert at == CHECK_IN


# --- creation: price, snapshot, calendar --------------------------------------------------


def test_booking_computes_price_and_takes_the_calendar(owner: psycopg.Connection[Any], app: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    listing = new_listing(owner, host, price="85.50", policy="strict")
    booking = book(app, guest, listing, 10, 13, guests=2)
    assert booking["status"] == "pending"
    assert (booking["nights"], booking["price_per_night"], booking["total_price"]) == (3, "85.50", "256.50")
    assert (booking["currency"], booking["cancellation_policy"], booking["host_id"]) == ("USD", "strict", host)
    stay = owner.execute(
        "select lower(stay), upper(stay) from app.calendar_entries where booking_id = %s", (booking["id"],)
    ).fetchone()
    assert stay == (today() + dt.timedelta(days=10), today() + dt.timedelta(days=13))


def test_calendar_mirrors_holding_bookings(owner: psycopg.Connection[Any]) -> None:
    (bad,) = owner.execute(
        """select count(*) from app.bookings b full join app.calendar_entries c on c.booking_id = b.id
            where (b.status in ('pending', 'confirmed')) is distinct from (c.id is not null)
              and (b.id is not null or c.booking_id is not null)"""
    ).fetchone()  # type: ignore[misc]
    assert bad == 0


def test_bookings_exclusion_holds_even_for_the_owner(owner: psycopg.Connection[Any], app: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    listing = new_listing(owner, host)
    book(app, guest, listing, 10, 13)
    with pytest.raises(psycopg.errors.ExclusionViolation):
        owner.execute(
            """insert into app.bookings (product_id, guest_id, host_id, start_date, end_date, guests, price_per_night,
                                         total_price, currency, cancellation_policy, expires_at)
               values (%s, %s, %s, %s, %s, 1, 100, 100, 'USD', 'moderate', now() + interval '1 hour')""",
            (listing, guest, host, day(12), day(13)),
        )


# --- transitions ---------------------------------------------------------------------------


def confirmed(owner: psycopg.Connection[Any], app: Any, start: int = 10, end: int = 12) -> tuple[str, str, str]:
    host, guest = new_user(owner, "host"), new_user(owner)
    listing = new_listing(owner, host)
    booking = book(app, guest, listing, start, end)
    call(app, "host", host, "select api.booking_confirm(%s)", (booking["id"],))
    return host, guest, booking["id"]


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("completed", "pending"),
        ("completed", "confirmed"),
        ("completed", "canceled"),
        ("canceled", "pending"),
        ("canceled", "confirmed"),
        ("canceled", "completed"),
        ("confirmed", "pending"),
        ("pending", "completed"),
    ],
)
def test_forbidden_transitions_are_409_even_for_the_owner(
    owner: psycopg.Connection[Any], app: Any, start: str, target: str
) -> None:
    host, guest, bid = confirmed(owner, app, 10, 11)
    if start == "completed":
        owner.execute("update app.bookings set status = 'completed', completed_at = now() where id = %s", (bid,))
    elif start == "canceled":
        call(app, "guest", guest, "select api.booking_cancel(%s)", (bid,))
    elif start == "pending":
        other = new_user(owner)
        listing = new_listing(owner, host)
        bid = book(app, other, listing, 10, 11)["id"]
    with pytest.raises(psycopg.Error) as exc:
        owner.execute("update app.bookings set status = %s where id = %s", (target, bid))
    assert sqlstate(exc) == "PT409"


def test_booked_facts_never_change(owner: psycopg.Connection[Any], app: Any) -> None:
    _, _, bid = confirmed(owner, app)
    with pytest.raises(psycopg.Error) as exc:
        owner.execute("update app.bookings set total_price = 1, price_per_night = 0.5 where id = %s", (bid,))
    assert sqlstate(exc) == "PT409"


def test_allowed_transitions_through_functions_and_job(owner: psycopg.Connection[Any], app: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    listing = new_listing(owner, host)
    b = book(app, guest, listing, 0, 1)
    b = call(app, "host", host, "select api.booking_confirm(%s)", (b["id"],))
    assert b["status"] == "confirmed" and b["expires_at"] is None and b["confirmed_at"]
    checkout = dt.datetime.combine(today() + dt.timedelta(days=1), dt.time(11, 0), UTC)
    owner.execute("select app.run_booking_jobs(%s)", (checkout - SECOND,))
    (status,) = owner.execute("select status from app.bookings where id = %s", (b["id"],)).fetchone()  # type: ignore[misc]
    assert status == "confirmed"
    (after,) = owner.execute("select app.run_booking_jobs(%s)", (checkout,)).fetchone()  # type: ignore[misc]
    assert after["completed"] >= 1
    row = owner.execute("select status, completed_at from app.bookings where id = %s", (b["id"],)).fetchone()
    assert row == ("completed", checkout)
    (taken,) = owner.execute("select count(*) from app.calendar_entries where booking_id = %s", (b["id"],)).fetchone()  # type: ignore[misc]
    assert taken == 0


# --- holds: expiry and the cap -------------------------------------------------------------


def test_job_expires_stale_holds_and_frees_dates(owner: psycopg.Connection[Any], app: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    listing = new_listing(owner, host)
    b = book(app, guest, listing, 20, 22)
    expires = dt.datetime.fromisoformat(b["expires_at"])
    created = dt.datetime.fromisoformat(b["created_at"])
    assert dt.timedelta(minutes=29) < expires - created <= dt.timedelta(minutes=30, seconds=1)
    owner.execute("select app.run_booking_jobs(%s)", (expires - SECOND,))
    (status,) = owner.execute("select status from app.bookings where id = %s", (b["id"],)).fetchone()  # type: ignore[misc]
    assert status == "pending"
    (result,) = owner.execute("select app.run_booking_jobs(%s)", (expires,)).fetchone()  # type: ignore[misc]
    assert result["expired"] >= 1
    row = owner.execute(
        "select status, canceled_at, canceled_by, cancel_reason, refund_amount from app.bookings where id = %s",
        (b["id"],),
    ).fetchone()
    assert row == ("canceled", expires, None, "Hold expired.", Decimal("0.00"))
    again = book(app, new_user(owner), listing, 20, 22)
    assert again["status"] == "pending"


def test_a_stale_hold_does_not_block_a_new_booking_before_the_job_runs(
    owner: psycopg.Connection[Any], app: Any
) -> None:
    host, guest, other = new_user(owner, "host"), new_user(owner), new_user(owner)
    listing = new_listing(owner, host)
    b = book(app, guest, listing, 20, 22)
    owner.execute("update app.bookings set expires_at = now() - interval '1 second' where id = %s", (b["id"],))
    availability = call(app, "anon", None, "select api.product_availability(%s)", (listing,))
    assert availability["unavailable"] == []
    assert book(app, other, listing, 21, 23)["status"] == "pending"
    (status,) = owner.execute("select status from app.bookings where id = %s", (b["id"],)).fetchone()  # type: ignore[misc]
    assert status == "canceled"


def test_expired_hold_cannot_be_confirmed(owner: psycopg.Connection[Any], app: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    b = book(app, guest, new_listing(owner, host), 20, 22)
    owner.execute("update app.bookings set expires_at = now() - interval '1 second' where id = %s", (b["id"],))
    with pytest.raises(psycopg.Error) as exc:
        call(app, "host", host, "select api.booking_confirm(%s)", (b["id"],))
    assert sqlstate(exc) == "PT409"


def test_pending_cap(owner: psycopg.Connection[Any], app: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    listings = [new_listing(owner, host) for _ in range(4)]
    first = [book(app, guest, listing, 10, 12) for listing in listings[:3]]
    with pytest.raises(psycopg.Error) as exc:
        book(app, guest, listings[3], 10, 12)
    assert sqlstate(exc) == "PT409"
    assert "pending" in str(exc.value)
    call(app, "host", host, "select api.booking_confirm(%s)", (first[0]["id"],))
    assert book(app, guest, listings[3], 10, 12)["status"] == "pending"


def test_pending_cap_is_configurable(owner: psycopg.Connection[Any], app: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    owner.execute("update app_private.booking_settings set max_pending = 1")
    try:
        book(app, guest, new_listing(owner, host), 10, 12)
        with pytest.raises(psycopg.Error) as exc:
            book(app, guest, new_listing(owner, host), 10, 12)
        assert sqlstate(exc) == "PT409"
    finally:
        owner.execute("update app_private.booking_settings set max_pending = 3")


def test_expired_holds_do_not_count_towards_the_cap(owner: psycopg.Connection[Any], app: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    ids = [book(app, guest, new_listing(owner, host), 10, 12)["id"] for _ in range(3)]
    owner.execute("update app.bookings set expires_at = now() - interval '1 second' where id = any(%s::uuid[])", (ids,))
    assert book(app, guest, new_listing(owner, host), 10, 12)["status"] == "pending"


def test_job_purges_old_idempotency_keys(owner: psycopg.Connection[Any], app: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    book(app, guest, new_listing(owner, host), 10, 12, key="purge-me")
    later = dt.datetime.now(UTC) + dt.timedelta(hours=25)
    (result,) = owner.execute("select app.run_booking_jobs(%s)", (later,)).fetchone()  # type: ignore[misc]
    assert result["purged_keys"] >= 1
    (left,) = owner.execute("select count(*) from app_private.idempotency_keys where user_id = %s", (guest,)).fetchone()  # type: ignore[misc]
    assert left == 0


# --- idempotency under concurrency --------------------------------------------------------


def test_concurrent_retries_with_one_key_make_one_booking(owner: psycopg.Connection[Any], app_url: str) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    listing = new_listing(owner, host)
    n = 12
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def attempt(i: int) -> None:
        with psycopg.connect(app_url, autocommit=True, prepare_threshold=None) as conn:
            barrier.wait()
            try:
                results[i] = book(conn, guest, listing, 30, 33, key="same-key")["id"]
            except psycopg.Error as exc:
                results[i] = exc.sqlstate

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1, results
    (count,) = owner.execute("select count(*) from app.bookings where guest_id = %s", (guest,)).fetchone()  # type: ignore[misc]
    assert count == 1


def test_same_key_different_body_is_422(owner: psycopg.Connection[Any], app: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    listing = new_listing(owner, host)
    book(app, guest, listing, 30, 33, key="k1")
    with pytest.raises(psycopg.Error) as exc:
        book(app, guest, listing, 30, 34, key="k1")
    assert sqlstate(exc) == "PT422"


def test_keys_are_per_user(owner: psycopg.Connection[Any], app: Any) -> None:
    host, a, b = new_user(owner, "host"), new_user(owner), new_user(owner)
    listing = new_listing(owner, host)
    first = book(app, a, listing, 30, 33, key="shared")
    second = book(app, b, listing, 33, 35, key="shared")
    assert first["id"] != second["id"]


# --- row-level security --------------------------------------------------------------------


def test_rls_guest_host_admin_anon(owner: psycopg.Connection[Any], app: Any, as_role: Any) -> None:
    host, guest, other_guest, other_host = (
        new_user(owner, "host"),
        new_user(owner),
        new_user(owner),
        new_user(owner, "host"),
    )
    admin = new_user(owner, "admin")
    b = book(app, guest, new_listing(owner, host), 10, 12)
    query = "select count(*) from app.bookings where id = %s"
    for role, uid, expected in [
        ("guest", guest, 1),
        ("host", host, 1),
        ("admin", admin, 1),
        ("guest", other_guest, 0),
        ("host", other_host, 0),
    ]:
        assert as_role(role, uid).execute(query, (b["id"],)).fetchone() == (expected,), (role, expected)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role("anon").execute(query, (b["id"],))


def test_clients_cannot_write_bookings_directly(owner: psycopg.Connection[Any], app: Any, as_role: Any) -> None:
    host, guest = new_user(owner, "host"), new_user(owner)
    b = book(app, guest, new_listing(owner, host), 10, 12)
    for role, uid in [("guest", guest), ("host", host), ("admin", new_user(owner, "admin"))]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_role(role, uid).execute("update app.bookings set status = 'confirmed' where id = %s", (b["id"],))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_role(role, uid).execute("delete from app.calendar_entries")


def test_calendar_is_public_but_only_product_and_stay(owner: psycopg.Connection[Any], as_role: Any) -> None:
    conn = as_role("anon")
    conn.execute("select product_id, stay from app.calendar_entries limit 1")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role("anon").execute("select reason from app.calendar_entries limit 1")


def test_job_and_private_helpers_are_not_for_clients(owner: psycopg.Connection[Any], as_role: Any) -> None:
    admin = new_user(owner, "admin")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_role("admin", admin).execute("select app.run_booking_jobs()")


def test_a_bad_body_is_a_400_naming_the_fields_on_a_fresh_connection(
    app_url: str, owner: psycopg.Connection[Any]
) -> None:
    """Before any booking on the connection: no field check may read a listing that was never looked up."""
    guest = new_user(owner, "guest")
    for body in ({}, {"product_id": "nope", "guests": 2}):
        with psycopg.connect(app_url, autocommit=True, prepare_threshold=None) as fresh:
            with pytest.raises(psycopg.Error) as caught:
                call(fresh, "guest", guest, "select api.booking_create(%s::jsonb)", (json.dumps(body),))
        assert caught.value.sqlstate == "PT400"
        assert "product_id" in json.loads(caught.value.diag.message_detail or "{}")
