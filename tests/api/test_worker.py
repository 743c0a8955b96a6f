"""The worker's shape (api/worker.py): tasks named as SQL defers them, run one by one, on one pool.

The tasks are module functions: a test opens the worker's context (`opened`) and calls one,
with the real database and the stand-ins, and no procrastinate loop. The loop itself, run
until idle, uses the same pool for every job instead of a connection per statement.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from procrastinate import JobContext
from procrastinate.jobs import Job
from starlette.testclient import TestClient

from api.payments import ProviderError
from api.settings import Settings
from api.worker import (
    POOL_NAME,
    QUEUES,
    RETRIES,
    create_at_provider,
    make_app,
    opened,
    run_until_idle,
    send_email,
)
from tests.fix_payments import pay
from tests.fix_users import User
from tests.smtp_sink import SmtpSink
from tests.stripe_standin import StripeStandIn

ROOT = Path(__file__).resolve().parents[2]


def deferred_task_names() -> set[str]:
    """Every task name a SQL function defers (app_private.defer('<name>', ...))."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "sql" / "functions").glob("*.sql")))
    return set(re.findall(r"app_private\.defer\(\s*'([a-z_.]+)'", text))


def worker_backends(owner: psycopg.Connection[Any]) -> set[int]:
    """The backends of the worker's task pool, by pid."""
    rows = owner.execute("select pid from pg_stat_activity where application_name = %s", (POOL_NAME,)).fetchall()
    return {pid for (pid,) in rows}


def test_every_task_sql_defers_runs_under_that_name_in_the_queue_of_its_prefix(settings: Settings) -> None:
    names = deferred_task_names()
    tasks = make_app(settings).tasks

    assert len(names) >= 8
    for name in names:
        assert name in tasks, name
        assert tasks[name].queue == name.split(".")[0] and tasks[name].queue in QUEUES, name
    assert {tasks["bookings.run_jobs"].queue, tasks["jobs.retry_stalled"].queue} == {"scheduled"}


def test_a_task_runs_by_itself_and_twice_sends_one_mail(
    api: TestClient,
    owner: psycopg.Connection[Any],
    pay_settings: Settings,
    smtp: SmtpSink,
    host: User,
    booking: dict[str, Any],
) -> None:
    (notification_id,) = owner.execute(  # type: ignore[misc]
        "select id::text from app.notifications where user_id = %s and email_state = 'pending'", (host.id,)
    ).fetchone()

    with opened(pay_settings):
        first = asyncio.run(send_email(notification_id))
        second = asyncio.run(send_email(notification_id))

    assert (first, second) == ("sent", "nothing to do")
    (mail,) = smtp.to(host.email)
    assert str(mail["Subject"]).startswith("New booking request")


def test_a_task_on_its_last_attempt_gives_up_by_itself(
    api: TestClient,
    pay_settings: Settings,
    stripe: StripeStandIn,
    guest: User,
    booking: dict[str, Any],
) -> None:
    stripe.fail_next = [500]  # the API's own attempt fails: the job is to create the intent
    payment = pay(api, guest, booking).json()
    app = make_app(pay_settings)
    job = Job(
        id=None,
        queue="payments",
        lock=f"payment:{payment['id']}",
        queueing_lock=None,
        task_name="payments.create_at_provider",
        task_kwargs={"payment_id": payment["id"]},
        attempts=RETRIES,
    )
    last = JobContext(app=app, job=job, start_timestamp=time.time(), abort_reason=lambda: None)
    stripe.fail_next = [503]

    with opened(pay_settings), pytest.raises(ProviderError):
        create_at_provider(last, payment["id"])

    failed = api.get(f"/api/payments/{payment['id']}/", headers=guest.auth).json()
    assert failed["status"] == "failed" and "could not be reached" in failed["failure_reason"]
    assert stripe.intents_for(payment["id"]) == []


def test_the_worker_runs_every_job_on_its_one_pooled_connection(
    owner: psycopg.Connection[Any], pay_settings: Settings
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(12)]  # no such payments: one statement each, "nothing to do"
    deadline = time.monotonic() + 5
    while worker_backends(owner):  # an earlier test's worker may still be closing its connection
        assert time.monotonic() < deadline, "an earlier worker's connection outlived it"
        time.sleep(0.05)

    with opened(pay_settings) as context:
        assert context.pool is not None
        context.pool.wait()
        before = worker_backends(owner)
        for payment_id in ids:
            owner.execute(
                "select app_private.defer('payments.capture_at_provider', jsonb_build_object('payment_id', %s::text))",
                (payment_id,),
            )
        asyncio.run(run_until_idle(make_app(pay_settings)))
        after = worker_backends(owner)
        stats = context.pool.get_stats()

    done = owner.execute(
        "select status::text, count(*) from procrastinate.procrastinate_jobs"
        " where task_name = 'payments.capture_at_provider' and args->>'payment_id' = any(%s) group by 1",
        (ids,),
    ).fetchall()
    assert done == [("succeeded", len(ids))]
    assert len(before) == 1 and after == before  # the same backend before and after twelve jobs
    assert stats["connections_num"] == 1 and stats["requests_num"] >= len(ids)  # twelve jobs, one connection
    deadline = time.monotonic() + 5
    while worker_backends(owner):  # closed with the worker
        assert time.monotonic() < deadline, "the pool's connection outlived the worker"
        time.sleep(0.05)


def test_python_m_api_worker_once_runs_what_is_due_and_exits(owner: psycopg.Connection[Any], owner_url: str) -> None:
    payment_id = str(uuid.uuid4())
    owner.execute(
        "select app_private.defer('payments.capture_at_provider', jsonb_build_object('payment_id', %s::text))",
        (payment_id,),
    )
    env = {**os.environ, "DATABASE_URL": owner_url, "LOG_LEVEL": "warning"}

    subprocess.run([sys.executable, "-m", "api.worker", "--once"], cwd=ROOT, env=env, check=True, timeout=60)

    (status,) = owner.execute(  # type: ignore[misc]
        "select status::text from procrastinate.procrastinate_jobs where args->>'payment_id' = %s", (payment_id,)
    ).fetchone()
    assert status == "succeeded"
