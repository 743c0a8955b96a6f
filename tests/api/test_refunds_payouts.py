"""Refunds, host payout accounts, payouts and the ledger, over HTTP, with Stripe's stand-in and the real worker."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from api import payments
from api.settings import Settings
from api.worker import RETRIES
from tests.fix_api import assert_problem
from tests.fix_data import day, new_listing
from tests.fix_payments import complete_stays, ledger, ledger_balances, paid_booking, pay, retry_now, webhook
from tests.fix_users import MakeUser, User
from tests.stripe_standin import StripeStandIn


@pytest.fixture
def new_host(make_user: MakeUser) -> User:
    """A host of their own (payout accounts are one per host)."""
    return make_user("host")


def onboard(api: TestClient, stripe: StripeStandIn, host: User, work: Any) -> dict[str, Any]:
    """The host sets a Stripe payout account and finishes onboarding (account.updated): active."""
    account = api.post("/api/users/me/payout-account/", json={"provider": "stripe"}, headers=host.auth).json()
    acct = stripe.enable_payouts(account["provider_account_id"])
    assert webhook(api, stripe, "account.updated", acct).status_code == 200
    work()
    return api.get("/api/users/me/payout-account/", headers=host.auth).json()  # type: ignore[no-any-return]


# --- refunds on cancellation ------------------------------------------------------------------


def test_a_paid_booking_canceled_early_is_refunded_in_full_through_stripe(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    guest: User,
) -> None:
    booking, payment = paid_booking(api, owner, stripe, work, new_host, guest, policy="moderate")

    canceled = api.post(f"/api/bookings/{booking['id']}/cancel/", json={"reason": "Sick"}, headers=guest.auth)
    work()

    assert canceled.json()["refund_amount"] == "360.00"
    seen = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert (seen["status"], seen["amount_refunded"]) == ("refunded", "360.00")
    (refund,) = seen["refunds"]
    assert (refund["kind"], refund["status"], refund["amount"], refund["reason"]) == (
        "cancellation",
        "succeeded",
        "360.00",
        "Sick",
    )
    assert stripe.refunds[refund["provider_refund_id"]]["amount"] == 36000
    assert api.get("/api/payouts/", headers=new_host.auth).json()["count"] == 0  # nothing kept, nothing to pay
    assert ledger(owner, booking["id"]) == {}  # paid in, paid back


def test_a_strict_cancellation_refunds_half_and_the_host_is_owed_the_rest(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    guest: User,
) -> None:
    booking, payment = paid_booking(api, owner, stripe, work, new_host, guest, policy="strict")

    api.post(f"/api/bookings/{booking['id']}/cancel/", headers=guest.auth)
    work()

    seen = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert (seen["status"], seen["amount_refunded"]) == ("partially_refunded", "180.00")
    # What was kept waits for the stay's would-be check-out, as a stay's payout does.
    assert api.get("/api/payouts/", headers=new_host.auth).json()["count"] == 0
    assert ledger(owner, booking["id"]) == {("guest", "USD"): "-180.00", ("platform_cash", "USD"): "180.00"}
    complete_stays(owner, days_ahead=1)  # not yet: the stay is still ahead
    assert api.get("/api/payouts/", headers=new_host.auth).json()["count"] == 0
    complete_stays(owner)
    complete_stays(owner)  # the job again: the payout is opened once
    (payout,) = api.get("/api/payouts/", headers=new_host.auth).json()["results"]
    assert (payout["status"], payout["gross"], payout["fee"], payout["amount"]) == (
        "pending",
        "180.00",
        "18.00",
        "162.00",
    )
    assert ledger(owner, booking["id"]) == {
        ("guest", "USD"): "-180.00",
        ("host_payable", "USD"): "162.00",
        ("platform_fee", "USD"): "18.00",
    }


def test_a_host_cancellation_refunds_in_full_whatever_the_policy(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    guest: User,
) -> None:
    booking, payment = paid_booking(api, owner, stripe, work, new_host, guest, policy="strict")

    api.post(f"/api/bookings/{booking['id']}/cancel/", headers=new_host.auth)
    work()

    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "refunded"


def test_a_refund_in_another_currency_follows_the_rate_the_guest_paid_at(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    admin: User,
    new_host: User,
    guest: User,
) -> None:
    api.post("/api/exchange-rates/", json={"base": "USD", "quote": "EUR", "rate": "0.9"}, headers=admin.auth)
    booking, payment = paid_booking(api, owner, stripe, work, new_host, guest, policy="strict", currency="EUR")

    api.post(f"/api/bookings/{booking['id']}/cancel/", headers=guest.auth)
    work()

    assert payment["amount"] == "324.00"
    seen = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert seen["amount_refunded"] == "162.00"  # half of 360.00 USD at 0.9
    complete_stays(owner)  # what was kept is paid out at the would-be check-out
    (payout,) = api.get("/api/payouts/", headers=new_host.auth).json()["results"]
    assert (payout["gross"], payout["currency"]) == ("180.00", "USD")  # the host is paid in the listing's currency
    assert ledger_balances(owner, booking["id"]) == {"EUR": "0.00", "USD": "0.00"}


def test_a_payment_that_lands_after_the_booking_was_canceled_is_refunded(
    api: TestClient, owner: psycopg.Connection[Any], stripe: StripeStandIn, work: Any, guest: User, booking: Any
) -> None:
    payment = pay(api, guest, booking).json()
    api.post(f"/api/bookings/{booking['id']}/cancel/", headers=guest.auth)
    # The guest's bank confirmed the charge just as the booking was canceled.
    intent = stripe.set_status(payment["provider_payment_id"], "succeeded")
    webhook(api, stripe, "payment_intent.succeeded", intent)
    work()

    seen = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert (seen["status"], seen["amount_refunded"]) == ("refunded", "360.00")
    assert ledger(owner, booking["id"]) == {}


def test_a_processing_payment_canceled_with_its_hold_is_refunded_when_it_succeeds(
    api: TestClient, owner: psycopg.Connection[Any], stripe: StripeStandIn, work: Any, guest: User, booking: Any
) -> None:
    payment = pay(api, guest, booking).json()
    webhook(api, stripe, "payment_intent.processing", stripe.set_status(payment["provider_payment_id"], "processing"))
    work()
    owner.execute("update app.bookings set expires_at = now() - interval '1 minute' where id = %s", (booking["id"],))
    owner.execute("select app.run_booking_jobs()")  # the hold expires; Stripe cannot cancel a processing intent
    work()
    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "canceled"

    # The bank debit clears days later.
    webhook(api, stripe, "payment_intent.succeeded", stripe.set_status(payment["provider_payment_id"], "succeeded"))
    work()

    seen = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert (seen["status"], seen["refunds"][0]["reason"]) == (
        "refunded",
        "The booking was canceled before the payment completed.",
    )
    assert ledger(owner, booking["id"]) == {}


def test_a_second_payment_that_succeeds_late_goes_back_and_the_first_is_kept(
    api: TestClient, owner: psycopg.Connection[Any], stripe: StripeStandIn, work: Any, guest: User, booking: Any
) -> None:
    first = pay(api, guest, booking).json()
    webhook(api, stripe, "payment_intent.payment_failed", stripe.set_status(first["provider_payment_id"], "canceled"))
    work()  # we take it for dead: the guest pays again
    second = pay(api, guest, booking).json()
    webhook(api, stripe, "payment_intent.succeeded", stripe.set_status(second["provider_payment_id"], "succeeded"))
    work()

    webhook(api, stripe, "payment_intent.succeeded", stripe.set_status(first["provider_payment_id"], "succeeded"))
    work()

    statuses = {
        p["id"]: p["status"]
        for p in api.get(f"/api/payments/?booking={booking['id']}", headers=guest.auth).json()["results"]
    }
    assert statuses == {first["id"]: "refunded", second["id"]: "succeeded"}
    assert ledger(owner, booking["id"]) == {("guest", "USD"): "-360.00", ("platform_cash", "USD"): "360.00"}


def test_a_host_in_a_currency_without_minor_units_is_paid_the_right_amount(
    api: TestClient, owner: psycopg.Connection[Any], stripe: StripeStandIn, work: Any, new_host: User, guest: User
) -> None:
    account = onboard(api, stripe, new_host, work)
    listing = new_listing(owner, new_host.id, price="18000", currency="JPY")
    booking = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(30), "end_date": day(33), "guests": 1},
        headers=guest.auth,
    ).json()
    payment = pay(api, guest, booking).json()
    webhook(api, stripe, "payment_intent.succeeded", stripe.set_status(payment["provider_payment_id"], "succeeded"))
    work()

    complete_stays(owner)
    work()

    (payout,) = api.get("/api/payouts/", headers=new_host.auth).json()["results"]
    assert (payout["gross"], payout["fee"], payout["amount"], payout["status"]) == ("54000", "5400", "48600", "paid")
    transfer = stripe.transfers[payout["provider_payout_id"]]
    assert (transfer["amount"], transfer["currency"], transfer["destination"]) == (
        48600,
        "jpy",
        account["provider_account_id"],
    )


# --- admin refunds ----------------------------------------------------------------------------


def test_admin_refunds_part_then_the_rest_never_more(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    admin: User,
    new_host: User,
    guest: User,
) -> None:
    _, payment = paid_booking(api, owner, stripe, work, new_host, guest)
    url = f"/api/payments/{payment['id']}/refund/"

    part = api.post(url, json={"amount": "60.50", "reason": "Broken heater"}, headers=admin.auth)
    work()

    assert part.status_code == 201, part.text
    assert (part.json()["kind"], part.json()["amount"]) == ("goodwill", "60.50")
    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "partially_refunded"
    assert_problem(api.post(url, json={"amount": "300.00", "reason": "x"}, headers=admin.auth), 400, "amount")
    assert_problem(api.post(url, json={"amount": "1.005", "reason": "x"}, headers=admin.auth), 400, "amount")
    rest = api.post(url, json={"reason": "Dispute settled"}, headers=admin.auth)
    work()
    assert rest.json()["amount"] == "299.50"
    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "refunded"
    assert_problem(api.post(url, json={"reason": "again"}, headers=admin.auth), 409)


def test_only_admins_refund_and_only_paid_payments(
    api: TestClient, guest: User, host: User, admin: User, booking: dict[str, Any]
) -> None:
    payment = pay(api, guest, booking).json()
    url = f"/api/payments/{payment['id']}/refund/"

    assert_problem(api.post(url, json={"reason": "x"}, headers=guest.auth), 403)
    assert_problem(api.post(url, json={"reason": "x"}, headers=host.auth), 403)
    assert_problem(api.post(url, json={"reason": "x"}), 401)
    assert_problem(api.post(url, json={}, headers=admin.auth), 400, "reason")
    assert_problem(api.post(url, json={"reason": "x"}, headers=admin.auth), 409, "status")  # not paid yet
    assert_problem(api.post("/api/payments/not-a-uuid/refund/", json={"reason": "x"}, headers=admin.auth), 404)


def test_a_refund_stripe_keeps_refusing_fails_and_can_be_made_again(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    admin: User,
    new_host: User,
    guest: User,
) -> None:
    _, payment = paid_booking(api, owner, stripe, work, new_host, guest)
    stripe.fail_next = [500] * 20
    refund = api.post(f"/api/payments/{payment['id']}/refund/", json={"reason": "x"}, headers=admin.auth).json()

    # Every retry fails; the last one gives up (the worker's backoff is skipped by moving the clock).
    for _ in range(1 + RETRIES):
        retry_now(owner)
        work()
    stripe.fail_next = []

    failed = api.get(f"/api/payments/{payment['id']}/", headers=admin.auth).json()
    assert failed["refunds"][0]["id"] == refund["id"]
    assert failed["refunds"][0]["status"] == "failed" and failed["refunds"][0]["failure_reason"]
    assert failed["status"] == "succeeded"  # nothing went back
    again = api.post(f"/api/payments/{payment['id']}/refund/", json={"reason": "retry"}, headers=admin.auth)
    assert again.json()["amount"] == "360.00"


# --- payout accounts and payouts ----------------------------------------------------------------


def test_host_onboards_with_stripe_and_pending_payouts_are_sent(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    guest: User,
) -> None:
    booking, _ = paid_booking(api, owner, stripe, work, new_host, guest)
    complete_stays(owner)
    (pending,) = api.get("/api/payouts/", headers=new_host.auth).json()["results"]
    assert (pending["status"], pending["gross"], pending["fee_percent"], pending["fee"], pending["amount"]) == (
        "pending",
        "360.00",
        "10.00",
        "36.00",
        "324.00",
    )

    r = api.post("/api/users/me/payout-account/", json={"provider": "stripe"}, headers=new_host.auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["onboarding_url"].startswith(stripe.base_url)
    account = onboard(api, stripe, new_host, work)
    work()

    assert account["status"] == "active"
    (paid,) = api.get("/api/payouts/", headers=new_host.auth).json()["results"]
    assert paid["status"] == "paid"
    transfer = stripe.transfers[paid["provider_payout_id"]]
    assert (transfer["amount"], transfer["destination"]) == (32400, account["provider_account_id"])
    assert ledger(owner, booking["id"]) == {
        ("guest", "USD"): "-360.00",
        ("host", "USD"): "324.00",
        ("platform_fee", "USD"): "36.00",
    }


def test_a_host_with_an_active_account_is_paid_when_the_stay_completes(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    new_host: User,
    guest: User,
) -> None:
    onboard(api, stripe, new_host, work)
    paid_booking(api, owner, stripe, work, new_host, guest)

    complete_stays(owner)
    work()
    work()  # a second run sends nothing more

    (payout,) = api.get("/api/payouts/", headers=new_host.auth).json()["results"]
    assert payout["status"] == "paid"
    assert sum(1 for t in stripe.transfers.values() if t["metadata"]["payout_id"] == payout["id"]) == 1


def test_paypal_payout_accounts_are_active_at_once_and_need_an_email(
    api: TestClient, new_host: User, guest: User
) -> None:
    url = "/api/users/me/payout-account/"

    assert_problem(api.post(url, json={"provider": "paypal"}, headers=new_host.auth), 400, "email")
    assert_problem(api.post(url, json={"provider": "paypal", "email": "nope"}, headers=new_host.auth), 400, "email")
    assert_problem(api.post(url, json={"provider": "cash"}, headers=new_host.auth), 400, "provider")
    assert_problem(api.get(url, headers=new_host.auth), 404)
    r = api.post(url, json={"provider": "paypal", "email": "Host@Example.com"}, headers=new_host.auth)
    assert (r.json()["status"], r.json()["provider_account_id"]) == ("active", "host@example.com")
    assert api.get(url, headers=new_host.auth).json()["provider"] == "paypal"
    assert_problem(api.post(url, json={"provider": "paypal", "email": "a@b.co"}, headers=guest.auth), 403)
    assert_problem(api.get(url), 401)


def test_who_sees_which_payouts(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    make_user: MakeUser,
    admin: User,
    new_host: User,
    guest: User,
) -> None:
    paid_booking(api, owner, stripe, work, new_host, guest)
    complete_stays(owner)
    mine = api.get("/api/payouts/", headers=new_host.auth).json()

    assert mine["count"] == 1
    assert api.get("/api/payouts/", headers=make_user("host").auth).json()["count"] == 0
    assert mine["results"][0]["id"] in {
        p["id"] for p in api.get("/api/payouts/?page_size=100", headers=admin.auth).json()["results"]
    }
    assert_problem(api.get("/api/payouts/", headers=guest.auth), 403)
    assert_problem(api.get("/api/payouts/"), 401)
    assert_problem(api.get("/api/payouts/?status=lost", headers=admin.auth), 400, "status")


def test_a_failed_payout_is_retried_by_an_admin(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    admin: User,
    new_host: User,
    guest: User,
) -> None:
    account = onboard(api, stripe, new_host, work)
    paid_booking(api, owner, stripe, work, new_host, guest)
    stripe.accounts[account["provider_account_id"]]["payouts_enabled"] = False  # Stripe refuses transfers now
    complete_stays(owner)
    for _ in range(1 + RETRIES):
        retry_now(owner)
        work()
    (failed,) = api.get("/api/payouts/", headers=new_host.auth).json()["results"]
    assert failed["status"] == "failed" and failed["failure_reason"]

    assert_problem(api.post(f"/api/payouts/{failed['id']}/retry/", headers=new_host.auth), 403)
    stripe.enable_payouts(account["provider_account_id"])
    retried = api.post(f"/api/payouts/{failed['id']}/retry/", headers=admin.auth)
    work()

    assert retried.status_code == 200 and retried.json()["status"] == "scheduled"
    assert api.get("/api/payouts/", headers=new_host.auth).json()["results"][0]["status"] == "paid"
    assert_problem(api.post(f"/api/payouts/{failed['id']}/retry/", headers=admin.auth), 409, "status")


# --- the ledger -------------------------------------------------------------------------------


def test_the_ledger_is_append_only_even_for_the_owner(
    api: TestClient, owner: psycopg.Connection[Any], stripe: StripeStandIn, work: Any, new_host: User, guest: User
) -> None:
    booking, _ = paid_booking(api, owner, stripe, work, new_host, guest)

    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        owner.execute("update app.ledger_entries set amount = 1 where booking_id = %s", (booking["id"],))
    with pytest.raises(psycopg.errors.RaiseException, match="does not balance"):
        owner.execute(
            'select app_private.ledger_post(%s, \'bad\', \'[{"account": "guest", "amount": 5, "currency": "USD"}]\')',
            (booking["id"],),
        )


def test_a_pending_stripe_refund_succeeds_when_stripe_reports_charge_refunded(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    admin: User,
    new_host: User,
    guest: User,
) -> None:
    _, payment = paid_booking(api, owner, stripe, work, new_host, guest)
    stripe.refund_status = "pending"
    try:
        api.post(f"/api/payments/{payment['id']}/refund/", json={"amount": "100.00", "reason": "x"}, headers=admin.auth)
        work()
    finally:
        stripe.refund_status = "succeeded"
    (pending,) = api.get(f"/api/payments/{payment['id']}/", headers=admin.auth).json()["refunds"]
    assert (pending["status"], pending["provider_refund_id"] is not None) == ("pending", True)

    stripe.refunds[pending["provider_refund_id"]]["status"] = "succeeded"
    charge = {"id": "ch_1", "object": "charge", "payment_intent": payment["provider_payment_id"], "amount_refunded": 1}
    assert webhook(api, stripe, "charge.refunded", charge).status_code == 200
    work()

    seen = api.get(f"/api/payments/{payment['id']}/", headers=admin.auth).json()
    assert (seen["refunds"][0]["status"], seen["status"], seen["amount_refunded"]) == (
        "succeeded",
        "partially_refunded",
        "100.00",
    )


def test_lost_answers_never_refund_or_pay_out_twice(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    admin: User,
    new_host: User,
    guest: User,
) -> None:
    account = onboard(api, stripe, new_host, work)
    _, payment = paid_booking(api, owner, stripe, work, new_host, guest)
    stripe.lose_next_response = True  # the refund is made; its answer is lost
    api.post(f"/api/payments/{payment['id']}/refund/", json={"amount": "60.00", "reason": "x"}, headers=admin.auth)
    work()
    retry_now(owner)
    work()

    refunds = [r for r in stripe.refunds.values() if r["payment_intent"] == payment["provider_payment_id"]]
    assert [r["amount"] for r in refunds] == [6000]
    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["amount_refunded"] == "60.00"

    stripe.lose_next_response = True  # the transfer is made; its answer is lost
    complete_stays(owner)
    work()
    retry_now(owner)
    work()

    (payout,) = api.get("/api/payouts/", headers=new_host.auth).json()["results"]
    transfers = [t for t in stripe.transfers.values() if t["destination"] == account["provider_account_id"]]
    assert [t["amount"] for t in transfers] == [27000]  # (360 - 60) less the 10 % fee, once
    assert (payout["status"], payout["amount"]) == ("paid", "270.00")


def test_payout_retry_needs_an_admin_and_an_existing_payout(api: TestClient, admin: User, guest: User) -> None:
    missing = "00000000-0000-0000-0000-000000000000"

    assert_problem(api.post(f"/api/payouts/{missing}/retry/", headers=admin.auth), 404)
    assert_problem(api.post("/api/payouts/not-a-uuid/retry/", headers=admin.auth), 404)
    assert_problem(api.post(f"/api/payouts/{missing}/retry/", headers=guest.auth), 403)
    assert_problem(api.post(f"/api/payouts/{missing}/retry/"), 401)


# --- a refund given up on, and what an admin may do next ------------------------------------------


def give_up_on_a_refund(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    admin: User,
    payment: dict[str, Any],
    amount: str,
) -> dict[str, Any]:
    """Stripe makes the refund but its answer is lost, then stops answering until the worker gives up."""
    stripe.lose_next_response = True
    refund = api.post(
        f"/api/payments/{payment['id']}/refund/", json={"reason": "Noisy night", "amount": amount}, headers=admin.auth
    ).json()
    work()  # the first attempt: Stripe refunds, the answer is lost
    stripe.fail_next = [503] * (3 * RETRIES + 3)  # then every call fails, listing included
    for _ in range(RETRIES):
        retry_now(owner)
        work()
    stripe.fail_next = []
    given_up = api.get(f"/api/payments/{payment['id']}/", headers=admin.auth).json()
    (seen,) = [r for r in given_up["refunds"] if r["id"] == refund["id"]]
    assert seen["status"] == "failed" and "could not be made" in seen["failure_reason"]
    made = [r for r in stripe.refunds.values() if r["metadata"].get("refund_id") == refund["id"]]
    assert len(made) == 1 and made[0]["status"] == "succeeded"  # yet Stripe made it
    return refund


def test_retrying_a_refund_given_up_on_asks_stripe_first_and_refunds_once(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    admin: User,
    new_host: User,
    guest: User,
) -> None:
    booking, payment = paid_booking(api, owner, stripe, work, new_host, guest)
    refund = give_up_on_a_refund(api, owner, stripe, work, admin, payment, "100.00")

    retried = api.post(f"/api/refunds/{refund['id']}/retry/", headers=admin.auth)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    work()

    seen = api.get(f"/api/payments/{payment['id']}/", headers=admin.auth).json()
    assert (seen["status"], seen["amount_refunded"]) == ("partially_refunded", "100.00")
    assert len([r for r in stripe.refunds.values() if r["payment_intent"] == payment["provider_payment_id"]]) == 1
    assert ledger_balances(owner, booking["id"]) == {"USD": "0.00"}
    assert_problem(api.post(f"/api/refunds/{refund['id']}/retry/", headers=admin.auth), 409, "status")
    assert_problem(api.post(f"/api/refunds/{refund['id']}/retry/", headers=guest.auth), 403)


def test_a_new_refund_of_what_a_given_up_refund_already_returned_is_not_made_twice(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    admin: User,
    new_host: User,
    guest: User,
) -> None:
    booking, payment = paid_booking(api, owner, stripe, work, new_host, guest)
    give_up_on_a_refund(api, owner, stripe, work, admin, payment, payment["amount"])

    again = api.post(f"/api/payments/{payment['id']}/refund/", json={"reason": "Try again"}, headers=admin.auth).json()
    assert again["amount"] == payment["amount"]  # we thought nothing had been refunded
    work()

    seen = api.get(f"/api/payments/{payment['id']}/", headers=admin.auth).json()
    assert (seen["status"], seen["amount_refunded"]) == ("refunded", payment["amount"])
    (second,) = [r for r in seen["refunds"] if r["id"] == again["id"]]
    assert second["status"] == "failed" and "already refunded" in second["failure_reason"]
    assert len([r for r in stripe.refunds.values() if r["payment_intent"] == payment["provider_payment_id"]]) == 1
    assert ledger_balances(owner, booking["id"]) == {"USD": "0.00"}


def test_the_api_and_the_worker_asking_stripe_for_a_hosts_account_at_once_get_one_account(
    pay_settings: Settings, stripe: StripeStandIn
) -> None:
    """The API creates a host's Connect account at once, and the job it defers (payouts.create_account)
    may run at the same moment: both send the one idempotency key, so there is one account. Found by
    the soak: the stand-in made two when the calls overlapped, and the job's attach failed (409)."""
    gateway = payments.gateway(pay_settings, "stripe")
    host = {"id": str(uuid.uuid4())}
    before = len(stripe.accounts)
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: gateway.account(host).id, range(16)))
    assert len(ids) == 1 and len(stripe.accounts) == before + 1
