"""Disputes (chargebacks) and money that goes back to a guest after the host's payout: over HTTP,
through the real worker, against Stripe's and PayPal's stand-ins.

The rules (sql/functions/42_disputes.sql, 41_refunds_payouts.sql): an open dispute holds the
disputed money (ledger account dispute) and the host's payout if it has not gone; won, the
money comes back and the payout is released; lost, it goes to the guest. Money that goes back
after the payout was computed (a refund, a lost dispute) is charged to the host, less the fee
the platform gives back, and withheld from their next payout. Every booking's ledger balances.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from tests.api.test_refunds_payouts import onboard
from tests.fix_api import assert_problem
from tests.fix_data import day, new_listing
from tests.fix_payments import complete_stays, ledger, ledger_balances, paid_booking, pay, paypal_webhook, webhook
from tests.fix_users import MakeUser, User
from tests.paypal_standin import PayPalStandIn
from tests.stripe_standin import StripeStandIn


@pytest.fixture
def new_host(make_user: MakeUser) -> User:
    return make_user("host")


@pytest.fixture
def new_guest(make_user: MakeUser) -> User:
    return make_user("guest")


def dispute(api: TestClient, stripe: StripeStandIn, payment: dict[str, Any], event: str = "created", **kw: Any) -> Any:
    """Stripe reports a dispute of the payment (opened with `kw`, or decided: event "closed" with dispute=)."""
    if event == "created":
        obj = stripe.open_dispute(payment["provider_payment_id"], **kw)
    else:
        obj = stripe.close_dispute(kw["dispute"], kw["status"])
    assert webhook(api, stripe, f"charge.dispute.{event}", obj).status_code == 200
    return obj


def payout_of(api: TestClient, host: User, booking: dict[str, Any]) -> dict[str, Any]:
    (payout,) = [
        p for p in api.get("/api/payouts/", headers=host.auth).json()["results"] if p["booking_id"] == booking["id"]
    ]
    return payout  # type: ignore[no-any-return]


def owed(owner: psycopg.Connection[Any], host: User, currency: str = "USD") -> Decimal:
    """What the host owes the platform (app_private.host_owed)."""
    (value,) = owner.execute("select app_private.host_owed(%s, %s)", (host.id, currency)).fetchone()  # type: ignore[misc]
    return Decimal(value)


def notified(owner: psycopg.Connection[Any], user: User, kind: str, payment: dict[str, Any]) -> int:
    (n,) = owner.execute(  # type: ignore[misc]
        "select count(*) from app.notifications where user_id = %s and type = %s and data ->> 'payment_id' = %s",
        (user.id, kind, payment["id"]),
    ).fetchone()
    return int(n)


# --- 27.2: a refund after the payout ------------------------------------------------------------


def test_a_refund_after_the_payout_is_charged_to_the_host_and_withheld_from_the_next_payout(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    new_guest: User,
    admin: User,
) -> None:
    onboard(api, stripe, new_host, work)
    first, payment = paid_booking(api, owner, stripe, work, new_host, new_guest, start=3)
    complete_stays(owner, days_ahead=8)
    work()
    assert payout_of(api, new_host, first)["status"] == "paid"  # 360 - 36 = 324 sent

    # Weeks later an admin gives the guest 100.00 back: the host's share (90.00) is owed by the host.
    refunded = api.post(
        f"/api/payments/{payment['id']}/refund/",
        json={"amount": "100.00", "reason": "Broken heating"},
        headers=admin.auth,
    )
    assert refunded.status_code == 201, refunded.text
    work()
    assert refunded.json()["status"] == "pending"
    assert api.get(f"/api/payments/{payment['id']}/", headers=admin.auth).json()["amount_refunded"] == "100.00"
    assert owed(owner, new_host) == Decimal("90.00")
    assert ledger(owner, first["id"]) == {
        ("guest", "USD"): "-260.00",
        ("host", "USD"): "324.00",
        ("host_receivable", "USD"): "-90.00",  # the host owes their share
        ("platform_fee", "USD"): "26.00",  # the platform gave back its 10.00 on the refund
    }

    # Their next stay's payout withholds it, and says so.
    second, _ = paid_booking(api, owner, stripe, work, new_host, new_guest, start=12)
    complete_stays(owner, days_ahead=17)
    work()
    payout = payout_of(api, new_host, second)
    assert (payout["status"], payout["gross"], payout["fee"], payout["withheld"], payout["amount"]) == (
        "paid",
        "360.00",
        "36.00",
        "90.00",
        "234.00",
    )
    assert stripe.transfers[payout["provider_payout_id"]]["amount"] == 23400
    assert owed(owner, new_host) == 0
    assert ledger(owner, second["id"]) == {
        ("guest", "USD"): "-360.00",
        ("host", "USD"): "234.00",
        ("host_receivable", "USD"): "90.00",
        ("platform_fee", "USD"): "36.00",
    }
    for booking in (first, second):
        assert set(ledger_balances(owner, booking["id"]).values()) == {"0.00"}


def test_a_refund_asked_for_before_the_payout_is_not_charged_to_the_host(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    new_guest: User,
    admin: User,
) -> None:
    onboard(api, stripe, new_host, work)
    booking, payment = paid_booking(api, owner, stripe, work, new_host, new_guest, start=3)
    api.post(f"/api/payments/{payment['id']}/refund/", json={"amount": "60.00", "reason": "Late"}, headers=admin.auth)
    complete_stays(owner, days_ahead=8)
    work()
    payout = payout_of(api, new_host, booking)
    assert (payout["gross"], payout["withheld"], payout["amount"]) == ("300.00", "0.00", "270.00")
    assert owed(owner, new_host) == 0
    assert set(ledger_balances(owner, booking["id"]).values()) == {"0.00"}


# --- 27.3: disputes ---------------------------------------------------------------------------


def test_a_dispute_holds_the_payout_and_a_won_one_releases_it(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    new_guest: User,
    admin: User,
    make_user: MakeUser,
) -> None:
    onboard(api, stripe, new_host, work)
    booking, payment = paid_booking(api, owner, stripe, work, new_host, new_guest, start=3)
    opened = dispute(api, stripe, payment, reason="product_not_received")
    assert webhook(api, stripe, "charge.dispute.created", opened).status_code == 200  # delivered twice
    work()

    (seen,) = api.get(f"/api/payments/{payment['id']}/", headers=new_guest.auth).json()["disputes"]
    assert (seen["status"], seen["amount"], seen["reason"], seen["provider_dispute_id"]) == (
        "open",
        "360.00",
        "product_not_received",
        opened["id"],
    )
    assert notified(owner, admin, "dispute_opened", payment) == 1
    assert notified(owner, new_host, "dispute_opened", payment) == 1
    assert ledger(owner, booking["id"]) == {("guest", "USD"): "-360.00", ("dispute", "USD"): "360.00"}

    # What is disputed can no longer be refunded.
    refused = api.post(
        f"/api/payments/{payment['id']}/refund/", json={"amount": "10.00", "reason": "Sorry"}, headers=admin.auth
    )
    assert_problem(refused, 400, field="amount")

    # The stay completes while the bank decides: the payout is computed but held, nothing sent.
    complete_stays(owner, days_ahead=8)
    work()
    payout = payout_of(api, new_host, booking)
    assert (payout["status"], payout["held"], payout["amount"]) == ("pending", True, "324.00")
    assert_problem(api.post(f"/api/payouts/{payout['id']}/retry/", headers=admin.auth), 409, field="status")

    # Won: the money is back, the payout goes out in full.
    dispute(api, stripe, payment, "closed", dispute=opened["id"], status="won")
    work()
    payout = payout_of(api, new_host, booking)
    assert (payout["status"], payout["held"], payout["withheld"], payout["amount"]) == ("paid", False, "0.00", "324.00")
    assert api.get("/api/disputes/?status=won", headers=new_host.auth).json()["results"][0]["id"] == seen["id"]
    assert notified(owner, new_host, "dispute_closed", payment) == 1
    assert ledger(owner, booking["id"]) == {
        ("guest", "USD"): "-360.00",
        ("host", "USD"): "324.00",
        ("platform_fee", "USD"): "36.00",
    }


def test_a_lost_dispute_after_the_payout_was_computed_is_withheld_from_the_held_payout(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    new_guest: User,
) -> None:
    onboard(api, stripe, new_host, work)
    booking, payment = paid_booking(api, owner, stripe, work, new_host, new_guest, start=3)
    opened = dispute(api, stripe, payment, amount=10000)  # 100.00 of 360.00
    work()
    complete_stays(owner, days_ahead=8)
    work()
    assert payout_of(api, new_host, booking)["held"] is True

    dispute(api, stripe, payment, "closed", dispute=opened["id"], status="lost")
    work()
    payout = payout_of(api, new_host, booking)
    assert (payout["status"], payout["gross"], payout["withheld"], payout["amount"]) == (
        "paid",
        "360.00",
        "90.00",  # the host's share of the 100.00 the bank gave back
        "234.00",
    )
    assert stripe.transfers[payout["provider_payout_id"]]["amount"] == 23400
    assert owed(owner, new_host) == 0
    assert ledger(owner, booking["id"]) == {
        ("guest", "USD"): "-260.00",
        ("host", "USD"): "234.00",
        ("platform_fee", "USD"): "26.00",
    }
    assert set(ledger_balances(owner, booking["id"]).values()) == {"0.00"}


def test_a_dispute_lost_in_full_leaves_nothing_to_send(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    new_guest: User,
) -> None:
    onboard(api, stripe, new_host, work)
    booking, payment = paid_booking(api, owner, stripe, work, new_host, new_guest, start=3)
    opened = dispute(api, stripe, payment)
    work()
    complete_stays(owner, days_ahead=8)
    work()
    sent_before = len(stripe.transfers)
    dispute(api, stripe, payment, "closed", dispute=opened["id"], status="lost")
    work()
    payout = payout_of(api, new_host, booking)
    assert (payout["status"], payout["withheld"], payout["amount"], payout["provider_payout_id"]) == (
        "paid",
        "324.00",
        "0.00",
        None,
    )
    assert len(stripe.transfers) == sent_before
    assert ledger(owner, booking["id"]) == {}  # the guest has everything back; nobody holds anything
    (n,) = owner.execute(  # type: ignore[misc]
        "select count(*) from app.notifications where user_id = %s and type = 'payout_sent'", (new_host.id,)
    ).fetchone()
    assert n == 0


def test_a_paypal_dispute_is_read_back_from_paypal_and_decided(
    api: TestClient,
    owner: psycopg.Connection[Any],
    paypal: PayPalStandIn,
    work: Any,
    new_host: User,
    new_guest: User,
) -> None:
    listing = new_listing(owner, new_host.id, price="80.00")
    stay = {"product_id": listing, "start_date": day(40), "end_date": day(42), "guests": 1}
    booking = api.post("/api/bookings/", json=stay, headers=new_guest.auth).json()
    order = pay(api, new_guest, booking, provider="paypal").json()
    paypal.approve(order["provider_payment_id"])
    assert api.post(f"/api/payments/{order['id']}/capture/", headers=new_guest.auth).json()["status"] == "succeeded"

    opened = paypal.open_dispute(order["provider_payment_id"], value="50.00")
    # PayPal's webhook carries the dispute; the worker reads it (and its capture's order) back.
    assert paypal_webhook(api, paypal, "CUSTOMER.DISPUTE.CREATED", opened).status_code == 200
    work()
    (seen,) = api.get("/api/disputes/", headers=new_guest.auth).json()["results"]
    assert (seen["provider"], seen["status"], seen["amount"], seen["provider_status"]) == (
        "paypal",
        "open",
        "50.00",
        "OPEN",
    )

    resolved = paypal.close_dispute(opened["dispute_id"], "RESOLVED_BUYER_FAVOUR")
    assert paypal_webhook(api, paypal, "CUSTOMER.DISPUTE.RESOLVED", resolved).status_code == 200
    work()
    (seen,) = api.get("/api/disputes/", headers=new_guest.auth).json()["results"]
    assert (seen["status"], seen["provider_status"]) == ("lost", "RESOLVED")
    # No payout yet: nothing to charge the host; the payout will count only what was kept.
    assert ledger(owner, booking["id"]) == {("guest", "USD"): "-110.00", ("platform_cash", "USD"): "110.00"}


def test_disputes_we_cannot_match_are_recorded_and_change_nothing(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    new_guest: User,
    admin: User,
) -> None:
    booking, payment = paid_booking(api, owner, stripe, work, new_host, new_guest, start=50)
    api.post(f"/api/payments/{payment['id']}/refund/", json={"amount": "300.00", "reason": "Most"}, headers=admin.auth)
    work()
    before = ledger(owner, booking["id"])

    # More than what the refunds left (60.00).
    too_much = dispute(api, stripe, payment, amount=10000)
    # A payment Stripe has and we do not.
    with stripe.lock:
        stripe.intents["pi_stranger"] = {**stripe.intents[payment["provider_payment_id"]], "id": "pi_stranger"}
    stranger = dispute(api, stripe, {"provider_payment_id": "pi_stranger"})
    work()

    outcomes = dict(
        owner.execute(
            "select object_id, outcome from app_private.webhook_events where object_id in (%s, %s)",
            (too_much["id"], stranger["id"]),
        ).fetchall()
    )
    assert outcomes[too_much["id"]].startswith("refused: 100.00 USD disputed, only 60.00 USD")
    assert outcomes[stranger["id"]] == "ignored: no payment has this provider id"
    (n,) = owner.execute(  # type: ignore[misc]
        "select count(*) from app.disputes where provider_dispute_id in (%s, %s)", (too_much["id"], stranger["id"])
    ).fetchone()
    assert n == 0
    assert ledger(owner, booking["id"]) == before


def test_who_sees_which_disputes(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    new_guest: User,
    admin: User,
    make_user: MakeUser,
) -> None:
    _, payment = paid_booking(api, owner, stripe, work, new_host, new_guest, start=60)
    opened = dispute(api, stripe, payment)
    work()

    def ids(user: User | None) -> set[str]:
        r = api.get("/api/disputes/?page_size=100", headers=user.auth if user else {})
        assert r.status_code == 200, r.text
        return {d["provider_dispute_id"] for d in r.json()["results"]}

    assert opened["id"] in ids(new_guest)
    assert opened["id"] in ids(new_host)
    assert opened["id"] in ids(admin)
    assert opened["id"] not in ids(make_user("host"))
    assert opened["id"] not in ids(make_user("guest"))
    assert api.get("/api/disputes/").status_code == 401
    assert_problem(api.get("/api/disputes/?status=pending", headers=admin.auth), 400, field="status")


def test_a_late_second_payment_refunded_after_the_payout_is_not_charged_to_the_host(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    new_guest: User,
) -> None:
    """Found by the soak: the guest's first payment is taken for dead and they pay again; the stay
    completes and the host is paid from the second; then the first succeeds after all and goes back
    in full. The payout never counted it, so the host owes nothing for it."""
    onboard(api, stripe, new_host, work)
    listing = new_listing(owner, new_host.id, price="120.00")
    booking = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(3), "end_date": day(6), "guests": 1},
        headers=new_guest.auth,
    ).json()
    first = pay(api, new_guest, booking).json()
    webhook(api, stripe, "payment_intent.payment_failed", stripe.set_status(first["provider_payment_id"], "canceled"))
    work()
    second = pay(api, new_guest, booking).json()
    webhook(api, stripe, "payment_intent.succeeded", stripe.set_status(second["provider_payment_id"], "succeeded"))
    work()
    complete_stays(owner, days_ahead=8)
    work()
    assert payout_of(api, new_host, booking)["status"] == "paid"

    webhook(api, stripe, "payment_intent.succeeded", stripe.set_status(first["provider_payment_id"], "succeeded"))
    work()

    late = api.get(f"/api/payments/{first['id']}/", headers=new_guest.auth).json()
    assert (late["status"], late["refunds"][0]["status"]) == ("refunded", "succeeded")
    assert owed(owner, new_host) == 0
    assert ledger(owner, booking["id"]) == {
        ("guest", "USD"): "-360.00",
        ("host", "USD"): "324.00",
        ("platform_fee", "USD"): "36.00",
    }
