"""Reviews in SQL: who reads which rows, nobody writes the table directly, and the listing's
rating stays exact when many guests review one listing at the same moment."""

from __future__ import annotations

import json
import threading
from typing import Any

import psycopg
import pytest

from tests.fix_data import day, new_listing, new_user
from tests.fix_db import As


def completed_booking(owner: psycopg.Connection[Any], listing: str, host: str, guest: str, offset: int) -> str:
    """A completed stay in the past (as history would have it): reviewable for 14 days."""
    (bid,) = owner.execute(
        """insert into app.bookings (product_id, guest_id, host_id, start_date, end_date, guests, price_per_night,
                                     total_price, currency, cancellation_policy, status, confirmed_at, completed_at)
           values (%s, %s, %s, %s, %s, 1, 100, 100, 'USD', 'moderate', 'completed', now(), now()) returning id""",
        (listing, guest, host, day(-offset - 1), day(-offset)),
    ).fetchone()  # type: ignore[misc]
    return str(bid)


def write_review(as_role: As, guest: str, booking: str, rating: int) -> dict[str, Any]:
    conn = as_role("guest", guest)
    (body,) = conn.execute(
        "select api.review_create(%s, %s)", (booking, json.dumps({"rating": rating, "comment": "ok"}))
    ).fetchone()  # type: ignore[misc]
    conn.execute("commit")
    return body  # type: ignore[no-any-return]


@pytest.fixture
def hidden_review(owner: psycopg.Connection[Any], as_role: As) -> dict[str, str]:
    host, guest = new_user(owner, "host"), new_user(owner)
    listing = new_listing(owner, host)
    review = write_review(as_role, guest, completed_booking(owner, listing, host, guest, 1), 2)
    owner.execute("update app.reviews set hidden_at = now(), hidden_reason = 'spam' where id = %s", (review["id"],))
    return {"id": review["id"], "host": host, "guest": guest, "listing": listing}


def visible_to(as_role: As, role: str, user: str | None, review_id: str) -> int:
    conn = as_role(role, user)
    (n,) = conn.execute("select count(*) from app.reviews where id = %s", (review_id,)).fetchone()  # type: ignore[misc]
    return int(n)


def test_a_hidden_review_is_read_by_its_author_the_host_and_admins_only(
    owner: psycopg.Connection[Any], as_role: As, hidden_review: dict[str, str]
) -> None:
    rid = hidden_review["id"]

    assert visible_to(as_role, "guest", hidden_review["guest"], rid) == 1
    assert visible_to(as_role, "host", hidden_review["host"], rid) == 1
    assert visible_to(as_role, "admin", new_user(owner, "admin"), rid) == 1
    assert visible_to(as_role, "guest", new_user(owner), rid) == 0
    assert visible_to(as_role, "host", new_user(owner, "host"), rid) == 0
    assert visible_to(as_role, "anon", None, rid) == 0


@pytest.mark.parametrize(
    "statement",
    [
        "update app.reviews set rating = 5 where id = %(id)s",
        "delete from app.reviews where id = %(id)s",
        "insert into app.reviews (booking_id, product_id, guest_id, host_id, rating, comment)"
        " select booking_id, product_id, guest_id, host_id, 5, 'fake' from app.reviews where id = %(id)s",
    ],
)
@pytest.mark.parametrize("role", ["anon", "guest", "host", "admin"])
def test_no_role_writes_reviews_directly(
    owner: psycopg.Connection[Any], as_role: As, hidden_review: dict[str, str], role: str, statement: str
) -> None:
    user = {"guest": hidden_review["guest"], "host": hidden_review["host"], "admin": new_user(owner, "admin")}.get(role)
    conn = as_role(role, user)

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement, {"id": hidden_review["id"]})


@pytest.mark.slow
def test_concurrent_reviews_of_one_listing_keep_its_rating_exact(owner: psycopg.Connection[Any], app_url: str) -> None:
    host = new_user(owner, "host")
    listing = new_listing(owner, host)
    ratings = [1, 2, 3, 4, 5] * 2
    guests = [new_user(owner) for _ in ratings]
    bookings = [completed_booking(owner, listing, host, g, 1 + i) for i, g in enumerate(guests)]
    barrier = threading.Barrier(len(ratings), timeout=30)
    errors: list[BaseException] = []

    def review(i: int) -> None:
        try:
            with psycopg.connect(app_url, autocommit=True, prepare_threshold=None) as conn, conn.transaction():
                conn.execute(
                    "select set_config('role', 'guest', true), set_config('request.jwt.claims', %s, true)",
                    (json.dumps({"sub": guests[i], "role": "guest"}),),
                )
                barrier.wait()
                conn.execute(
                    "select api.review_create(%s, %s)",
                    (bookings[i], json.dumps({"rating": ratings[i], "comment": "ok"})),
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=review, args=(i,)) for i in range(len(ratings))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    (avg, count) = owner.execute(
        "select rating_avg::text, rating_count from app.products where id = %s", (listing,)
    ).fetchone()  # type: ignore[misc]
    assert (avg, count) == ("3.00", 10)
