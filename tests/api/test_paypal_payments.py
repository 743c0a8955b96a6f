"""Paying, refunding and paying out through PayPal, over HTTP (the gateway against PayPal's loopback stand-in)."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from api.paypal import PayPalGateway
from api.settings import Settings
from tests.fix_api import assert_problem
from tests.fix_payments import (
    booking_status,
    complete_stays,
    ledger,
    pay,
    paypal_webhook,
    retry_now,
)
from tests.fix_users import MakeUser, User
from tests.paypal_standin import PayPalStandIn, now


def pay_with_paypal(api: TestClient, guest: User, booking: dict[str, Any]) -> dict[str, Any]:
    r = pay(api, guest, booking, provider="paypal")
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def capture(api: TestClient, user: User | None, payment: dict[str, Any]) -> Any:
    return api.post(f"/api/payments/{payment['id']}/capture/", headers=user.auth if user else {})


def test_guest_pays_with_paypal_approves_and_the_capture_confirms_the_booking(
    api: TestClient, owner: psycopg.Connection[Any], paypal: PayPalStandIn, guest: User, booking: dict[str, Any]
) -> None:
    payment = pay_with_paypal(api, guest, booking)

    assert (payment["payment_method"], payment["status"], payment["client_secret"]) == (
        "paypal",
        "requires_payment",
        None,
    )
    (order,) = paypal.orders_for(payment["id"])
    assert payment["approve_url"] == next(link["href"] for link in order["links"] if link["rel"] == "approve")
    assert order["purchase_units"][0]["amount"] == {"currency_code": "USD", "value": "360.00"}
    assert_problem(capture(api, guest, payment), 409)  # not approved yet

    paypal.approve(order["id"])
    captured = capture(api, guest, payment)

    assert captured.status_code == 200, captured.text
    assert captured.json()["status"] == "succeeded"
    assert booking_status(owner, booking["id"]) == "confirmed"
    assert capture(api, guest, payment).json()["status"] == "succeeded"  # again: nothing more
    assert len(order["purchase_units"][0]["payments"]["captures"]) == 1
    assert ledger(owner, booking["id"]) == {("guest", "USD"): "-360.00", ("platform_cash", "USD"): "360.00"}


def test_who_may_capture(
    api: TestClient, make_user: MakeUser, host: User, guest: User, booking: dict[str, Any]
) -> None:
    payment = pay_with_paypal(api, guest, booking)

    assert_problem(capture(api, host, payment), 403)
    assert_problem(capture(api, make_user("guest"), payment), 404)
    assert_problem(capture(api, None, payment), 401)
    assert_problem(api.post("/api/payments/nope/capture/", headers=guest.auth), 404)


def test_a_stripe_payment_is_not_captured(api: TestClient, guest: User, booking: dict[str, Any]) -> None:
    payment = pay(api, guest, booking).json()

    assert_problem(capture(api, guest, payment), 409, "provider")


def test_a_lost_capture_answer_is_retried_by_the_worker_and_captures_once(
    api: TestClient,
    owner: psycopg.Connection[Any],
    paypal: PayPalStandIn,
    guest: User,
    booking: dict[str, Any],
    work: Any,
) -> None:
    payment = pay_with_paypal(api, guest, booking)
    (order,) = paypal.orders_for(payment["id"])
    paypal.approve(order["id"])
    paypal.lose_next_response = True  # PayPal captured; the answer never arrived

    first = capture(api, guest, payment)
    work()

    assert first.status_code == 200 and first.json()["status"] == "requires_payment"
    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "succeeded"
    assert len(paypal.orders[order["id"]]["purchase_units"][0]["payments"]["captures"]) == 1
    assert booking_status(owner, booking["id"]) == "confirmed"


def test_a_capture_webhook_confirms_a_payment_nobody_recorded(
    api: TestClient,
    pay_settings: Settings,
    paypal: PayPalStandIn,
    guest: User,
    booking: dict[str, Any],
    work: Any,
) -> None:
    payment = pay_with_paypal(api, guest, booking)
    (order,) = paypal.orders_for(payment["id"])
    paypal.approve(order["id"])
    # Captured at PayPal by a process that died before it could record it.
    PayPalGateway(pay_settings).capture(order["id"], payment["id"])
    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "requires_payment"
    cap = paypal.orders[order["id"]]["purchase_units"][0]["payments"]["captures"][0]

    r = paypal_webhook(api, paypal, "PAYMENT.CAPTURE.COMPLETED", cap)
    again = paypal_webhook(api, paypal, "PAYMENT.CAPTURE.COMPLETED", cap)
    work()

    assert r.status_code == 200 and r.json()["new"] is True and again.status_code == 200
    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "succeeded"


def test_paypal_webhooks_with_a_bad_signature_are_400_and_record_nothing(
    api: TestClient, owner: psycopg.Connection[Any], paypal: PayPalStandIn, client: TestClient
) -> None:
    before = owner.execute("select count(*) from app_private.webhook_events").fetchone()

    bad = paypal_webhook(api, paypal, "PAYMENT.CAPTURE.COMPLETED", {"id": "CAP-1"}, bad=True)
    unsigned = api.post("/api/webhooks/paypal/", content=b"{}", headers={"Content-Type": "application/json"})

    assert_problem(bad, 400)
    assert_problem(unsigned, 400)
    assert owner.execute("select count(*) from app_private.webhook_events").fetchone() == before
    assert_problem(paypal_webhook(client, paypal, "PAYMENT.CAPTURE.COMPLETED", {"id": "CAP-1"}), 503)


MISSING = object()  # a field paypal_event leaves out


def paypal_event(**fields: Any) -> Any:
    """A PayPal capture event, with `fields` replaced (a field given as MISSING is left out)."""
    event = {
        "id": "WH-" + secrets.token_hex(10).upper(),
        "event_version": "1.0",
        "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "resource": {"id": "CAP-1", "supplementary_data": {"related_ids": {"order_id": "ORD-1"}}},
        **fields,
    }
    return {k: v for k, v in event.items() if v is not MISSING}


def signed_paypal(paypal: PayPalStandIn, event: Any) -> tuple[bytes, dict[str, str]]:
    """Any JSON signed as the stand-in signs a webhook (its verify endpoint then says SUCCESS)."""
    tid, at = str(uuid.uuid4()), now()
    return json.dumps(event).encode(), {
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        "PAYPAL-CERT-URL": f"{paypal.base_url}/v1/notifications/certs/CERT-standin",
        "PAYPAL-TRANSMISSION-ID": tid,
        "PAYPAL-TRANSMISSION-SIG": paypal.sign(tid, at, paypal.webhook_id, event),
        "PAYPAL-TRANSMISSION-TIME": at,
        "Content-Type": "application/json",
    }


@pytest.mark.parametrize(
    "event",
    [
        pytest.param([paypal_event()], id="a JSON array"),
        pytest.param("WH-1", id="a JSON string"),
        pytest.param(None, id="JSON null"),
        pytest.param(paypal_event(resource=["CAP-1"]), id="resource a list"),
        pytest.param(paypal_event(resource="CAP-1"), id="resource a string"),
        pytest.param(paypal_event(resource=7), id="resource a number"),
        pytest.param(paypal_event(resource=None), id="resource null"),
        pytest.param(paypal_event(resource=MISSING), id="no resource"),
        pytest.param(
            paypal_event(resource={"id": "CAP-1", "supplementary_data": ["x"]}), id="supplementary_data a list"
        ),
        pytest.param(
            paypal_event(resource={"id": "CAP-1", "supplementary_data": {"related_ids": "ORD-1"}}),
            id="related_ids a string",
        ),
        pytest.param(
            paypal_event(resource={"id": "CAP-1", "supplementary_data": {"related_ids": {"order_id": 7}}}),
            id="order id not a string",
        ),
        pytest.param(
            paypal_event(event_type="PAYMENT.PAYOUTSBATCH.SUCCESS", resource={"batch_header": ["PB-1"]}),
            id="batch_header a list",
        ),
        pytest.param(
            paypal_event(event_type="CHECKOUT.ORDER.APPROVED", resource={"id": {"id": "ORD-1"}}),
            id="object id not a string",
        ),
        pytest.param(
            paypal_event(event_type="CHECKOUT.ORDER.APPROVED", resource={"id": "ORD-" + "x" * 300}),
            id="object id longer than 255",
        ),
        pytest.param(paypal_event(event_type=MISSING), id="no event_type"),
        pytest.param(paypal_event(event_type=7), id="event_type not a string"),
        pytest.param(paypal_event(event_type=["PAYMENT.CAPTURE.COMPLETED"]), id="event_type a list"),
        pytest.param(paypal_event(event_type=""), id="empty event_type"),
        pytest.param(paypal_event(event_type="X" * 300), id="event_type longer than 255"),
        pytest.param(paypal_event(id=MISSING), id="no id"),
        pytest.param(paypal_event(id=7), id="id not a string"),
        pytest.param(paypal_event(id=""), id="empty id"),
        pytest.param(paypal_event(id="WH-" + "x" * 300), id="id longer than 255"),
    ],
)
def test_signed_but_malformed_paypal_events_are_400_and_record_nothing(
    api: TestClient, owner: psycopg.Connection[Any], paypal: PayPalStandIn, event: Any
) -> None:
    (before,) = owner.execute("select count(*) from app_private.webhook_events").fetchone()  # type: ignore[misc]
    body, headers = signed_paypal(paypal, event)

    r = api.post("/api/webhooks/paypal/", content=body, headers=headers)

    assert_problem(r, 400)
    (after,) = owner.execute("select count(*) from app_private.webhook_events").fetchone()  # type: ignore[misc]
    assert after == before


def test_a_signed_event_nexus_does_not_act_on_is_recorded_and_ignored(
    api: TestClient, owner: psycopg.Connection[Any], paypal: PayPalStandIn
) -> None:
    event = paypal_event(event_type="BILLING.SUBSCRIPTION.CREATED", resource={"id": ["I-1"]})
    body, headers = signed_paypal(paypal, event)

    r = api.post("/api/webhooks/paypal/", content=body, headers=headers)

    assert r.status_code == 200 and r.json() == {"received": True, "new": True}
    assert owner.execute(
        "select type, kind, object_id from app_private.webhook_events where event_id = %s", (event["id"],)
    ).fetchone() == ("BILLING.SUBSCRIPTION.CREATED", None, None)


def captured_paypal_booking(
    api: TestClient, paypal: PayPalStandIn, guest: User, booking: dict[str, Any]
) -> dict[str, Any]:
    payment = pay_with_paypal(api, guest, booking)
    paypal.approve(paypal.orders_for(payment["id"])[0]["id"])
    assert capture(api, guest, payment).json()["status"] == "succeeded"
    return payment


def test_canceling_a_paypal_booking_refunds_through_paypal(
    api: TestClient,
    owner: psycopg.Connection[Any],
    paypal: PayPalStandIn,
    guest: User,
    booking: dict[str, Any],
    work: Any,
) -> None:
    payment = captured_paypal_booking(api, paypal, guest, booking)

    api.post(f"/api/bookings/{booking['id']}/cancel/", headers=guest.auth)
    work()

    seen = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert (seen["status"], seen["amount_refunded"]) == ("refunded", "360.00")
    (refund,) = seen["refunds"]
    assert paypal.refunds[refund["provider_refund_id"]]["amount"] == {"value": "360.00", "currency_code": "USD"}
    assert ledger(owner, booking["id"]) == {}


def test_a_host_paid_by_paypal_is_paid_when_paypal_says_so(
    api: TestClient,
    owner: psycopg.Connection[Any],
    paypal: PayPalStandIn,
    make_user: MakeUser,
    guest: User,
    work: Any,
) -> None:
    from tests.fix_data import day, new_listing

    host = make_user("host")
    api.post(
        "/api/users/me/payout-account/", json={"provider": "paypal", "email": "ada@example.com"}, headers=host.auth
    )
    listing = new_listing(owner, host.id, price="120.00")
    booking = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(30), "end_date": day(33), "guests": 1},
        headers=guest.auth,
    ).json()
    captured_paypal_booking(api, paypal, guest, booking)

    complete_stays(owner)
    work()
    (payout,) = api.get("/api/payouts/", headers=host.auth).json()["results"]
    assert payout["status"] == "processing"
    batch = paypal.payouts[payout["provider_payout_id"]]
    assert batch["items"][0]["payout_item"]["receiver"] == "ada@example.com"
    assert batch["items"][0]["payout_item"]["amount"] == {"value": "324.00", "currency": "USD"}

    paypal.set_payout_status(payout["provider_payout_id"], "SUCCESS")
    paypal_webhook(api, paypal, "PAYMENT.PAYOUTS-ITEM.SUCCEEDED", batch["items"][0])
    retry_now(owner)
    work()

    assert api.get("/api/payouts/", headers=host.auth).json()["results"][0]["status"] == "paid"
    assert ledger(owner, booking["id"]) == {
        ("guest", "USD"): "-360.00",
        ("host", "USD"): "324.00",
        ("platform_fee", "USD"): "36.00",
    }


def test_an_unclaimed_paypal_payout_is_not_paid_until_claimed_and_a_returned_one_is_owed_again(
    api: TestClient,
    owner: psycopg.Connection[Any],
    paypal: PayPalStandIn,
    make_user: MakeUser,
    admin: User,
    guest: User,
    work: Any,
) -> None:
    from tests.fix_data import day, new_listing

    host = make_user("host")
    api.post(
        "/api/users/me/payout-account/", json={"provider": "paypal", "email": "typo@example.con"}, headers=host.auth
    )
    listing = new_listing(owner, host.id, price="120.00")
    booking = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(30), "end_date": day(33), "guests": 1},
        headers=guest.auth,
    ).json()
    captured_paypal_booking(api, paypal, guest, booking)
    complete_stays(owner)
    work()
    (payout,) = api.get("/api/payouts/", headers=host.auth).json()["results"]

    # The batch is done, but nobody has a PayPal account at that email: the item waits, unclaimed.
    paypal.set_payout_status(payout["provider_payout_id"], "SUCCESS", item_status="UNCLAIMED")
    paypal_webhook(
        api, paypal, "PAYMENT.PAYOUTS-ITEM.UNCLAIMED", paypal.payouts[payout["provider_payout_id"]]["items"][0]
    )
    work()
    assert api.get("/api/payouts/", headers=host.auth).json()["results"][0]["status"] == "processing"

    # 30 days later PayPal returns it: the host is owed it again, and an admin sends it anew.
    paypal.set_payout_status(payout["provider_payout_id"], "SUCCESS", item_status="RETURNED")
    paypal_webhook(
        api, paypal, "PAYMENT.PAYOUTS-ITEM.RETURNED", paypal.payouts[payout["provider_payout_id"]]["items"][0]
    )
    work()
    (returned,) = api.get("/api/payouts/", headers=host.auth).json()["results"]
    assert returned["status"] == "failed" and "RETURNED" in returned["failure_reason"]
    assert ledger(owner, booking["id"])[("host_payable", "USD")] == "324.00"
    api.post(
        "/api/users/me/payout-account/", json={"provider": "paypal", "email": "ada@example.com"}, headers=host.auth
    )
    retried = api.post(f"/api/payouts/{payout['id']}/retry/", headers=admin.auth).json()
    work()
    (again,) = api.get("/api/payouts/", headers=host.auth).json()["results"]
    assert (retried["attempt"], again["provider_payout_id"] != payout["provider_payout_id"]) == (2, True)
    assert paypal.payouts[again["provider_payout_id"]]["items"][0]["payout_item"]["receiver"] == "ada@example.com"


def test_a_paypal_payout_settles_without_its_webhook(
    api: TestClient,
    owner: psycopg.Connection[Any],
    paypal: PayPalStandIn,
    make_user: MakeUser,
    pay_settings: Any,
    guest: User,
    work: Any,
) -> None:
    """The batch succeeds at PayPal but no webhook ever comes: the poll asks, and the payout is paid."""
    from api import worker
    from tests.fix_data import day, new_listing

    host = make_user("host")
    api.post(
        "/api/users/me/payout-account/", json={"provider": "paypal", "email": "ada@example.com"}, headers=host.auth
    )
    listing = new_listing(owner, host.id, price="120.00")
    booking = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(30), "end_date": day(33), "guests": 1},
        headers=guest.auth,
    ).json()
    captured_paypal_booking(api, paypal, guest, booking)
    complete_stays(owner)
    work()
    (payout,) = api.get("/api/payouts/", headers=host.auth).json()["results"]
    assert payout["status"] == "processing"
    paypal.set_payout_status(payout["provider_payout_id"], "SUCCESS")  # and the webhook is lost

    with worker.opened(pay_settings):
        assert worker.poll_payouts(0) == "asked about 0 payouts"  # quiet for less than 30 minutes: not yet
    # Half an hour later (the poll's bound, moved instead of waited for):
    owner.execute("select app_private.payouts_poll(interval '0 seconds')")
    owner.execute("select app_private.payouts_poll(interval '0 seconds')")  # queued already: not again

    def jobs_for_it() -> Any:
        with owner.transaction():
            owner.execute("set local search_path = procrastinate, pg_catalog")
            return owner.execute(
                "select count(*) from procrastinate_jobs where task_name = 'payouts.send' and status = 'todo'"
                " and args ->> 'payout_id' = %s",
                [payout["id"]],
            ).fetchone()

    assert jobs_for_it() == (1,)
    work()

    assert api.get("/api/payouts/", headers=host.auth).json()["results"][0]["status"] == "paid"
    assert ledger(owner, booking["id"])[("host", "USD")] == "324.00"
