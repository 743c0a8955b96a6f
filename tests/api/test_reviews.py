"""Reviews over HTTP: writing one for a completed stay, editing, the host's response, moderation, reading.

Tested as the booking's guest, another guest, the listing's host, another host, an admin and
anonymous. A completed stay is made the way production makes one: the booking job runs
after check-out.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from tests.fix_api import assert_problem
from tests.fix_data import day, new_listing
from tests.fix_users import MakeUser, User


def stay(
    client: TestClient, owner: psycopg.Connection[Any], host: User, guest: User, *, complete: bool = True
) -> dict[str, Any]:
    """A confirmed stay of a new listing of `host`, completed by the booking job unless told not to."""
    listing = new_listing(owner, host.id)
    r = client.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(1), "end_date": day(3), "guests": 1},
        headers=guest.auth,
    )
    assert r.status_code == 201, r.text
    booking = r.json()
    client.post(f"/api/bookings/{booking['id']}/confirm/", headers=host.auth)
    if complete:
        # Four days on: check-out has passed, the job completes the stay.
        owner.execute("select app.run_booking_jobs(now() + interval '4 days')")
    return booking  # type: ignore[no-any-return]


def review(client: TestClient, user: User | None, booking: dict[str, Any], **body: Any) -> Any:
    body = {"rating": 5, "comment": "Lovely place.", **body}
    return client.post(f"/api/bookings/{booking['id']}/review/", json=body, headers=user.auth if user else {})


def listing_rating(client: TestClient, product_id: str) -> tuple[Any, Any]:
    p = client.get(f"/api/products/{product_id}/").json()
    return p["rating_avg"], p["rating_count"]


@pytest.fixture
def own_host(make_user: MakeUser) -> User:
    return make_user("host")


# --- writing -----------------------------------------------------------------------------------


def test_guest_reviews_a_completed_stay_and_the_rating_follows_at_once(
    client: TestClient, owner: psycopg.Connection[Any], own_host: User, guest: User
) -> None:
    booking = stay(client, owner, own_host, guest)

    r = review(client, guest, booking, rating=4, comment="  Quiet and clean.  ", id="x", guest_id="y")

    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["rating"], body["comment"], body["hidden"], body["response"]) == (4, "Quiet and clean.", False, None)
    assert body["reviewer"]["id"] == guest.id and "email" not in body["reviewer"]
    assert listing_rating(client, booking["product_id"]) == (4.0, 1)


def test_who_may_review(
    client: TestClient, owner: psycopg.Connection[Any], make_user: MakeUser, own_host: User, guest: User, admin: User
) -> None:
    booking = stay(client, owner, own_host, guest)

    assert_problem(review(client, own_host, booking), 403)
    assert_problem(review(client, admin, booking), 403)
    assert_problem(review(client, make_user("guest"), booking), 404)
    assert_problem(review(client, make_user("host"), booking), 404)
    assert_problem(review(client, None, booking), 401)
    assert_problem(
        client.post("/api/bookings/nope/review/", json={"rating": 5, "comment": "x"}, headers=guest.auth), 404
    )


def test_bad_reviews_name_every_field(
    client: TestClient, owner: psycopg.Connection[Any], own_host: User, guest: User
) -> None:
    booking = stay(client, owner, own_host, guest)

    for rating in (0, 6, 4.5, "5", None):
        assert_problem(review(client, guest, booking, rating=rating), 400, "rating")
    body = assert_problem(review(client, guest, booking, rating=9, comment=""), 400)
    assert {"rating", "comment"} <= body["errors"].keys()
    assert_problem(review(client, guest, booking, comment="x" * 5001), 400, "comment")


def test_only_completed_stays_once_within_the_window(
    client: TestClient, owner: psycopg.Connection[Any], own_host: User, guest: User
) -> None:
    upcoming = stay(client, owner, own_host, guest, complete=False)
    assert "completed" in assert_problem(review(client, guest, upcoming), 409, "status")["detail"]

    done = stay(client, owner, own_host, guest)
    assert review(client, guest, done).status_code == 201
    assert "already" in assert_problem(review(client, guest, done), 409, "booking_id")["detail"]

    # A stay that ended 15 days ago (as the DBA would have it from history): past the 14-day window.
    (late_id,) = owner.execute(
        """insert into app.bookings (product_id, guest_id, host_id, start_date, end_date, guests, price_per_night,
                                     total_price, currency, cancellation_policy, status, confirmed_at, completed_at)
           values (%s, %s, %s, %s, %s, 1, 100, 200, 'USD', 'moderate', 'completed', now(), now())
           returning id""",
        (new_listing(owner, own_host.id), guest.id, own_host.id, day(-17), day(-15)),
    ).fetchone()  # type: ignore[misc]
    late = {"id": str(late_id)}
    assert "within 14 days" in assert_problem(review(client, guest, late), 409, "booking_id")["detail"]


# --- editing, responding -----------------------------------------------------------------------


def test_author_edits_within_the_window_until_the_host_responds(
    client: TestClient, owner: psycopg.Connection[Any], make_user: MakeUser, own_host: User, guest: User
) -> None:
    booking = stay(client, owner, own_host, guest)
    rid = review(client, guest, booking, rating=2).json()["id"]
    url = f"/api/reviews/{rid}/"

    edited = client.patch(url, json={"rating": 3}, headers=guest.auth)

    assert edited.status_code == 200 and (edited.json()["rating"], edited.json()["comment"]) == (3, "Lovely place.")
    assert listing_rating(client, booking["product_id"]) == (3.0, 1)
    assert_problem(client.patch(url, json={"rating": 7}, headers=guest.auth), 400, "rating")
    assert_problem(client.patch(url, json={"rating": 5}, headers=own_host.auth), 403)
    assert_problem(client.patch(url, json={"rating": 5}, headers=make_user("guest").auth), 403)
    assert_problem(client.patch(url, json={"rating": 5}), 401)

    responded = client.put(f"{url}response/", json={"body": "Thank you!"}, headers=own_host.auth)
    assert responded.status_code == 200 and responded.json()["response"]["body"] == "Thank you!"
    assert_problem(client.patch(url, json={"rating": 5}, headers=guest.auth), 409, "response")


def test_edits_end_after_the_edit_window(
    client: TestClient, owner: psycopg.Connection[Any], own_host: User, guest: User
) -> None:
    booking = stay(client, owner, own_host, guest)
    rid = review(client, guest, booking).json()["id"]
    owner.execute("update app.reviews set created_at = now() - interval '49 hours' where id = %s", (rid,))

    assert_problem(
        client.patch(f"/api/reviews/{rid}/", json={"comment": "Later"}, headers=guest.auth), 409, "created_at"
    )


def test_only_the_listings_host_responds_and_may_rewrite_it(
    client: TestClient, owner: psycopg.Connection[Any], make_user: MakeUser, own_host: User, guest: User, admin: User
) -> None:
    booking = stay(client, owner, own_host, guest)
    url = f"/api/reviews/{review(client, guest, booking).json()['id']}/response/"

    assert_problem(client.put(url, json={"body": "Hi"}, headers=guest.auth), 403)
    assert_problem(client.put(url, json={"body": "Hi"}, headers=make_user("host").auth), 403)
    assert_problem(client.put(url, json={"body": "Hi"}, headers=admin.auth), 403)
    assert_problem(client.put(url, json={"body": ""}, headers=own_host.auth), 400, "body")
    assert_problem(client.put(url, json={"body": "Hi"}), 401)
    assert client.put(url, json={"body": "First"}, headers=own_host.auth).status_code == 200
    rewritten = client.put(url, json={"body": "Second thoughts"}, headers=own_host.auth)
    assert rewritten.json()["response"]["body"] == "Second thoughts"
    assert_problem(client.put("/api/reviews/nope/response/", json={"body": "Hi"}, headers=own_host.auth), 404)


# --- moderation ----------------------------------------------------------------------------


def test_a_hidden_review_leaves_the_public_list_and_the_rating_but_its_author_and_host_see_it(
    client: TestClient, owner: psycopg.Connection[Any], make_user: MakeUser, own_host: User, guest: User, admin: User
) -> None:
    other_guest = make_user("guest")
    first = stay(client, owner, own_host, guest)
    rid = review(client, guest, first, rating=1, comment="Rude words").json()["id"]
    product = first["product_id"]
    second = client.post(
        "/api/bookings/",
        json={"product_id": product, "start_date": day(5), "end_date": day(6), "guests": 1},
        headers=other_guest.auth,
    ).json()
    client.post(f"/api/bookings/{second['id']}/confirm/", headers=own_host.auth)
    owner.execute("select app.run_booking_jobs(now() + interval '8 days')")
    review(client, other_guest, second, rating=5)
    assert listing_rating(client, product) == (3.0, 2)

    hidden = client.post(f"/api/reviews/{rid}/hide/", json={"reason": "Abusive language"}, headers=admin.auth)

    assert hidden.status_code == 200 and hidden.json()["hidden"] is True
    assert listing_rating(client, product) == (5.0, 1)
    public = client.get(f"/api/products/{product}/reviews/").json()
    assert [r["rating"] for r in public["results"]] == [5] and public["count"] == 1
    mine = client.get("/api/reviews/", headers=guest.auth).json()["results"]
    assert [(r["id"], r["hidden"], r["hidden_reason"]) for r in mine] == [(rid, True, "Abusive language")]
    theirs = client.get("/api/reviews/?as=host", headers=own_host.auth).json()["results"]
    assert {r["id"]: r["hidden"] for r in theirs}[rid] is True
    assert_problem(client.patch(f"/api/reviews/{rid}/", json={"rating": 2}, headers=other_guest.auth), 404)

    assert_problem(client.post(f"/api/reviews/{rid}/hide/", json={"reason": "x"}, headers=own_host.auth), 403)
    assert_problem(client.post(f"/api/reviews/{rid}/hide/", json={}, headers=admin.auth), 400, "reason")
    assert_problem(client.post(f"/api/reviews/{rid}/unhide/", headers=guest.auth), 403)
    assert_problem(client.post(f"/api/reviews/{rid}/unhide/"), 401)
    assert client.post(f"/api/reviews/{rid}/unhide/", headers=admin.auth).json()["hidden"] is False
    assert listing_rating(client, product) == (3.0, 2)
    flagged = client.get("/api/reviews/?hidden=false", headers=admin.auth).json()
    assert rid in {r["id"] for r in flagged["results"]} or flagged["count"] > len(flagged["results"])


# --- reading -------------------------------------------------------------------------------


def test_anyone_reads_a_listings_reviews_in_the_order_asked(
    client: TestClient, owner: psycopg.Connection[Any], make_user: MakeUser, own_host: User
) -> None:
    product = new_listing(owner, own_host.id)
    for rating, offset in ((3, 1), (5, 3), (1, 5)):
        g = make_user("guest")
        b = client.post(
            "/api/bookings/",
            json={"product_id": product, "start_date": day(offset), "end_date": day(offset + 1), "guests": 1},
            headers=g.auth,
        ).json()
        client.post(f"/api/bookings/{b['id']}/confirm/", headers=own_host.auth)
        owner.execute("select app.run_booking_jobs(now() + interval '8 days')")
        assert review(client, g, b, rating=rating).status_code == 201
    url = f"/api/products/{product}/reviews/"

    assert [r["rating"] for r in client.get(url).json()["results"]] == [1, 5, 3]  # newest first
    assert [r["rating"] for r in client.get(url, params={"ordering": "rating"}).json()["results"]] == [1, 3, 5]
    assert [r["rating"] for r in client.get(url, params={"ordering": "-rating"}).json()["results"]] == [5, 3, 1]
    assert [r["rating"] for r in client.get(url, params={"ordering": "created_at"}).json()["results"]] == [3, 5, 1]
    page = client.get(url, params={"page_size": 2, "page": 2}).json()
    assert (page["count"], [r["rating"] for r in page["results"]]) == (3, [3])
    reviewer = client.get(url).json()["results"][0]["reviewer"]
    assert set(reviewer) == {"id", "first_name", "photo_url"}
    assert_problem(client.get(url, params={"ordering": "stars"}), 400, "ordering")
    assert_problem(client.get("/api/products/00000000-0000-0000-0000-000000000000/reviews/"), 404)


def test_own_review_lists(client: TestClient, guest: User, admin: User) -> None:
    assert_problem(client.get("/api/reviews/"), 401)
    assert_problem(client.get("/api/reviews/?as=everyone", headers=guest.auth), 400, "as")
    assert_problem(client.get("/api/reviews/?hidden=maybe", headers=admin.auth), 400, "hidden")
    assert client.get("/api/reviews/?as=host", headers=guest.auth).json()["count"] == 0


def test_whitespace_is_blank(client: TestClient, owner: psycopg.Connection[Any], own_host: User, guest: User) -> None:
    booking = stay(client, owner, own_host, guest)

    assert_problem(review(client, guest, booking, comment="\n\t  \r\n"), 400, "comment")
