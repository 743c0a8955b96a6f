"""Bookings over HTTP: the contract of issue 5 (create, read, list, confirm, cancel, availability, blocks)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
from starlette.testclient import TestClient

from api.settings import Settings
from tests.fix_data import day, new_listing
from tests.fix_users import MakeUser, User


@pytest.fixture
def listing(owner: psycopg.Connection[Any], host: User) -> str:
    return new_listing(owner, host.id, price="120.00", policy="moderate", max_guests=3)


def body(product: str, start: int = 20, end: int = 23, guests: int = 2, **extra: Any) -> dict[str, Any]:
    return {"product_id": product, "start_date": day(start), "end_date": day(end), "guests": guests, **extra}


def create(client: TestClient, user: User, payload: dict[str, Any], key: str | None = None) -> Any:
    headers = {**user.auth, **({"Idempotency-Key": key} if key else {})}
    return client.post("/api/bookings/", json=payload, headers=headers)


def booked(client: TestClient, user: User, product: str, start: int = 20, end: int = 23) -> dict[str, Any]:
    r = create(client, user, body(product, start, end, guests=1))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


# --- create --------------------------------------------------------------------------------


def test_create_computes_price_and_ignores_mass_assignment(
    client: TestClient, guest: User, host: User, listing: str
) -> None:
    payload = body(
        listing,
        guest_id=host.id,
        user_id=host.id,
        status="confirmed",
        total_price="1.00",
        price_per_night="0.01",
        host_id=guest.id,
        expires_at=None,
    )
    r = create(client, guest, payload)
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["status"] == "pending"
    assert (b["guest_id"], b["host_id"], b["product_id"]) == (guest.id, host.id, listing)
    assert (b["nights"], b["guests"], b["price_per_night"], b["total_price"], b["currency"]) == (
        3,
        2,
        "120.00",
        "360.00",
        "USD",
    )
    assert (b["start_date"], b["end_date"]) == (day(20), day(23))
    assert b["expires_at"] and b["canceled_at"] is None and b["refund_amount"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end_date": day(20)}, "end_date"),
        ({"end_date": day(19)}, "end_date"),
        ({"start_date": day(-1)}, "start_date"),
        ({"guests": 4}, "guests"),
        ({"guests": 0}, "guests"),
        ({"guests": "two"}, "guests"),
        ({"start_date": "2030-02-30"}, "start_date"),
        ({"start_date": "tomorrow"}, "start_date"),
        ({"end_date": None}, "end_date"),
        ({"start_date": day(10), "end_date": day(10 + 366)}, "end_date"),
        ({"start_date": day(800), "end_date": day(801)}, "start_date"),
        ({"product_id": "not-a-uuid"}, "product_id"),
        ({"product_id": None}, "product_id"),
    ],
)
def test_create_validation_names_the_field(
    client: TestClient, guest: User, listing: str, change: dict[str, Any], field: str
) -> None:
    r = create(client, guest, {**body(listing), **change})
    assert r.status_code == 400, r.text
    assert field in r.json()["errors"], r.json()


def test_an_unknown_or_unpublished_listing_is_404_on_product_id(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, host: User
) -> None:
    hidden = new_listing(owner, host.id, published=False)
    for product in (hidden, "00000000-0000-0000-0000-000000000000"):
        r = create(client, guest, body(product))
        assert r.status_code == 404 and "product_id" in r.json()["errors"], r.text
    r = create(client, guest, {**body(hidden), "guests": 0})  # a malformed field first: 400
    assert r.status_code == 400 and r.json()["errors"].keys() == {"guests"}, r.text


def test_booking_own_listing_is_403(client: TestClient, host: User, listing: str) -> None:
    assert create(client, host, body(listing)).status_code == 403


def test_anonymous_cannot_book(client: TestClient, listing: str) -> None:
    assert client.post("/api/bookings/", json=body(listing)).status_code == 401


def test_a_host_can_book_someone_elses_listing(client: TestClient, make_user: MakeUser, listing: str) -> None:
    assert create(client, make_user("host"), body(listing, guests=1)).status_code == 201


def test_overlap_is_409_adjacent_stays_both_succeed(client: TestClient, make_user: MakeUser, listing: str) -> None:
    booked(client, make_user(), listing, 20, 23)
    r = create(client, make_user(), body(listing, 22, 25, guests=1))
    assert r.status_code == 409 and "not available" in r.json()["detail"]
    booked(client, make_user(), listing, 23, 25)  # check-out day 23 is the next check-in
    booked(client, make_user(), listing, 18, 20)


def test_canceled_dates_can_be_booked_again(client: TestClient, make_user: MakeUser, listing: str) -> None:
    first_guest = make_user()
    first = booked(client, first_guest, listing)
    assert client.post(f"/api/bookings/{first['id']}/cancel/", json={}, headers=first_guest.auth).status_code == 200
    booked(client, make_user(), listing)


# --- idempotency ---------------------------------------------------------------------------


def test_idempotent_retry_returns_the_first_response(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, listing: str
) -> None:
    first = create(client, guest, body(listing), key="retry-1")
    again = create(client, guest, {"guests": 2, **body(listing)}, key="retry-1")  # same body, other key order
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    (count,) = owner.execute("select count(*) from app.bookings where guest_id = %s", (guest.id,)).fetchone()  # type: ignore[misc]
    assert count == 1


def test_same_key_other_body_is_422(client: TestClient, guest: User, listing: str) -> None:
    assert create(client, guest, body(listing), key="retry-2").status_code == 201
    r = create(client, guest, body(listing, 30, 31), key="retry-2")
    assert r.status_code == 422 and "idempotency_key" in r.json()["errors"]


def test_without_a_key_a_repeat_is_a_conflict(client: TestClient, guest: User, listing: str) -> None:
    assert create(client, guest, body(listing)).status_code == 201
    assert create(client, guest, body(listing)).status_code == 409


# --- read and list (BOLA) ------------------------------------------------------------------


def test_detail_for_parties_and_admin_404_for_everyone_else(
    client: TestClient, make_user: MakeUser, guest: User, host: User, listing: str
) -> None:
    b = booked(client, guest, listing)
    url = f"/api/bookings/{b['id']}/"
    for user in (guest, host, make_user("admin")):
        r = client.get(url, headers=user.auth)
        assert r.status_code == 200 and r.json()["id"] == b["id"], user.role
    for user in (make_user("guest"), make_user("host")):
        r = client.get(url, headers=user.auth)
        assert r.status_code == 404, user.role
    assert client.get("/api/bookings/not-a-uuid/", headers=guest.auth).status_code == 404
    assert client.get(url).status_code == 401


def test_other_parties_cannot_confirm_or_cancel(
    client: TestClient, make_user: MakeUser, guest: User, listing: str
) -> None:
    b = booked(client, guest, listing)
    for user in (make_user("guest"), make_user("host")):
        assert client.post(f"/api/bookings/{b['id']}/confirm/", headers=user.auth).status_code == 404
        assert client.post(f"/api/bookings/{b['id']}/cancel/", json={}, headers=user.auth).status_code == 404


def test_list_as_guest_as_host_as_admin_with_filters(
    client: TestClient, owner: psycopg.Connection[Any], make_user: MakeUser, host: User, listing: str
) -> None:
    g1, g2 = make_user(), make_user()
    other_listing = new_listing(owner, host.id)
    a = booked(client, g1, listing, 20, 22)
    b = booked(client, g2, listing, 22, 24)
    c = booked(client, g1, other_listing, 40, 42)
    client.post(f"/api/bookings/{b['id']}/confirm/", headers=host.auth)

    mine = client.get("/api/bookings/", headers=g1.auth).json()
    assert mine["count"] == 2 and {x["id"] for x in mine["results"]} == {a["id"], c["id"]}
    as_host = client.get("/api/bookings/?as=host", headers=host.auth).json()
    assert as_host["count"] == 3
    assert client.get("/api/bookings/", headers=host.auth).json()["count"] == 0
    by_product = client.get(f"/api/bookings/?as=host&product={listing}", headers=host.auth).json()
    assert {x["id"] for x in by_product["results"]} == {a["id"], b["id"]}
    confirmed = client.get("/api/bookings/?as=host&status=confirmed", headers=host.auth).json()
    assert [x["id"] for x in confirmed["results"]] == [b["id"]]
    window = client.get(f"/api/bookings/?as=host&from={day(21)}&to={day(23)}", headers=host.auth).json()
    assert {x["id"] for x in window["results"]} == {a["id"], b["id"]}
    window = client.get(f"/api/bookings/?as=host&from={day(22)}&to={day(40)}", headers=host.auth).json()
    assert {x["id"] for x in window["results"]} == {b["id"]}
    admin = client.get("/api/bookings/?page_size=100", headers=make_user("admin").auth).json()
    assert {a["id"], b["id"], c["id"]} <= {x["id"] for x in admin["results"]}


def test_list_pagination_and_bad_params(
    client: TestClient, make_user: MakeUser, owner: psycopg.Connection[Any]
) -> None:
    guest, host = make_user(), make_user("host")
    for _ in range(3):
        booked(client, guest, new_listing(owner, host.id))
    page = client.get("/api/bookings/?page_size=2", headers=guest.auth).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"] and page["previous"] is None
    page2 = client.get("/api/bookings/?page_size=2&page=2", headers=guest.auth).json()
    assert len(page2["results"]) == 1 and page2["next"] is None
    assert client.get("/api/bookings/?page_size=2&page=3", headers=guest.auth).status_code == 404
    for query, field in [
        ("page=0", "page"),
        ("page_size=0", "page_size"),
        ("status=lost", "status"),
        ("as=owner", "as"),
        ("product=x", "product"),
        ("from=2030-01-05&to=2030-01-01", "to"),
    ]:
        r = client.get(f"/api/bookings/?{query}", headers=guest.auth)
        assert r.status_code == 400 and field in r.json()["errors"], query
    capped = client.get("/api/bookings/?page_size=500", headers=guest.auth)  # like DRF's max_page_size
    assert capped.status_code == 200 and len(capped.json()["results"]) == 3


# --- confirm and cancel ----------------------------------------------------------------------


def test_confirm_by_host_only_and_only_once(client: TestClient, guest: User, host: User, listing: str) -> None:
    b = booked(client, guest, listing)
    assert client.post(f"/api/bookings/{b['id']}/confirm/", headers=guest.auth).status_code == 403
    r = client.post(f"/api/bookings/{b['id']}/confirm/", headers=host.auth)
    assert r.status_code == 200 and r.json()["status"] == "confirmed" and r.json()["expires_at"] is None
    assert client.post(f"/api/bookings/{b['id']}/confirm/", headers=host.auth).status_code == 409


def test_guest_cancels_pending_under_policy(client: TestClient, guest: User, listing: str) -> None:
    b = booked(client, guest, listing, 20, 23)
    r = client.post(f"/api/bookings/{b['id']}/cancel/", json={"reason": "Plans changed"}, headers=guest.auth)
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["status"], c["canceled_by"], c["cancel_reason"], c["refund_amount"]) == (
        "canceled",
        guest.id,
        "Plans changed",
        "360.00",
    )
    assert c["canceled_at"] and c["expires_at"] is None
    assert client.post(f"/api/bookings/{b['id']}/cancel/", json={}, headers=guest.auth).status_code == 409
    assert client.post(f"/api/bookings/{b['id']}/confirm/", headers=guest.auth).status_code in (403, 409)


def test_guest_cancels_late_moderate_gets_half(client: TestClient, guest: User, host: User, listing: str) -> None:
    b = booked(client, guest, listing, 1, 3)  # check-in tomorrow 15:00 UTC: under 5 days away
    client.post(f"/api/bookings/{b['id']}/confirm/", headers=host.auth)
    r = client.post(f"/api/bookings/{b['id']}/cancel/", json={}, headers=guest.auth)
    assert r.status_code == 200 and Decimal(r.json()["refund_amount"]) == Decimal("120.00")


def test_host_cancellation_refunds_in_full(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, host: User
) -> None:
    strict = new_listing(owner, host.id, price="99.99", policy="strict")
    b = booked(client, guest, strict, 1, 2)
    client.post(f"/api/bookings/{b['id']}/confirm/", headers=host.auth)
    r = client.post(f"/api/bookings/{b['id']}/cancel/", json={"reason": "Burst pipe"}, headers=host.auth)
    assert r.status_code == 200
    assert (r.json()["refund_amount"], r.json()["canceled_by"]) == ("99.99", host.id)


def test_completed_booking_cannot_be_canceled(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, host: User, listing: str
) -> None:
    b = booked(client, guest, listing, 0, 1)
    client.post(f"/api/bookings/{b['id']}/confirm/", headers=host.auth)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    owner.execute("select app.run_booking_jobs(%s)", (later,))
    assert client.get(f"/api/bookings/{b['id']}/", headers=guest.auth).json()["status"] == "completed"
    assert client.post(f"/api/bookings/{b['id']}/cancel/", json={}, headers=guest.auth).status_code == 409
    assert client.post(f"/api/bookings/{b['id']}/confirm/", headers=host.auth).status_code == 409


def test_cancel_reason_must_be_text(client: TestClient, guest: User, listing: str) -> None:
    b = booked(client, guest, listing)
    r = client.post(f"/api/bookings/{b['id']}/cancel/", json={"reason": 5}, headers=guest.auth)
    assert r.status_code == 400 and "reason" in r.json()["errors"]


# --- availability and blocks ---------------------------------------------------------------


def test_availability_shows_taken_ranges_to_anyone(client: TestClient, guest: User, host: User, listing: str) -> None:
    booked(client, guest, listing, 20, 23)
    r = client.get(f"/api/products/{listing}/availability/?from={day(0)}&to={day(60)}")
    assert r.status_code == 200, r.text
    assert r.json()["unavailable"] == [{"start_date": day(20), "end_date": day(23)}]
    as_host = client.get(f"/api/products/{listing}/availability/", headers=host.auth).json()
    assert as_host["unavailable"][0]["kind"] == "booked"
    empty = client.get(f"/api/products/{listing}/availability/?from={day(23)}&to={day(30)}").json()
    assert empty["unavailable"] == []
    assert client.get(f"/api/products/{listing}/availability/?from={day(5)}&to={day(5)}").status_code == 400


def test_availability_of_unpublished_listing(
    client: TestClient, owner: psycopg.Connection[Any], host: User, guest: User, make_user: MakeUser
) -> None:
    hidden = new_listing(owner, host.id, published=False)
    assert client.get(f"/api/products/{hidden}/availability/").status_code == 404
    assert client.get(f"/api/products/{hidden}/availability/", headers=guest.auth).status_code == 404
    assert client.get(f"/api/products/{hidden}/availability/", headers=host.auth).status_code == 200
    assert client.get(f"/api/products/{hidden}/availability/", headers=make_user("admin").auth).status_code == 200
    assert client.get("/api/products/nope/availability/").status_code == 404


def test_blocks_exclude_bookings_and_can_be_removed(
    client: TestClient, guest: User, host: User, make_user: MakeUser, listing: str
) -> None:
    url = f"/api/products/{listing}/blocked-dates/"
    r = client.post(url, json={"start_date": day(30), "end_date": day(35), "reason": "Painting"}, headers=host.auth)
    assert r.status_code == 201, r.text
    block = r.json()
    assert (block["start_date"], block["end_date"], block["reason"]) == (day(30), day(35), "Painting")
    assert create(client, guest, body(listing, 34, 36, guests=1)).status_code == 409
    booked(client, guest, listing, 35, 37)
    assert client.post(url, json={"start_date": day(36), "end_date": day(38)}, headers=host.auth).status_code == 409
    public = client.get(f"/api/products/{listing}/availability/?from={day(0)}&to={day(60)}").json()
    assert "reason" not in public["unavailable"][0]
    # Only the host (or an admin) manages blocks.
    assert client.post(url, json={"start_date": day(50), "end_date": day(51)}, headers=guest.auth).status_code == 403
    other_host = make_user("host")
    assert (
        client.post(url, json={"start_date": day(50), "end_date": day(51)}, headers=other_host.auth).status_code == 403
    )
    assert client.delete(f"{url}{block['id']}/", headers=other_host.auth).status_code == 404
    assert client.delete(f"{url}{block['id']}/", headers=host.auth).status_code == 204
    assert client.delete(f"{url}{block['id']}/", headers=host.auth).status_code == 404
    booked(client, make_user(), listing, 30, 35)


def test_block_validation(client: TestClient, host: User, listing: str) -> None:
    url = f"/api/products/{listing}/blocked-dates/"
    for payload, field in [
        ({"start_date": day(3), "end_date": day(3)}, "end_date"),
        ({"start_date": day(-2), "end_date": day(3)}, "start_date"),
        ({"end_date": day(3)}, "start_date"),
    ]:
        r = client.post(url, json=payload, headers=host.auth)
        assert r.status_code == 400 and field in r.json()["errors"], payload


# --- the job runner ------------------------------------------------------------------------


def test_the_worker_runs_the_booking_job(settings: Settings) -> None:
    from api.worker import make_app, opened

    with opened(settings):
        result = make_app(settings).tasks["bookings.run_jobs"](timestamp=0)

    assert set(orjson.loads(result)) == {"expired", "completed", "kept_paid_out", "purged_keys"}


def test_admin_confirms_and_cancels_with_full_refund(
    client: TestClient, owner: psycopg.Connection[Any], make_user: MakeUser, guest: User, host: User
) -> None:
    admin = make_user("admin")
    strict = new_listing(owner, host.id, price="50.00", policy="strict")
    b = booked(client, guest, strict, 1, 3)
    r = client.post(f"/api/bookings/{b['id']}/confirm/", headers=admin.auth)
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    r = client.post(f"/api/bookings/{b['id']}/cancel/", json={"reason": "Fraud check"}, headers=admin.auth)
    assert r.status_code == 200
    assert (r.json()["refund_amount"], r.json()["canceled_by"]) == ("100.00", admin.id)


def test_a_stay_that_is_over_cannot_be_canceled(
    client: TestClient, owner: psycopg.Connection[Any], guest: User, host: User, listing: str
) -> None:
    b = booked(client, guest, listing, 0, 1)
    client.post(f"/api/bookings/{b['id']}/confirm/", headers=host.auth)
    # Move the stay into the past as a DBA would (the guard trigger forbids changing dates,
    # so disable it for this one statement).
    owner.execute("alter table app.bookings disable trigger bookings_guard")
    try:
        owner.execute(
            "update app.bookings set start_date = start_date - 5, end_date = end_date - 5 where id = %s", (b["id"],)
        )
    finally:
        owner.execute("alter table app.bookings enable trigger bookings_guard")
    r = client.post(f"/api/bookings/{b['id']}/cancel/", json={}, headers=guest.auth)
    assert r.status_code == 409 and "over" in r.json()["detail"]
