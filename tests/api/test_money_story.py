"""The whole money flow in one story, over HTTP, with both providers' stand-ins and the real worker.

Book, pay with Stripe (webhook), cancel under the policy (refund), book again, pay with PayPal
(capture), the stay completes, the host is paid out, the fee is recorded — and the ledger
sums to zero per booking and currency, while the analyst sees the day's money without anyone's
identity. Then the edges: a refund in another currency after the payout, and a PayPal dispute
lost while the payout was held, both paid back by the host out of their next payout.
"""

from __future__ import annotations

from typing import Any

import psycopg
from starlette.testclient import TestClient

from tests.api.test_refunds_payouts import onboard
from tests.fix_data import day, new_listing
from tests.fix_payments import complete_stays, ledger, ledger_balances, paid_booking, pay, paypal_webhook, webhook
from tests.fix_users import MakeUser, User
from tests.paypal_standin import PayPalStandIn
from tests.stripe_standin import StripeStandIn


def test_book_pay_cancel_refund_book_again_pay_stay_and_pay_the_host(
    api: TestClient,
    owner: psycopg.Connection[Any],
    analyst_url: str,
    stripe: StripeStandIn,
    paypal: PayPalStandIn,
    make_user: MakeUser,
    admin: User,
    work: Any,
) -> None:
    host, guest = make_user("host"), make_user("guest")
    listing = new_listing(owner, host.id, price="150.00", policy="moderate")
    stay = {"product_id": listing, "start_date": day(20), "end_date": day(22), "guests": 2}

    # The host says where to be paid, and finishes Stripe's onboarding.
    account = api.post("/api/users/me/payout-account/", json={"provider": "stripe"}, headers=host.auth).json()
    webhook(api, stripe, "account.updated", stripe.enable_payouts(account["provider_account_id"]))

    # 1. Book and pay with a card; Stripe's webhook confirms it.
    first = api.post("/api/bookings/", json=stay, headers=guest.auth).json()
    card = pay(api, guest, first).json()
    webhook(api, stripe, "payment_intent.succeeded", stripe.set_status(card["provider_payment_id"], "succeeded"))
    work()
    assert api.get(f"/api/bookings/{first['id']}/", headers=guest.auth).json()["status"] == "confirmed"

    # 2. Cancel 20 days ahead under "moderate": everything back, through Stripe.
    canceled = api.post(f"/api/bookings/{first['id']}/cancel/", json={"reason": "Plans changed"}, headers=guest.auth)
    work()
    assert canceled.json()["refund_amount"] == "300.00"
    card = api.get(f"/api/payments/{card['id']}/", headers=guest.auth).json()
    assert (card["status"], card["refunds"][0]["status"]) == ("refunded", "succeeded")
    assert (
        sum(r["amount"] for r in stripe.refunds.values() if r["payment_intent"] == card["provider_payment_id"]) == 30000
    )

    # 3. Book the same dates again (they are free) and pay with PayPal: approve, capture.
    second = api.post("/api/bookings/", json=stay, headers=guest.auth).json()
    order = pay(api, guest, second, provider="paypal").json()
    paypal.approve(order["provider_payment_id"])
    captured = api.post(f"/api/payments/{order['id']}/capture/", headers=guest.auth).json()
    assert captured["status"] == "succeeded"
    assert api.get(f"/api/bookings/{second['id']}/", headers=guest.auth).json()["status"] == "confirmed"

    # 4. The stay completes; the host is paid out through their Stripe account, minus the fee.
    complete_stays(owner, days_ahead=30)
    work()
    (payout,) = api.get("/api/payouts/", headers=host.auth).json()["results"]
    assert (payout["status"], payout["gross"], payout["fee"], payout["amount"]) == ("paid", "300.00", "30.00", "270.00")
    assert stripe.transfers[payout["provider_payout_id"]]["destination"] == account["provider_account_id"]

    # 5. The books: each booking balances; the money ended where it should.
    for booking in (first, second):
        assert set(ledger_balances(owner, booking["id"]).values()) == {"0.00"}
    assert ledger(owner, first["id"]) == {}
    assert ledger(owner, second["id"]) == {
        ("guest", "USD"): "-300.00",
        ("host", "USD"): "270.00",
        ("platform_fee", "USD"): "30.00",
    }
    assert {
        p["id"] for p in api.get(f"/api/payments/?booking={second['id']}", headers=admin.auth).json()["results"]
    } == {order["id"]}

    # 6. The analyst sees the payout and today's money, and nobody's identity.
    with psycopg.connect(analyst_url) as conn:
        (fee,) = conn.execute(
            "select fee::text from analytics.payouts where booking_id = %s", (second["id"],)
        ).fetchone()  # type: ignore[misc]
        (paid_in, refunded) = conn.execute(  # type: ignore[misc]
            "select paid_in, refunded from analytics.money_daily where day = current_date and currency = 'USD'"
        ).fetchone()
    assert fee == "30.00"
    assert paid_in >= 600 and refunded >= 300


def test_money_at_the_edges_a_refund_after_the_payout_and_a_lost_dispute_are_paid_back_by_the_host(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    paypal: PayPalStandIn,
    make_user: MakeUser,
    admin: User,
    work: Any,
) -> None:
    host, guest = make_user("host"), make_user("guest")
    onboard(api, stripe, host, work)
    assert api.post("/api/exchange-rates/", json={"base": "USD", "quote": "EUR", "rate": "0.9"}, headers=admin.auth)

    # 1. A stay paid in euros (360.00 USD at 0.9 = 324.00 EUR) completes; the host is paid 324.00 USD.
    first, card = paid_booking(api, owner, stripe, work, host, guest, start=4, currency="EUR")
    complete_stays(owner, days_ahead=9)
    work()
    (payout,) = api.get("/api/payouts/", headers=host.auth).json()["results"]
    assert (payout["status"], payout["amount"]) == ("paid", "324.00")

    # 2. Then an admin gives the guest 90.00 EUR back (100.00 USD at the rate paid): the host owes 90.00 USD.
    refund = api.post(
        f"/api/payments/{card['id']}/refund/", json={"amount": "90.00", "reason": "No hot water"}, headers=admin.auth
    )
    assert refund.status_code == 201, refund.text
    work()
    assert ledger(owner, first["id"]) == {
        ("guest", "EUR"): "-234.00",
        ("fx", "EUR"): "234.00",
        ("fx", "USD"): "-260.00",
        ("host", "USD"): "324.00",
        ("host_receivable", "USD"): "-90.00",
        ("platform_fee", "USD"): "26.00",
    }

    # 3. A second stay, paid with PayPal, is disputed (50.00 of 160.00): its payout is held.
    listing = new_listing(owner, host.id, price="80.00")
    second = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(12), "end_date": day(14), "guests": 1},
        headers=guest.auth,
    ).json()
    order = pay(api, guest, second, provider="paypal").json()
    paypal.approve(order["provider_payment_id"])
    assert api.post(f"/api/payments/{order['id']}/capture/", headers=guest.auth).json()["status"] == "succeeded"
    opened = paypal.open_dispute(order["provider_payment_id"], value="50.00")
    assert paypal_webhook(api, paypal, "CUSTOMER.DISPUTE.CREATED", opened).status_code == 200
    work()
    complete_stays(owner, days_ahead=16)
    work()
    held = next(
        p for p in api.get("/api/payouts/", headers=host.auth).json()["results"] if p["booking_id"] == second["id"]
    )
    assert (held["status"], held["held"], held["amount"]) == ("pending", True, "144.00")

    # 4. PayPal decides for the guest: the host's share (45.00) joins what they owe (135.00), and
    #    the released payout withholds it: 144.00 - 135.00 = 9.00 is sent.
    resolved = paypal.close_dispute(opened["dispute_id"], "RESOLVED_BUYER_FAVOUR")
    assert paypal_webhook(api, paypal, "CUSTOMER.DISPUTE.RESOLVED", resolved).status_code == 200
    work()
    sent = next(
        p for p in api.get("/api/payouts/", headers=host.auth).json()["results"] if p["booking_id"] == second["id"]
    )
    assert (sent["status"], sent["withheld"], sent["amount"]) == ("paid", "135.00", "9.00")
    assert stripe.transfers[sent["provider_payout_id"]]["amount"] == 900

    # 5. The books: every booking balances in every currency; the host owes nothing more, and
    #    every refunded or disputed cent is accounted for by the host's share and the fee given back.
    for booking in (first, second):
        assert set(ledger_balances(owner, booking["id"]).values()) == {"0.00"}
    (owed,) = owner.execute("select app_private.host_owed(%s, 'USD')", (host.id,)).fetchone()  # type: ignore[misc]
    assert owed == 0
    assert ledger(owner, second["id"]) == {
        ("guest", "USD"): "-110.00",
        ("host", "USD"): "9.00",
        ("host_receivable", "USD"): "90.00",  # the first booking's debt, settled here
        ("platform_fee", "USD"): "11.00",
    }
