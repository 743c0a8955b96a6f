"""Payments over HTTP: paying a booking through Stripe (the real SDK against a loopback stand-in),
webhooks, the worker, currencies and rates, and who may see what.

The worker is the real one (api/worker.py, procrastinate) run until no job is due.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from tests.fix_api import assert_problem
from tests.fix_payments import booking_status, pay, webhook
from tests.fix_users import MakeUser, User
from tests.stripe_standin import StripeStandIn

# --- currencies and rates ----------------------------------------------------------------------


def test_anyone_lists_currencies_with_minor_units(api: TestClient) -> None:
    r = api.get("/api/currencies/")

    assert r.status_code == 200, r.text
    units = {c["code"]: c["minor_units"] for c in r.json()["results"]}
    assert units["USD"] == 2 and units["JPY"] == 0
    assert r.json()["count"] == len(units)


def test_only_admins_set_exchange_rates(api: TestClient, admin: User, guest: User) -> None:
    body = {"base": "USD", "quote": "EUR", "rate": "0.9123"}

    assert api.post("/api/exchange-rates/", json=body, headers=admin.auth).status_code == 201
    assert_problem(api.post("/api/exchange-rates/", json=body, headers=guest.auth), 403)
    assert_problem(api.post("/api/exchange-rates/", json=body), 401)


def test_exchange_rate_input_errors_are_reported_together(api: TestClient, admin: User) -> None:
    r = api.post("/api/exchange-rates/", json={"base": "XX", "quote": 5, "rate": "-1"}, headers=admin.auth)

    body = assert_problem(r, 400)
    assert {"base", "quote", "rate"} <= body["errors"].keys()


def test_an_exchange_rate_for_an_unknown_currency_is_404_naming_it(api: TestClient, admin: User) -> None:
    r = api.post("/api/exchange-rates/", json={"base": "XXX", "quote": "YYY", "rate": "1.5"}, headers=admin.auth)

    body = assert_problem(r, 404)
    assert body["errors"].keys() == {"base", "quote"}
    assert_problem(
        api.post("/api/exchange-rates/", json={"base": "XXX", "quote": 5, "rate": "1"}, headers=admin.auth),
        400,
        "quote",
    )


# --- paying ----------------------------------------------------------------------------------


def test_guest_pays_with_stripe_and_gets_the_client_secret(
    api: TestClient, stripe: StripeStandIn, guest: User, booking: dict[str, Any]
) -> None:
    r = pay(api, guest, booking, status="succeeded", amount="1.00", guest_id="x")  # mass assignment ignored

    assert r.status_code == 201, r.text
    payment = r.json()
    assert (payment["status"], payment["amount"], payment["currency"]) == ("requires_payment", "360.00", "USD")
    assert (payment["payment_method"], payment["rate"]) == ("credit_card", None)
    (intent,) = stripe.intents_for(payment["id"])
    assert (intent["amount"], intent["currency"]) == (36000, "usd")
    assert payment["provider_payment_id"] == intent["id"]
    assert payment["client_secret"] == intent["client_secret"]


def test_asking_again_returns_the_open_payment(
    api: TestClient, stripe: StripeStandIn, guest: User, booking: dict[str, Any]
) -> None:
    first = pay(api, guest, booking).json()

    again = pay(api, guest, booking)

    assert again.status_code == 201 and again.json()["id"] == first["id"]
    assert len(stripe.intents_for(first["id"])) == 1


def test_idempotency_key_replays_and_refuses_another_body(
    api: TestClient, guest: User, booking: dict[str, Any]
) -> None:
    first = pay(api, guest, booking, key="pay-1")

    assert pay(api, guest, booking, key="pay-1").json()["id"] == first.json()["id"]
    assert_problem(pay(api, guest, booking, key="pay-1", currency="EUR"), 422, "idempotency_key")


def test_who_may_pay(api: TestClient, make_user: MakeUser, host: User, admin: User, booking: dict[str, Any]) -> None:
    assert_problem(pay(api, host, booking), 403)
    assert_problem(pay(api, make_user("guest"), booking), 404)
    assert_problem(pay(api, admin, booking), 403)
    assert_problem(api.post(f"/api/bookings/{booking['id']}/payments/", json={"provider": "stripe"}), 401)


def test_bad_input_is_400_naming_the_field(api: TestClient, guest: User, booking: dict[str, Any]) -> None:
    assert_problem(pay(api, guest, booking, provider="bitcoin"), 400, "provider")
    assert_problem(pay(api, guest, booking, currency="XYZ"), 400, "currency")
    assert_problem(api.post("/api/bookings/not-a-uuid/payments/", json={"provider": "stripe"}, headers=guest.auth), 404)


def test_an_unconfigured_provider_is_503(
    api: TestClient, client: TestClient, guest: User, booking: dict[str, Any]
) -> None:
    assert_problem(pay(client, guest, booking, provider="paypal"), 503)
    assert_problem(pay(client, guest, booking), 503)  # the session's app has no Stripe key


def test_only_a_pending_booking_can_be_paid(api: TestClient, guest: User, booking: dict[str, Any]) -> None:
    api.post(f"/api/bookings/{booking['id']}/cancel/", headers=guest.auth)

    assert_problem(pay(api, guest, booking), 409)


def test_another_currency_needs_a_fresh_rate_and_records_it(
    api: TestClient,
    stripe: StripeStandIn,
    owner: psycopg.Connection[Any],
    admin: User,
    guest: User,
    booking: dict[str, Any],
) -> None:
    owner.execute("delete from app.exchange_rates where base = 'USD' and quote = 'JPY'")
    assert_problem(pay(api, guest, booking, currency="JPY"), 400, "currency")
    owner.execute(
        "insert into app.exchange_rates (base, quote, rate, source, fetched_at)"
        " values ('USD', 'JPY', 150, 'old', now() - interval '3 days')"
    )
    assert_problem(pay(api, guest, booking, currency="JPY"), 400, "currency")  # too old
    api.post("/api/exchange-rates/", json={"base": "USD", "quote": "JPY", "rate": "151.2345"}, headers=admin.auth)

    payment = pay(api, guest, booking, currency="JPY").json()

    assert (payment["amount"], payment["currency"], payment["rate"]) == ("54444", "JPY", "151.2345000000")
    assert (payment["booking_amount"], payment["booking_currency"]) == ("360.00", "USD")
    assert stripe.intents_for(payment["id"])[0]["amount"] == 54444  # JPY has no minor unit


# --- reading ---------------------------------------------------------------------------------


def test_guest_host_admin_and_strangers_see_what_they_should(
    api: TestClient, make_user: MakeUser, guest: User, host: User, admin: User, booking: dict[str, Any]
) -> None:
    payment = pay(api, guest, booking).json()
    url = f"/api/payments/{payment['id']}/"

    assert api.get(url, headers=guest.auth).json()["client_secret"] == payment["client_secret"]
    assert api.get(url, headers=host.auth).json()["client_secret"] is None
    assert api.get(url, headers=admin.auth).json()["client_secret"] is None
    assert_problem(api.get(url, headers=make_user("host").auth), 404)
    assert_problem(api.get(url), 401)
    mine = api.get("/api/payments/", params={"booking": booking["id"]}, headers=guest.auth).json()
    assert [p["id"] for p in mine["results"]] == [payment["id"]]
    assert (
        api.get("/api/payments/", params={"booking": booking["id"]}, headers=make_user("guest").auth).json()["count"]
        == 0
    )
    assert_problem(api.get("/api/payments/", params={"status": "paid"}, headers=guest.auth), 400, "status")


# --- webhooks and the worker ---------------------------------------------------------------------


def test_payment_succeeds_by_webhook_and_confirms_the_booking(
    api: TestClient,
    stripe: StripeStandIn,
    owner: psycopg.Connection[Any],
    guest: User,
    booking: dict[str, Any],
    work: Any,
) -> None:
    payment = pay(api, guest, booking).json()
    intent = stripe.set_status(payment["provider_payment_id"], "succeeded")

    first = webhook(api, stripe, "payment_intent.succeeded", intent)
    work()

    assert first.status_code == 200 and first.json() == {"received": True, "new": True}
    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "succeeded"
    assert booking_status(owner, booking["id"]) == "confirmed"


def test_a_redelivered_event_changes_nothing(
    api: TestClient,
    stripe: StripeStandIn,
    owner: psycopg.Connection[Any],
    guest: User,
    booking: dict[str, Any],
    work: Any,
) -> None:
    payment = pay(api, guest, booking).json()
    intent = stripe.set_status(payment["provider_payment_id"], "succeeded")
    body, signature = stripe.signed_event("payment_intent.succeeded", intent)
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}

    replies = [api.post("/api/webhooks/stripe/", content=body, headers=headers).json() for _ in range(3)]
    work()

    assert [r["new"] for r in replies] == [True, False, False]
    (events,) = owner.execute(
        "select count(*) from app_private.webhook_events where object_id = %s", (intent["id"],)
    ).fetchone()  # type: ignore[misc]
    assert events == 1


def test_the_webhook_payload_is_never_trusted(
    api: TestClient, stripe: StripeStandIn, guest: User, booking: dict[str, Any], work: Any
) -> None:
    payment = pay(api, guest, booking).json()
    forged = {**stripe.intents[payment["provider_payment_id"]], "status": "succeeded"}  # Stripe still says unpaid

    assert webhook(api, stripe, "payment_intent.succeeded", forged).status_code == 200
    work()

    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "requires_payment"


def test_an_amount_the_provider_does_not_confirm_changes_nothing(
    api: TestClient,
    stripe: StripeStandIn,
    owner: psycopg.Connection[Any],
    guest: User,
    booking: dict[str, Any],
    work: Any,
) -> None:
    payment = pay(api, guest, booking).json()
    intent = stripe.set_status(payment["provider_payment_id"], "succeeded", amount=100)

    webhook(api, stripe, "payment_intent.succeeded", intent)
    work()

    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "requires_payment"
    assert booking_status(owner, booking["id"]) == "pending"
    (outcome,) = owner.execute(
        "select outcome from app_private.webhook_events where object_id = %s", (intent["id"],)
    ).fetchone()  # type: ignore[misc]
    assert outcome.startswith("ignored")


@pytest.mark.parametrize(
    ("signature", "age"),
    [("wrong", 0), (None, 0), ("valid", 301)],
    ids=["wrong secret", "no signature", "older than 5 minutes"],
)
def test_bad_or_stale_signatures_are_400_and_record_nothing(
    api: TestClient, stripe: StripeStandIn, owner: psycopg.Connection[Any], signature: str | None, age: int
) -> None:
    body, header = stripe.signed_event(
        "payment_intent.succeeded",
        {"id": "pi_forged", "object": "payment_intent"},
        age=age,
        secret="whsec_someone_else" if signature == "wrong" else None,
    )
    headers = {"Content-Type": "application/json", **({"Stripe-Signature": header} if signature else {})}

    assert_problem(api.post("/api/webhooks/stripe/", content=body, headers=headers), 400)
    (n,) = owner.execute("select count(*) from app_private.webhook_events where object_id = 'pi_forged'").fetchone()  # type: ignore[misc]
    assert n == 0


@pytest.mark.parametrize(
    ("ahead", "status"),
    [(3 * 3600, 400), (301, 400), (60, 200)],
    ids=["3 hours ahead", "301 s ahead", "60 s ahead (clock skew)"],
)
def test_signatures_dated_in_the_future_beyond_the_tolerance_are_400_and_record_nothing(
    api: TestClient, stripe: StripeStandIn, owner: psycopg.Connection[Any], ahead: int, status: int
) -> None:
    # An event Nexus records and ignores: no job, no provider call.
    body, header = stripe.signed_event("customer.created", {"id": "cus_1", "object": "customer"}, age=-ahead)

    r = api.post("/api/webhooks/stripe/", content=body, headers={"Stripe-Signature": header})

    if status == 400:
        assert_problem(r, 400)
    else:
        assert r.status_code == 200 and r.json() == {"received": True, "new": True}
    (n,) = owner.execute(
        "select count(*) from app_private.webhook_events where event_id = %s", (json.loads(body)["id"],)
    ).fetchone()  # type: ignore[misc]
    assert n == (1 if status == 200 else 0)


def signed_raw(stripe: StripeStandIn, body: bytes) -> dict[str, str]:
    """Headers signing any body, well-formed or not, as Stripe signs ("t.body", HMAC-SHA256), dated now."""
    t = int(time.time())
    mac = hmac.new(stripe.webhook_secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return {"Stripe-Signature": f"t={t},v1={mac.hexdigest()}", "Content-Type": "application/json"}


MISSING = object()  # a field event_json leaves out


def event_json(**fields: Any) -> bytes:
    """A Stripe event about a PaymentIntent, with `fields` replaced (a field given as MISSING is left out)."""
    event = {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "data": {"object": {"id": "pi_" + secrets.token_hex(12), "object": "payment_intent"}},
        **fields,
    }
    return json.dumps({k: v for k, v in event.items() if v is not MISSING}).encode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" + event_json() + b"]", id="a JSON array"),
        pytest.param(b'"evt_1"', id="a JSON string"),
        pytest.param(b"null", id="JSON null"),
        pytest.param(b'{"id": "evt_1", "type": ', id="invalid JSON"),
        pytest.param(b"", id="empty body"),
        pytest.param(b'{"id": "evt_\xff", "object": "event"}', id="not UTF-8"),
        pytest.param(b"[" * 5000 + b"]" * 5000, id="nested 5000 deep"),
        pytest.param(event_json(type=MISSING), id="no type"),
        pytest.param(event_json(type=7), id="type not a string"),
        pytest.param(event_json(type=""), id="empty type"),
        pytest.param(event_json(id=MISSING), id="no id"),
        pytest.param(event_json(id=["evt_1"]), id="id not a string"),
        pytest.param(event_json(id=""), id="empty id"),
        pytest.param(event_json(id="evt_" + "x" * 300), id="id longer than 255"),
        pytest.param(event_json(object="v2.core.event"), id="a thin v2 event"),
        pytest.param(event_json(data=MISSING), id="no data"),
        pytest.param(event_json(data=["pi_1"]), id="data not an object"),
        pytest.param(event_json(data={}), id="no data.object"),
        pytest.param(event_json(data={"object": "pi_1"}), id="data.object not an object"),
        pytest.param(event_json(data={"object": {"id": {"id": "pi_1"}}}), id="object id not a string"),
        pytest.param(event_json(data={"object": {"id": "pi_" + "x" * 300}}), id="object id longer than 255"),
    ],
)
def test_signed_but_malformed_events_are_400_and_record_nothing(
    api: TestClient, stripe: StripeStandIn, owner: psycopg.Connection[Any], body: bytes
) -> None:
    (before,) = owner.execute("select count(*) from app_private.webhook_events").fetchone()  # type: ignore[misc]

    r = api.post("/api/webhooks/stripe/", content=body, headers=signed_raw(stripe, body))

    assert_problem(r, 400)
    (after,) = owner.execute("select count(*) from app_private.webhook_events").fetchone()  # type: ignore[misc]
    assert after == before


def test_webhooks_without_a_configured_secret_are_503(client: TestClient, stripe: StripeStandIn) -> None:
    body, signature = stripe.signed_event("payment_intent.succeeded", {"id": "pi_x"})

    assert_problem(client.post("/api/webhooks/stripe/", content=body, headers={"Stripe-Signature": signature}), 503)


def test_provider_down_at_payment_time_the_worker_creates_it_later(
    api: TestClient, stripe: StripeStandIn, guest: User, booking: dict[str, Any], work: Any
) -> None:
    stripe.fail_next = [500]

    r = pay(api, guest, booking)

    assert r.status_code == 201 and r.json()["provider_payment_id"] is None and r.json()["client_secret"] is None
    work()
    later = api.get(f"/api/payments/{r.json()['id']}/", headers=guest.auth).json()
    assert later["provider_payment_id"] and later["client_secret"]
    assert len(stripe.intents_for(r.json()["id"])) == 1


def test_a_lost_provider_answer_never_charges_twice(
    api: TestClient, stripe: StripeStandIn, guest: User, booking: dict[str, Any], work: Any
) -> None:
    stripe.lose_next_response = True  # Stripe created the intent, the answer never arrived

    r = pay(api, guest, booking)
    work()

    (intent,) = stripe.intents_for(r.json()["id"])
    assert api.get(f"/api/payments/{r.json()['id']}/", headers=guest.auth).json()["provider_payment_id"] == intent["id"]


def test_a_canceled_booking_cancels_its_open_payment_here_and_at_stripe(
    api: TestClient, stripe: StripeStandIn, guest: User, booking: dict[str, Any], work: Any
) -> None:
    payment = pay(api, guest, booking).json()

    api.post(f"/api/bookings/{booking['id']}/cancel/", json={"reason": "Changed plans"}, headers=guest.auth)
    work()

    seen = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert (seen["status"], seen["failure_reason"]) == ("canceled", "Changed plans")
    assert stripe.intents[payment["provider_payment_id"]]["status"] == "canceled"


def test_an_expired_hold_cancels_its_open_payment(
    api: TestClient,
    stripe: StripeStandIn,
    owner: psycopg.Connection[Any],
    guest: User,
    booking: dict[str, Any],
    work: Any,
) -> None:
    payment = pay(api, guest, booking).json()

    owner.execute("select app.run_booking_jobs(now() + interval '1 hour')")
    work()

    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "canceled"
    assert stripe.intents[payment["provider_payment_id"]]["status"] == "canceled"
