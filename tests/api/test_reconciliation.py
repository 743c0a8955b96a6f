"""The daily reconciliation: the worker's payments.reconcile lists the loopback Stripe's and PayPal's
objects of a window and compares them with ours; every difference is recorded for admins (list,
notification, metric), none is "fixed", and an admin resolves each with a note.

Each test reconciles a window of its own (since = when it started, as an admin may ask), with no
grace for objects in flight, so what earlier tests left in the shared database and stand-ins is
outside it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from tests.fix_api import assert_problem
from tests.fix_data import day, new_listing
from tests.fix_payments import complete_stays, paid_booking, pay, webhook
from tests.fix_users import MakeUser, User
from tests.paypal_standin import PayPalStandIn
from tests.stripe_standin import StripeStandIn

Reconcile = Callable[..., dict[str, Any]]


@pytest.fixture
def reconcile(
    api: TestClient, owner: psycopg.Connection[Any], admin: User, work: Any
) -> Iterator[Callable[..., dict[str, Any]]]:
    """Run the reconciliation of one provider as an admin asks for it, through the worker, over a
    window starting now: the run's row, with the differences it saw."""
    owner.execute("update app_private.reconciliation_settings set stripe_grace_minutes = 0, paypal_grace_minutes = 0")
    time.sleep(1.1)  # Stripe's created is in whole seconds: nothing of an earlier test's second
    since = datetime.now(UTC).isoformat()

    def run(provider: str = "stripe") -> dict[str, Any]:
        r = api.post("/api/admin/reconciliation/", json={"provider": provider, "since": since}, headers=admin.auth)
        assert r.status_code == 202, r.text
        work()
        row = owner.execute(
            "select to_jsonb(r) from app_private.reconciliation_runs r where r.provider = %s order by id desc limit 1",
            [provider],
        ).fetchone()
        assert row is not None
        found = owner.execute(
            "select coalesce(jsonb_agg(to_jsonb(d) order by d.kind, d.issue), '[]')"
            " from app_private.reconciliation_differences d where d.last_run = %s",
            [row[0]["id"]],
        ).fetchone()
        assert found is not None
        return {**row[0], "found": found[0]}

    yield run
    owner.execute(
        "update app_private.reconciliation_settings set stripe_grace_minutes = 15, paypal_grace_minutes = 240"
    )


def issues(run: dict[str, Any]) -> list[tuple[str, str]]:
    return [(d["kind"], d["issue"]) for d in run["found"]]


def metric(owner: psycopg.Connection[Any], name: str, **labels: str) -> Any:
    row = owner.execute(
        "select s -> 'value' from jsonb_array_elements(app_private.metrics()) m,"
        " jsonb_array_elements(m -> 'samples') s where m ->> 'name' = %s and s -> 'labels' @> %s::jsonb",
        [name, psycopg.types.json.Jsonb(labels)],
    ).fetchone()
    return row[0] if row else None


def paid_out_booking(
    api: TestClient, owner: psycopg.Connection[Any], stripe: StripeStandIn, work: Any, host: User, guest: User
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A stay paid with Stripe, completed, and its host paid by a transfer: (booking, payment, payout)."""
    account = api.post("/api/users/me/payout-account/", json={"provider": "stripe"}, headers=host.auth).json()
    assert (
        webhook(api, stripe, "account.updated", stripe.enable_payouts(account["provider_account_id"])).status_code
        == 200
    )
    work()
    booking, payment = paid_booking(api, owner, stripe, work, host, guest)
    complete_stays(owner)
    work()
    (payout,) = api.get("/api/payouts/", headers=host.auth).json()["results"]
    assert payout["status"] == "paid", payout
    return booking, payment, payout


# --- Stripe ------------------------------------------------------------------------------------


def test_a_clean_run_finds_nothing(
    reconcile: Reconcile,
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    make_user: MakeUser,
    guest: User,
    admin: User,
) -> None:
    _booking, payment, _payout = paid_out_booking(api, owner, stripe, work, make_user("host"), guest)
    r = api.post(
        f"/api/payments/{payment['id']}/refund/",
        json={"amount": "10.00", "reason": "A broken lamp."},
        headers=admin.auth,
    )
    assert r.status_code == 201, r.text
    work()

    run = reconcile("stripe")

    assert (run["status"], run["found"], run["differences"], run["error"]) == ("succeeded", [], 0, None)
    assert run["compared"] == {"payment": {"theirs": 1}, "refund": {"theirs": 1}, "payout": {"theirs": 1}}
    assert metric(owner, "nexus_reconciliation_failing", provider="stripe") == 0
    assert metric(owner, "nexus_reconciliation_age_seconds", provider="stripe") < 60


def test_a_payment_stripe_took_that_we_still_think_open_is_a_status_difference_until_the_webhook_comes(
    reconcile: Reconcile,
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    host: User,
    guest: User,
    booking: dict[str, Any],
) -> None:
    payment = pay(api, guest, booking).json()
    intent = stripe.set_status(payment["provider_payment_id"], "succeeded")  # the webhook is lost

    run = reconcile("stripe")

    (found,) = run["found"]
    assert (found["kind"], found["issue"], found["our_id"], found["provider_id"]) == (
        "payment",
        "status",
        payment["id"],
        intent["id"],
    )
    assert (found["ours"]["status"], found["theirs"]["status"], found["state"]) == (
        "requires_payment",
        "succeeded",
        "open",
    )
    seen = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert seen["status"] == "requires_payment"  # recorded, never "fixed"
    assert metric(owner, "nexus_reconciliation_differences", provider="stripe", kind="payment") >= 1

    assert webhook(api, stripe, "payment_intent.succeeded", intent).status_code == 200  # late, but it comes
    work()
    again = reconcile("stripe")

    assert again["found"] == [] and again["gone_differences"] >= 1
    (state, gone_run) = owner.execute(
        "select state, gone_run from app_private.reconciliation_differences where id = %s", [found["id"]]
    ).fetchone()  # type: ignore[misc]
    assert (state, gone_run) == ("gone", again["id"])  # kept, with the run that saw it go


def test_a_refund_made_at_stripe_that_we_never_recorded_is_unknown_to_us(
    reconcile: Reconcile,
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    host: User,
    guest: User,
) -> None:
    _booking, payment = paid_booking(api, owner, stripe, work, host, guest)
    refund = stripe.add_refund(payment["provider_payment_id"], 5000)  # in Stripe's dashboard

    run = reconcile("stripe")

    assert issues(run) == [("refund", "unknown_to_us")]
    assert run["found"][0]["provider_id"] == refund["id"] and run["found"][0]["our_id"] is None
    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["amount_refunded"] == "0.00"


def test_an_amount_that_differs_is_reported(
    reconcile: Reconcile,
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    host: User,
    guest: User,
) -> None:
    _booking, payment = paid_booking(api, owner, stripe, work, host, guest)
    stripe.intents[payment["provider_payment_id"]]["amount"] = 36100

    run = reconcile("stripe")

    assert issues(run) == [("payment", "amount")]
    assert "36100 minor units of USD, we have 360.00 USD" in run["found"][0]["detail"]


def test_a_payout_we_think_paid_that_stripe_reversed(
    reconcile: Reconcile,
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    make_user: MakeUser,
    guest: User,
) -> None:
    _booking, _payment, payout = paid_out_booking(api, owner, stripe, work, make_user("host"), guest)
    stripe.reverse_transfer(payout["provider_payout_id"])

    run = reconcile("stripe")

    assert issues(run) == [("payout", "status")]
    assert (run["found"][0]["ours"]["status"], run["found"][0]["theirs"]["status"]) == ("paid", "failed")


def test_a_payment_unknown_to_us_and_one_of_ours_stripe_lacks(
    reconcile: Reconcile,
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    host: User,
    guest: User,
    admin: User,
) -> None:
    stranger = stripe.add_intent(4200, "eur")
    _booking, payment = paid_booking(api, owner, stripe, work, host, guest)
    del stripe.intents[payment["provider_payment_id"]]  # as if made on another Stripe account

    run = reconcile("stripe")

    assert issues(run) == [("payment", "missing_at_provider"), ("payment", "unknown_to_us")]
    assert {d["provider_id"] for d in run["found"]} == {payment["provider_payment_id"], stranger["id"]}
    # Admins hear of it, in the app (and by email).
    note = owner.execute(
        "select data from app.notifications where user_id = %s and type = 'reconciliation_differences'"
        " order by created_at desc limit 1",
        [admin.id],
    ).fetchone()
    assert note is not None and note[0]["run_id"] == run["id"] and note[0]["new"] == 2
    # Seen again by a later run: the same open rows, not new ones.
    again = reconcile("stripe")
    assert sorted(d["id"] for d in again["found"]) == sorted(d["id"] for d in run["found"])
    assert again["new_differences"] == 0


def test_stripe_down_fails_the_run_and_changes_nothing(
    reconcile: Reconcile,
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    host: User,
    guest: User,
) -> None:
    _booking, payment = paid_booking(api, owner, stripe, work, host, guest)
    stripe.intents[payment["provider_payment_id"]]["amount"] = 1  # a difference it would find
    before = owner.execute("select count(*) from app_private.reconciliation_differences").fetchone()
    stripe.fail_next = [500, 500, 500]

    run = reconcile("stripe")

    assert run["status"] == "failed" and "stripe" in run["error"] and run["found"] == []
    assert owner.execute("select count(*) from app_private.reconciliation_differences").fetchone() == before
    assert metric(owner, "nexus_reconciliation_failing", provider="stripe") == 1
    assert api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()["status"] == "succeeded"
    stripe.fail_next.clear()
    assert reconcile("stripe")["status"] == "succeeded"
    assert metric(owner, "nexus_reconciliation_failing", provider="stripe") == 0


# --- PayPal ------------------------------------------------------------------------------------


def test_paypal_captures_refunds_and_payout_batches_are_compared(
    reconcile: Reconcile,
    api: TestClient,
    owner: psycopg.Connection[Any],
    paypal: PayPalStandIn,
    work: Any,
    make_user: MakeUser,
    guest: User,
    admin: User,
) -> None:
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
    payment = pay(api, guest, booking, provider="paypal").json()
    paypal.approve(paypal.orders_for(payment["id"])[0]["id"])
    assert api.post(f"/api/payments/{payment['id']}/capture/", headers=guest.auth).json()["status"] == "succeeded"
    r = api.post(
        f"/api/payments/{payment['id']}/refund/",
        json={"amount": "10.00", "reason": "A broken lamp."},
        headers=admin.auth,
    )
    assert r.status_code == 201, r.text
    complete_stays(owner)
    work()
    (payout,) = api.get("/api/payouts/", headers=host.auth).json()["results"]
    assert payout["status"] == "processing"
    paypal.set_payout_status(payout["provider_payout_id"], "SUCCESS")  # its webhook is lost

    first = reconcile("paypal")
    assert (first["status"], issues(first)) == ("succeeded", [("payout", "status")])  # PayPal paid, we still wait
    assert first["compared"] == {"payment": {"theirs": 1}, "refund": {"theirs": 1}, "payout": {"theirs": 1}}
    assert (first["found"][0]["ours"]["status"], first["found"][0]["theirs"]["status"]) == ("processing", "paid")

    owner.execute("select app_private.payouts_poll(interval '0')")  # the poll asks PayPal: paid
    work()
    second = reconcile("paypal")
    assert (second["found"], second["gone_differences"]) == ([], 1)


# --- admins ------------------------------------------------------------------------------------


def test_an_admin_lists_and_resolves_a_difference_with_a_note(
    reconcile: Reconcile,
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    admin: User,
) -> None:
    stranger = stripe.add_intent(990, "usd")
    (found,) = reconcile("stripe")["found"]
    assert found["provider_id"] == stranger["id"]

    listed = api.get("/api/admin/reconciliation/?state=open&provider=stripe", headers=admin.auth)
    assert listed.status_code == 200, listed.text
    assert found["id"] in [d["id"] for d in listed.json()["results"]]
    path = f"/api/admin/reconciliation/{found['id']}/resolve/"
    assert_problem(api.post(path, json={"note": "  "}, headers=admin.auth), 400, field="note")
    r = api.post(path, json={"note": "A test charge from the Stripe dashboard; refunded there."}, headers=admin.auth)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["resolved_by"]) == ("resolved", admin.id)
    assert_problem(api.post(path, json={"note": "again"}, headers=admin.auth), 409)
    assert_problem(api.post("/api/admin/reconciliation/nope/resolve/", json={"note": "x"}, headers=admin.auth), 404)
    still_open = api.get("/api/admin/reconciliation/?state=open", headers=admin.auth).json()["results"]
    assert found["id"] not in [d["id"] for d in still_open]
    assert_problem(api.get("/api/admin/reconciliation/?state=sideways", headers=admin.auth), 400, field="state")
    runs = api.get("/api/admin/reconciliation/runs/", headers=admin.auth).json()["results"]
    assert runs[0]["provider"] == "stripe" and runs[0]["status"] == "succeeded"
    system = api.get("/api/admin/system/", headers=admin.auth).json()["reconciliation"]
    assert "stripe" in [r["provider"] for r in system["last_runs"]]
    assert_problem(
        api.post("/api/admin/reconciliation/", json={"since": "last tuesday"}, headers=admin.auth), 400, field="since"
    )
    assert_problem(
        api.post("/api/admin/reconciliation/", json={"since": "2001-01-01T00:00:00Z"}, headers=admin.auth),
        400,
        field="since",
    )


def test_only_admins_see_or_touch_the_reconciliation(
    api: TestClient, guest: User, host: User, analyst_url: str
) -> None:
    for user in (guest, host):
        assert api.get("/api/admin/reconciliation/", headers=user.auth).status_code == 403
        assert api.get("/api/admin/reconciliation/runs/", headers=user.auth).status_code == 403
        assert api.post("/api/admin/reconciliation/", json={}, headers=user.auth).status_code == 403
        r = api.post(
            "/api/admin/reconciliation/00000000-0000-0000-0000-000000000000/resolve/",
            json={"note": "mine now"},
            headers=user.auth,
        )
        assert r.status_code == 403
    assert api.get("/api/admin/reconciliation/").status_code == 401
    with psycopg.connect(analyst_url, autocommit=True) as analyst:
        for statement in (
            "select * from app_private.reconciliation_differences",
            "select api.reconciliation_list()",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                analyst.execute(statement)


def test_the_dashboard_shows_differences_and_runs_resolves_and_runs_again(
    reconcile: Reconcile, api: TestClient, owner: psycopg.Connection[Any], stripe: StripeStandIn, work: Any
) -> None:
    stranger = stripe.add_intent(1234, "usd")
    (found,) = reconcile("stripe")["found"]
    browser = TestClient(api.app, base_url="http://testserver", raise_server_exceptions=False)
    email = f"recon-{uuid.uuid4().hex[:10]}@example.com"
    owner.execute("select app_private.create_admin(%s, %s)", (email, "admin-password-1"))
    assert browser.post("/admin/login", data={"email": email, "password": "admin-password-1"}).status_code == 200

    listed = browser.get("/admin/reconciliation")
    assert listed.status_code == 200 and stranger["id"] in listed.text and "succeeded" in listed.text
    assert "Open differences with the payment providers" in browser.get("/admin/system").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', listed.text)
    assert csrf
    r = browser.post(
        f"/admin/reconciliation/{found['id']}",
        data={"csrf": csrf.group(1), "note": "Made by hand at Stripe."},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "error" not in r.headers["location"], r.headers["location"]
    assert "Made by hand at Stripe." in browser.get("/admin/reconciliation?state=resolved").text
    r = browser.post("/admin/reconciliation", data={"csrf": csrf.group(1), "action": "run"}, follow_redirects=False)
    assert r.status_code == 303
    before = owner.execute("select count(*) from app_private.reconciliation_runs").fetchone()
    work()
    after = owner.execute("select count(*) from app_private.reconciliation_runs").fetchone()
    assert before is not None and after is not None and after[0] >= before[0] + 2  # Stripe and PayPal
