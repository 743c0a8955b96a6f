"""The worker: runs the jobs that SQL functions defer (procrastinate), one provider call each.

Jobs are written by SQL in the same transaction as their cause (app_private.defer): a
payment to create at its provider, a provider event to apply, an open payment to cancel.
Each task here makes one idempotent provider call (the idempotency key comes from our
payment id) and hands the provider's answer to one SQL function, which decides. A task
that fails is retried with exponential backoff; a crash mid-task leaves the job to be
retried, and the idempotency key makes the repeated call harmless.

    python -m api.worker        (make run starts it beside the API)

It connects as the owner (DATABASE_URL), like the booking job (api/jobs.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import procrastinate
import psycopg
from procrastinate import JobContext, PsycopgConnector, RetryStrategy

from api import payments
from api.payments import ProviderError
from api.settings import Settings

log = logging.getLogger("nexus.worker")

MAX_ATTEMPTS = 8
RETRY = RetryStrategy(
    max_attempts=MAX_ATTEMPTS, exponential_wait=2, retry_exceptions={ProviderError, psycopg.OperationalError}
)
QUEUES = ["payments"]


def make_app(settings: Settings) -> procrastinate.App:
    """The procrastinate app: its connection (schema procrastinate) and the tasks, bound to these settings."""
    connector = PsycopgConnector(conninfo=settings.database_url, kwargs={"options": "-c search_path=procrastinate"})
    app = procrastinate.App(connector=connector)

    def sql(query: str, params: list[Any]) -> Any:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            row = conn.execute(query, params).fetchone()
        return row[0] if row else None

    def last_attempt(context: JobContext) -> bool:
        return context.job is not None and (context.job.attempts or 0) + 1 >= MAX_ATTEMPTS

    @app.task(name="payments.create_at_provider", queue="payments", retry=RETRY, pass_context=True)
    def create_at_provider(context: JobContext, payment_id: str) -> str:
        payment = sql("select app.payment_json(p) from app.payments p where p.id = %s", [payment_id])
        if payment is None or payment["provider_payment_id"] or payment["status"] != "requires_payment":
            return "nothing to do"
        try:
            created = payments.gateway(settings, payment["provider"]).create(payment)
        except ProviderError as exc:
            if last_attempt(context):
                sql(
                    "select app_private.payment_give_up(%s, %s)",
                    [payment_id, f"The payment provider could not be reached: {exc}"],
                )
            raise
        sql("select api.payment_attach(%s, %s, %s)", [payment_id, created.id, created.client_secret])
        return f"created {created.id}"

    @app.task(name="payments.apply_event", queue="payments", retry=RETRY)
    def apply_event(provider: str, event_id: str) -> str:
        event = sql(
            "select to_jsonb(e) from app_private.webhook_events e where e.provider = %s and e.event_id = %s",
            [provider, event_id],
        )
        if event is None or event["processed_at"] is not None:
            return "nothing to do"
        outcome = "ignored: not about a payment"
        if event["type"].startswith("payment_intent.") and event["object_id"]:
            # Never the webhook's payload: the provider's own record of the object, now.
            current = payments.gateway(settings, provider).retrieve(event["object_id"])
            outcome = sql(
                "select app_private.payment_apply(%s, %s, %s, %s, %s, %s)",
                [provider, current.id, current.status, current.amount_minor, current.currency, current.reason],
            )
        sql(
            "update app_private.webhook_events set processed_at = now(), outcome = %s"
            " where provider = %s and event_id = %s returning outcome",
            [outcome, provider, event_id],
        )
        return str(outcome)

    @app.task(name="payments.cancel_at_provider", queue="payments", retry=RETRY)
    def cancel_at_provider(payment_id: str) -> str:
        payment = sql("select to_jsonb(p) from app.payments p where p.id = %s", [payment_id])
        if payment is None or not payment["provider_payment_id"]:
            return "nothing to cancel at the provider"
        current = payments.gateway(settings, payment["provider"]).cancel(payment["provider_payment_id"], payment_id)
        return f"provider says {current.status}"

    return app


async def run_until_idle(app: procrastinate.App) -> None:
    """Run every job that is due now, then return (tests, and `--once`)."""
    async with app.open_async():
        await app.run_worker_async(queues=QUEUES, wait=False, install_signal_handlers=False, listen_notify=False)


def main() -> None:
    import argparse

    from api.settings import settings

    parser = argparse.ArgumentParser(prog="python -m api.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run the jobs that are due, then exit")
    args = parser.parse_args()
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    app = make_app(settings)
    if args.once:
        asyncio.run(run_until_idle(app))
        return

    async def forever() -> None:
        async with app.open_async():
            await app.run_worker_async(queues=QUEUES)

    try:
        asyncio.run(forever())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
