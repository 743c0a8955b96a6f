"""Third-party fixtures: loopback stand-ins of Stripe and PayPal, an SMTP sink, an app configured for all, the worker.

A plugin (pyproject addopts `-p tests.fix_payments`): tests ask for `api`, `stripe`,
`paypal`, `smtp`, `work` and `booking` by name; the helpers (`pay`, `webhook`, ...) are imported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from api.settings import Settings
from api.worker import make_app, run_until_idle
from tests.fix_contract import contract_app
from tests.fix_data import day, new_listing
from tests.fix_users import User
from tests.loopback import Server
from tests.paypal_standin import PayPalStandIn
from tests.smtp_sink import SmtpSink
from tests.stripe_standin import StripeStandIn


@pytest.fixture(scope="session")
def stripe() -> Iterator[StripeStandIn]:
    with Server(StripeStandIn()) as standin:
        yield standin


@pytest.fixture(scope="session")
def paypal() -> Iterator[PayPalStandIn]:
    with Server(PayPalStandIn()) as standin:
        yield standin


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def pay_settings(settings: Settings, stripe: StripeStandIn, paypal: PayPalStandIn, smtp: SmtpSink) -> Settings:
    """Every third party configured: Stripe, PayPal, and email to the SMTP sink."""
    return replace(
        settings,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_starttls=False,
        email_from="bookings@nexus.test",
        frontend_url="https://nexus.test",
        stripe_secret_key=stripe.secret_key,
        stripe_webhook_secret=stripe.webhook_secret,
        stripe_api_base=stripe.base_url,
        paypal_client_id=paypal.client_id,
        paypal_client_secret=paypal.client_secret,
        paypal_webhook_id=paypal.webhook_id,
        paypal_api_base=paypal.base_url,
    )


@pytest.fixture(scope="session")
def api(pay_settings: Settings) -> Iterator[TestClient]:
    """The app with Stripe and PayPal configured (the session's `client` has no payment provider)."""
    with TestClient(contract_app(pay_settings), base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(autouse=True)
def _standins_recover(request: pytest.FixtureRequest) -> Iterator[None]:
    """A stand-in told to fail is well again after the test, whatever the test did."""
    yield
    for name in ("stripe", "paypal"):
        if name in request.fixturenames:
            standin = request.getfixturevalue(name)
            standin.fail_next.clear()
            standin.lose_next_response = False
    if "smtp" in request.fixturenames:
        sink = request.getfixturevalue("smtp")
        sink.refuse_next, sink.stall_rcpt = 0, 0.0


@pytest.fixture
def work(pay_settings: Settings) -> Any:
    """Run the worker until no job is due."""
    return lambda: asyncio.run(run_until_idle(make_app(pay_settings)))


@pytest.fixture
def booking(api: TestClient, owner: psycopg.Connection[Any], host: User, guest: User) -> dict[str, Any]:
    listing = new_listing(owner, host.id, price="120.00")
    r = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(30), "end_date": day(33), "guests": 1},
        headers=guest.auth,
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def pay(api: TestClient, user: User, booking: dict[str, Any], **body: Any) -> Any:
    headers = {**user.auth, **({"Idempotency-Key": body.pop("key")} if "key" in body else {})}
    return api.post(f"/api/bookings/{booking['id']}/payments/", json={"provider": "stripe", **body}, headers=headers)


def pay_and_succeed(api: TestClient, stripe: StripeStandIn, guest: User, booking: dict[str, Any]) -> dict[str, Any]:
    """The guest pays with Stripe and Stripe says it succeeded (the webhook is in; run the worker to apply it)."""
    payment: dict[str, Any] = pay(api, guest, booking).json()
    webhook(api, stripe, "payment_intent.succeeded", stripe.set_status(payment["provider_payment_id"], "succeeded"))
    return payment


def webhook(api: TestClient, stripe: StripeStandIn, event_type: str, obj: dict[str, Any], **kw: Any) -> Any:
    body, signature = stripe.signed_event(event_type, obj, **kw)
    return api.post(
        "/api/webhooks/stripe/",
        content=body,
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
    )


def booking_status(owner: psycopg.Connection[Any], booking_id: str) -> str:
    (status,) = owner.execute("select status::text from app.bookings where id = %s", (booking_id,)).fetchone()  # type: ignore[misc]
    return str(status)


def paid_booking(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    host: User,
    guest: User,
    *,
    policy: str = "moderate",
    start: int = 30,
    currency: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A 3-night stay at 120.00 USD a night, paid with Stripe (the webhook and the worker ran): (booking, payment)."""
    listing = new_listing(owner, host.id, price="120.00", policy=policy)
    r = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(start), "end_date": day(start + 3), "guests": 1},
        headers=guest.auth,
    )
    assert r.status_code == 201, r.text
    booking = r.json()
    payment = pay(api, guest, booking, **({"currency": currency} if currency else {})).json()
    intent = stripe.set_status(payment["provider_payment_id"], "succeeded")
    assert webhook(api, stripe, "payment_intent.succeeded", intent).status_code == 200
    work()
    payment = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert payment["status"] == "succeeded", payment
    return booking, payment


def retry_now(owner: psycopg.Connection[Any]) -> None:
    """Make every job waiting for its retry due now (as if its backoff had passed)."""
    with owner.transaction():
        owner.execute("set local search_path = procrastinate")
        owner.execute("update procrastinate_jobs set scheduled_at = now() where status = 'todo'")


def complete_stays(owner: psycopg.Connection[Any], days_ahead: int = 40) -> None:
    """Run the booking job as if `days_ahead` days had passed: stays that ended are completed."""
    owner.execute("select app.run_booking_jobs(now() + make_interval(days => %s))", (days_ahead,))


def ledger(owner: psycopg.Connection[Any], booking_id: str) -> dict[tuple[str, str], str]:
    """Each ledger account's balance for one booking, by (account, currency), as decimal strings."""
    rows = owner.execute(
        "select account::text, currency, sum(amount)::text from app.ledger_entries where booking_id = %s"
        " group by 1, 2 having sum(amount) <> 0",
        (booking_id,),
    ).fetchall()
    return {(a, c): s for a, c, s in rows}


def ledger_balances(owner: psycopg.Connection[Any], booking_id: str) -> dict[str, str]:
    """The sum of every ledger entry of one booking, per currency (always zero)."""
    rows = owner.execute(
        "select currency, sum(amount)::text from app.ledger_entries where booking_id = %s group by 1", (booking_id,)
    ).fetchall()
    return dict(rows)


def paypal_webhook(api: TestClient, paypal: PayPalStandIn, event_type: str, resource: dict[str, Any], **kw: Any) -> Any:
    body, headers = paypal.signed_event(event_type, resource, **kw)
    return api.post("/api/webhooks/paypal/", content=body, headers={**headers, "Content-Type": "application/json"})
