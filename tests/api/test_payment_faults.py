"""Faults on the money path: a worker killed mid-job, a provider down past every retry.

The worker here is the real process (`python -m api.worker`), killed with SIGKILL while
Stripe's stand-in sits on an answer; the job is found stalled and run again, and the
idempotency key makes Stripe answer with the object the dead worker had created.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from starlette.testclient import TestClient

from api.settings import Settings
from api.worker import RETRIES, make_app, recover_stalled
from tests.fix_payments import pay, retry_now
from tests.fix_users import User
from tests.stripe_standin import StripeStandIn

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_killed_mid_call_never_charges_twice(
    api: TestClient,
    owner_url: str,
    pay_settings: Settings,
    stripe: StripeStandIn,
    guest: User,
    booking: dict[str, Any],
    work: Any,
) -> None:
    stripe.fail_next = [500]  # the API's own attempt fails: the job will create the intent
    payment = pay(api, guest, booking).json()
    assert payment["provider_payment_id"] is None
    stripe.slow_next = 60.0
    env = {
        **os.environ,
        "DATABASE_URL": owner_url,
        "STRIPE_SECRET_KEY": stripe.secret_key,
        "STRIPE_API_BASE": stripe.base_url,
        "LOG_LEVEL": "warning",
    }
    worker = subprocess.Popen([sys.executable, "-m", "api.worker"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while not stripe.intents_for(payment["id"]):
            assert time.monotonic() < deadline, "the worker never called Stripe"
            time.sleep(0.05)
    finally:
        worker.kill()  # SIGKILL: no cleanup, the job stays "doing"
        worker.wait(timeout=10)
    stripe.slow_next = 0.0

    async def recover() -> int:
        app = make_app(pay_settings)
        async with app.open_async():
            return await recover_stalled(app, seconds_since_heartbeat=0)

    assert asyncio.run(recover()) >= 1
    work()

    (intent,) = stripe.intents_for(payment["id"])
    seen = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert (seen["provider_payment_id"], seen["status"]) == (intent["id"], "requires_payment")


def test_a_provider_down_past_every_retry_fails_the_payment_and_the_guest_may_pay_again(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    guest: User,
    booking: dict[str, Any],
    work: Any,
) -> None:
    stripe.fail_next = [503] * (2 + RETRIES)
    payment = pay(api, guest, booking).json()

    for _ in range(1 + RETRIES):
        retry_now(owner)
        work()

    failed = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert failed["status"] == "failed" and "could not be reached" in failed["failure_reason"]
    assert stripe.intents_for(payment["id"]) == []
    stripe.fail_next = []
    again = pay(api, guest, booking).json()
    assert again["id"] != payment["id"] and again["provider_payment_id"]


def test_replaying_a_payment_request_after_it_failed_opens_nothing_at_the_provider(
    api: TestClient,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    guest: User,
    booking: dict[str, Any],
    work: Any,
) -> None:
    stripe.fail_next = [503] * (2 + RETRIES)
    payment = pay(api, guest, booking, key="pay-once").json()
    for _ in range(1 + RETRIES):
        retry_now(owner)
        work()
    stripe.fail_next = []

    replay = pay(api, guest, booking, key="pay-once")

    assert replay.status_code == 201
    assert (replay.json()["id"], replay.json()["status"], replay.json()["client_secret"]) == (
        payment["id"],
        "failed",
        None,
    )
    assert stripe.intents_for(payment["id"]) == []
