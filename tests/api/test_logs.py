"""Logs (api/logs.py): one JSON line per event with its request id, from every logger, in the API and the
worker; and no password, token, secret or card number in any of them, over the flows that handle them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import orjson
import psycopg
from starlette.testclient import TestClient

from api import logs
from api.settings import Settings
from tests.fix_api import PASSWORD, new_email
from tests.fix_data import day, new_listing
from tests.fix_payments import pay, paypal_webhook, webhook
from tests.fix_users import User
from tests.loglines import captured_logs
from tests.paypal_standin import PayPalStandIn
from tests.smtp_sink import SmtpSink
from tests.stripe_standin import StripeStandIn

ROOT = Path(__file__).resolve().parents[2]
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CARD = "4242 4242 4242 4242"


def test_the_access_line_is_one_json_object_with_the_request_id(client: TestClient) -> None:
    with captured_logs() as lines:
        r = client.get("/api/categories/?search=x", headers={"X-Request-ID": "req-42"})

    (access,) = [line for line in lines.parsed() if line["logger"] == "nexus.access"]
    assert r.status_code == 200
    assert access["message"] == "GET /api/categories/ 200" and access["level"] == "INFO"
    assert TIME.fullmatch(access["time"])
    assert (access["request_id"], access["method"], access["path"], access["status"]) == (
        "req-42",
        "GET",
        "/api/categories/",
        200,
    )
    assert isinstance(access["ms"], float) and "trace_id" not in access  # tracing is off


def test_a_warning_inside_a_request_carries_its_request_id(
    api: TestClient, owner: psycopg.Connection[Any], stripe: StripeStandIn, host: User, guest: User
) -> None:
    listing = new_listing(owner, host.id)
    booking = api.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(70), "end_date": day(72), "guests": 1},
        headers=guest.auth,
    ).json()
    stripe.fail_next.append(503)

    with captured_logs() as lines:
        r = pay(api, guest, booking)

    assert r.status_code == 201
    (warning,) = [line for line in lines.parsed() if line["logger"] == "nexus.payments"]
    assert warning["level"] == "WARNING" and "the worker retries" in warning["message"]
    assert warning["request_id"] == r.headers["x-request-id"]


def test_setup_makes_every_logger_json_and_keeps_the_talkative_libraries_quiet() -> None:
    program = """
import logging
from api import logs
logs.setup("debug")
logging.getLogger("uvicorn.error").info("Started server process")
logging.getLogger("uvicorn.access").info("GET / 200")  # the app writes its own (nexus.access)
logging.getLogger("procrastinate.worker").debug("Starting job")
logging.getLogger("httpx2").info("HTTP Request: GET https://graph.facebook.com/me?access_token=EAAB-secret")
logging.getLogger("stripe").debug("API response body body='client_secret'")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("nexus.errors").exception("unhandled error")
"""
    r = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=60)

    lines = [orjson.loads(line) for line in r.stderr.splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("uvicorn.error", "INFO"),
        ("procrastinate.worker", "DEBUG"),
        ("nexus.errors", "ERROR"),
    ]
    assert "ZeroDivisionError" in lines[-1]["exception"]
    assert "secret" not in r.stderr


def test_scrub_removes_what_has_the_shape_of_a_secret_and_nothing_else() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    text = (
        f"token {jwt}; Authorization: Bearer abcdefgh12345678; key sk_live_4eC39HqLyjWDarjtT1zdp7dc;"
        " whsec_0123456789abcdef; pi_3MtwBw2eZvKYlo2C_secret_YrKJUKribcBjcG8HVhfZluoGH;"
        f" card {CARD} or 4000-0566-5566-5556; not a card 4242424242424241;"
        " id 3f0c2a44-1234-5678-9012-123456789012, at 2026-12-07 12:00:00, 1733570000"
    )

    out = logs.scrub(text)

    for secret in (jwt, "abcdefgh12345678", "sk_live_", "whsec_", "_secret_", CARD, "4000-0566-5566-5556"):
        assert secret not in out
    for kept in ("4242424242424241", "3f0c2a44-1234-5678-9012-123456789012", "2026-12-07 12:00:00", "1733570000"):
        assert kept in out


def test_no_password_token_secret_or_card_number_in_any_log_line(
    api: TestClient,
    pay_settings: Settings,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    paypal: PayPalStandIn,
    smtp: SmtpSink,
    work: Any,
    host: User,
) -> None:
    """Sign-up, sign-in, refresh, sign-out, a bad token, a card number where none belongs, a Stripe and
    a PayPal payment with their webhooks, a provider failing, the worker sending the emails: all logged
    at DEBUG, then searched for every secret that passed."""
    email, listing = new_email(), new_listing(owner, host.id)
    secrets = [PASSWORD, *pay_settings.jwt_keys.values(), stripe.secret_key, stripe.webhook_secret]
    secrets += [paypal.client_secret, CARD, CARD.replace(" ", "")]
    request_ids = []

    def keep(r: Any, status: int) -> Any:
        assert r.status_code == status, r.text
        request_ids.append(r.headers["x-request-id"])
        return r.json() if r.content else None

    with captured_logs() as lines:
        body = {"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Byron"}
        keep(api.post("/api/register/", json=body), 201)
        keep(api.post("/api/token/", json={"email": email, "password": "wrong " + PASSWORD}), 401)
        tokens = keep(api.post("/api/token/", json={"email": email, "password": PASSWORD}), 200)
        fresh = keep(api.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}), 200)
        keep(api.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}), 401)  # reuse: the family ends
        tokens = keep(api.post("/api/token/", json={"email": email, "password": PASSWORD}), 200)
        auth = {"Authorization": f"Bearer {tokens['access']}"}
        keep(api.get("/api/users/me/", headers={"Authorization": f"Bearer {fresh['access']}x"}), 401)
        stay = {"product_id": listing, "start_date": day(80), "end_date": day(82), "guests": 1}
        keep(api.post("/api/bookings/", json={**stay, "product_id": CARD}, headers=auth), 400)  # a card, misplaced
        booking = keep(api.post("/api/bookings/", json=stay, headers=auth), 201)
        user = User("", email, "guest", tokens["access"])  # pay() needs only its token
        stripe.fail_next.append(503)  # the API's call fails (logged), the worker's succeeds
        payment = keep(pay(api, user, booking), 201)
        work()
        payment = keep(api.get(f"/api/payments/{payment['id']}/", headers=auth), 200)
        intent = stripe.set_status(payment["provider_payment_id"], "succeeded")
        keep(webhook(api, stripe, "payment_intent.succeeded", intent), 200)
        keep(webhook(api, stripe, "payment_intent.succeeded", intent, secret="whsec_wrong"), 400)
        work()

        other = keep(
            api.post("/api/bookings/", json={**stay, "start_date": day(90), "end_date": day(92)}, headers=auth), 201
        )
        by_paypal = keep(pay(api, user, other, provider="paypal"), 201)
        (order,) = paypal.orders_for(by_paypal["id"])
        paypal.approve(order["id"])
        keep(api.post(f"/api/payments/{by_paypal['id']}/capture/", headers=auth), 200)
        keep(paypal_webhook(api, paypal, "PAYMENT.CAPTURE.COMPLETED", {"id": "nothing-we-know"}), 200)
        work()
        keep(api.post("/api/token/revoke/", json={"refresh": tokens["refresh"]}, headers=auth), 204)
        httpx2.get(stripe.base_url + "/v1/nothing?access_token=" + stripe.webhook_secret, timeout=5)

    text = lines.text()
    secrets += [tokens["access"], tokens["refresh"], fresh["access"], fresh["refresh"], *paypal.tokens]
    secrets += [payment["client_secret"]]
    for secret in secrets:
        assert secret and secret not in text, f"{secret!r} is in the logs"
    # The logs were there to search: every request's line, the worker's jobs, the provider's failure.
    logged = lines.parsed()
    assert set(request_ids) <= {line.get("request_id") for line in logged if line["logger"] == "nexus.access"}
    assert any("handed to the relay" in line["message"] for line in logged)
    assert any(line["logger"] == "nexus.payments" for line in logged)
    assert smtp.to(email)
