"""The worker: runs the jobs that SQL functions defer (procrastinate), one provider call each.

Jobs are written by SQL in the same transaction as their cause (app_private.defer): a
payment to create, capture or cancel at its provider, a refund to make, a host's Connect
account to create, a payout to send, a provider event to apply.
Each task here makes one idempotent provider call (the idempotency key comes from our
payment id) and hands the provider's answer to one SQL function, which decides. A task
that fails is retried with exponential backoff; a crash mid-task leaves the job to be
retried, and the idempotency key makes the repeated call harmless.

    python -m api.worker          (make run starts it beside the API)
    python -m api.worker --once   (run what is due now, then exit)

Photos: media.make_variants makes a new photo's WebP variants (api/images.py) and records
them; media.delete removes a deleted photo's files; every hour media.sweep removes files no
row uses that are older than a day (an upload whose request failed half-way). The files are
in the media storage (api/storage.py), which every worker and API instance shares with `s3`.

Every 10 minutes payouts.poll asks the provider about payouts it accepted and has said nothing
of for 30 minutes (a PayPal payout is otherwise paid only by webhook).

Every day at 03:30 UTC payments.reconcile compares each configured provider's payments, refunds and
payouts of the last days with ours (api/reconcile.py, sql/functions/43_reconciliation.sql) and
records every difference for admins; it changes none. An admin may run it at any time.

Every hour rates.fetch records the reference exchange rates of EXCHANGE_RATES_URL (the ECB's
daily XML by default, api/rates.py); a feed that fails changes no rate.

Calendars: every minute calendars.schedule defers the fetch of each external iCal feed that is
due (app_private.calendar_schedule: every 15 minutes per feed, and at once when a host adds one);
calendars.import fetches one (api/calendars.py: public addresses only, timeouts, a size limit,
conditional GET) and hands what it read to app_private.calendar_feed_apply, which blocks the
listing's dates. Those jobs run on a loop of their own, CALENDAR_CONCURRENCY at once: a feed
that never answers holds one of them for ICAL_FETCH_TIMEOUT, never a payment or an email.

Every minute it also runs the booking job (`app.run_booking_jobs()`: expire holds, complete
stays, purge idempotency keys) and retries the jobs of workers that died mid-job. Every
ANALYST_CHECK_SECONDS it holds the analyst to its limits (`app_private.enforce_analyst_limits()`),
which the analyst could otherwise lift for itself. Any number
of workers may run: procrastinate hands each job to one of them, and jobs that touch the same
payment (lock `payment:<id>`) run one at a time.

It connects as the owner (DATABASE_URL). With WORKER_METRICS_PORT it also serves, on
METRICS_HOST, the series the database counts (app_private.metrics(): the job queue, dead letters,
webhook events, payouts, replication), queried at each scrape (api/metrics.py).

The tasks are plain functions of this module; `make_app` is the table that gives them to
procrastinate under the names app_private.defer uses (the name's prefix is the queue). A
procrastinate Blueprint would not do: `App.add_tasks_from` prefixes every name with a
namespace ("ns:payments.send") and binds the blueprint's tasks to the first app it is added to.
What the tasks share is `WorkerContext` (the settings, and one connection pool) set by
`make_app` and opened for as long as a worker runs (`opened`). A test opens it and calls one
task as a function, without a worker loop.

The pool is a sync psycopg_pool.ConnectionPool, for every task: sync tasks run in
procrastinate's threads, where an async pool cannot be used, and the one async task
(send_email) runs its few statements in a thread too (`asql`), so one kind of pool and one
connection serve all. Its connections are the owner's in autocommit, as before the pool: each
statement (one SQL function call) is its own transaction, committed when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

import aiosmtplib
import procrastinate
import psycopg
from procrastinate import JobContext, PsycopgConnector, RetryStrategy
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from api import calendars, images, logs, metrics, payments, rates, reconcile, storage, tracing
from api.errors import Problem
from api.payments import ProviderError
from api.settings import Settings

log = logging.getLogger("nexus.worker")

RETRIES = 8  # a job runs at most 1 + RETRIES times, waiting 2, 4, ... 512 s between runs (about 17 minutes in all)
RETRY = RetryStrategy(
    max_attempts=RETRIES, exponential_wait=2, retry_exceptions={ProviderError, psycopg.OperationalError}
)
# Media jobs wait for the storage for most of a day: 4, 8, 16 ... seconds between runs (about 18 hours in all).
MEDIA_RETRY = RetryStrategy(
    max_attempts=14, exponential_wait=2, retry_exceptions={storage.StorageUnavailable, psycopg.OperationalError}
)
ORPHAN_AGE = timedelta(days=1)  # a file no row uses is removed once this old (its upload's request is long over)
# A deferred task's queue is its name's prefix.
QUEUES = ["payments", "payouts", "notifications", "media", "scheduled", "calendars"]
CALENDAR_QUEUES = ["calendars"]  # fetches of other platforms' calendars: a loop of their own (see the docstring)
CALENDAR_CONCURRENCY = 4  # feeds one worker fetches at once (each waits on the network, not on the database)
# Emails: the database decides when one is a dead letter (notification_settings.email_max_attempts);
# waits of 3, 9, 27 ... seconds between attempts (10 attempts span about 8 hours).
EMAIL_RETRY = RetryStrategy(
    max_attempts=50, exponential_wait=3, retry_exceptions={ProviderError, psycopg.OperationalError}
)
STALLED_AFTER = 30.0  # seconds without a heartbeat: the worker running a job is taken for dead
SENT_RECORD_SECONDS = 60.0  # how long an email the relay took waits for the database to record it
RESTART_WAIT = (1.0, 30.0)  # the worker starts again after losing the database: first and longest wait
ANALYST_CHECK_SECONDS = 5.0  # an analyst's statement or idle transaction outlives its limit by at most this
CONCURRENCY = 1  # jobs one worker runs at once (procrastinate's default), hence connections its pool needs
POOL_NAME = "nexus-worker"  # the pool's application_name, as pg_stat_activity shows it


# --- what the tasks share ----------------------------------------------------------------------


@dataclass
class WorkerContext:
    """The settings the tasks run under, and while a worker runs, the pool their SQL uses."""

    settings: Settings
    pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] | None = None
    media: storage.Storage | None = None

    def storage(self) -> storage.Storage:
        """The media storage (MEDIA_STORAGE), made on first use: one boto3 client for every task."""
        if self.media is None:
            self.media = storage.from_settings(self.settings)
        return self.media


_context: WorkerContext | None = None


def bind(settings: Settings) -> WorkerContext:
    """The tasks' context for these settings: the current one if it has them, else a new one (pool closed)."""
    global _context
    if _context is None or _context.settings != settings:
        if _context is not None and _context.pool is not None:
            raise RuntimeError("the worker's pool is open for other settings")
        _context = WorkerContext(settings)
    return _context


def worker_context() -> WorkerContext:
    if _context is None:
        raise RuntimeError("no worker context: call make_app(settings) first")
    return _context


@contextmanager
def opened(settings: Settings) -> Iterator[WorkerContext]:
    """The tasks' context with its pool open until the block ends; inside another such block, that one's pool."""
    context = bind(settings)
    if context.pool is not None:
        yield context
        return
    kwargs: dict[str, Any] = {"autocommit": True, "application_name": POOL_NAME}
    if not settings.db_prepare:  # as the API's pool: a PgBouncer before 1.21 in between cannot route them
        kwargs["prepare_threshold"] = None
    context.pool = ConnectionPool(
        settings.database_url,
        kwargs=kwargs,
        min_size=1,
        max_size=CONCURRENCY + 1,  # the calendar loop's jobs share one: a statement or two each, between fetches
        check=ConnectionPool.check_connection,  # a restarted database costs no job an attempt
        name=POOL_NAME,
        open=False,
    )
    context.pool.open()  # connects in the background, while procrastinate opens its own connections
    try:
        yield context
    finally:
        pool, context.pool = context.pool, None
        pool.close()


# The job's origin (the request that caused it, its trace), set in the statement's transaction: a job
# that this statement defers carries it on (app_private.defer), as the API's requests do (api/db.py).
ORIGIN = "select set_config('nexus.request_id', %s, true), set_config('nexus.traceparent', %s, true)"


def sql(query: str, params: list[Any]) -> Any:
    """Run one statement in its own transaction (autocommit) on a pooled owner connection: its first value.

    In a job that a request caused, the request's id and trace go with it (ORIGIN, pipelined before
    the same Sync: one implicit transaction, one round trip); with tracing on, in a span of its own.
    """
    pool = worker_context().pool
    if pool is None:
        raise RuntimeError("the worker's pool is not open (see opened)")
    if tracing.ON:
        with tracing.sql_span(query) as traceparent:
            return _sql(pool, query, params, logs.REQUEST_ID.get(), traceparent)
    return _sql(pool, query, params, logs.REQUEST_ID.get(), tracing.TRACEPARENT.get())


def _sql(
    pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]],
    query: str,
    params: list[Any],
    request_id: str,
    traceparent: str,
) -> Any:
    with pool.connection() as conn:
        if not (request_id or traceparent):
            row = conn.execute(query, params).fetchone()
        else:
            cur = conn.cursor()
            with conn.pipeline():
                cur.execute(ORIGIN, [request_id, traceparent])
                cur.execute(query, params)
            row = cur.fetchone()
    return row[0] if row else None


async def asql(query: str, params: list[Any]) -> Any:
    """`sql` for async tasks: in a thread, so the event loop runs on while the statement does."""
    return await asyncio.to_thread(sql, query, params)


def gateway(provider: str) -> payments.Gateway:
    return payments.gateway(worker_context().settings, provider)


def last_attempt(context: JobContext) -> bool:
    """This run is the job's last: if it fails, procrastinate does not retry it (attempts counts earlier runs)."""
    return context.job is not None and (context.job.attempts or 0) >= RETRIES


# --- payments ----------------------------------------------------------------------------------


def create_at_provider(context: JobContext, payment_id: str) -> str:
    payment = sql("select app.payment_json(p) from app.payments p where p.id = %s", [payment_id])
    if payment is None or payment["provider_payment_id"] or payment["status"] != "requires_payment":
        return "nothing to do"
    try:
        created = gateway(payment["provider"]).create(payment)
    except ProviderError as exc:
        if last_attempt(context):
            sql(
                "select app_private.payment_give_up(%s, %s)",
                [payment_id, f"The payment provider could not be reached: {exc}"],
            )
        raise
    sql(
        "select api.payment_attach(%s, %s, %s, %s)",
        [payment_id, created.id, created.client_secret, created.approve_url],
    )
    return f"created {created.id}"


def capture_at_provider(payment_id: str) -> str:
    payment = sql("select to_jsonb(p) from app.payments p where p.id = %s", [payment_id])
    if payment is None or payment["status"] not in ("requires_payment", "processing"):
        return "nothing to do"
    try:
        current = gateway(payment["provider"]).capture(payment["provider_payment_id"], payment_id)
    except Problem as exc:  # the guest has not approved the order (yet): nothing to retry
        return f"not captured: {exc.detail}"
    return str(apply_payment(payment["provider"], current))


def apply_payment(provider: str, current: payments.ProviderPayment) -> Any:
    return sql(
        "select app_private.payment_apply(%s, %s, %s, %s, %s, %s)",
        [provider, current.id, current.status, current.amount_minor, current.currency, current.reason],
    )


def apply_refund(provider: str, refund_id: str | None, current: payments.ProviderRefund) -> Any:
    return sql(
        "select app_private.refund_apply(%s, %s, %s, %s, %s, %s, %s)",
        [provider, refund_id, current.id, current.status, current.amount_minor, current.currency, current.reason],
    )


def apply_payout(provider: str, payout_id: str | None, current: payments.ProviderPayout) -> Any:
    return sql(
        "select app_private.payout_apply(%s, %s, %s, %s, %s, %s, %s)",
        [provider, payout_id, current.id, current.status, current.amount_minor, current.currency, current.reason],
    )


def apply_dispute(provider: str, current: payments.ProviderDispute) -> Any:
    return sql(
        "select app_private.dispute_apply(%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            provider,
            current.id,
            current.payment_id,
            current.status,
            current.amount_minor,
            current.currency,
            current.reason,
            current.provider_status,
        ],
    )


def our_id(value: str | None) -> str | None:
    """A refund id a provider echoes back (metadata, custom_id), when it is one of ours: a UUID."""
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def apply_event(provider: str, event_id: str) -> str:
    event = sql(
        "select to_jsonb(e) from app_private.webhook_events e where e.provider = %s and e.event_id = %s",
        [provider, event_id],
    )
    if event is None or event["processed_at"] is not None:
        return "nothing to do"
    at = gateway(provider)
    kind, object_id = event["kind"], event["object_id"]
    # Never the webhook's payload: the provider's own record of the object, now.
    if kind == "payment":
        outcome = apply_payment(provider, at.retrieve(object_id))
    elif kind == "refunds":
        outcomes = [apply_refund(provider, our_id(ours), r) for ours, r in at.refunds_of(object_id)]
        outcome = "; ".join(map(str, outcomes)) or "no refunds"
    elif kind == "refund":
        outcome = apply_refund(provider, None, at.retrieve_refund(object_id))
    elif kind == "payout":
        outcome = apply_payout(provider, None, at.retrieve_payout(object_id))
    elif kind == "dispute":
        outcome = apply_dispute(provider, at.retrieve_dispute(object_id))
    elif kind == "account":
        account = at.retrieve_account(object_id)
        outcome = sql("select app_private.payout_account_apply(%s, %s, %s)", [provider, account.id, account.status])
    else:
        outcome = "ignored: nothing Nexus acts on"
    sql(
        "update app_private.webhook_events set processed_at = now(), outcome = %s"
        " where provider = %s and event_id = %s returning outcome",
        [outcome, provider, event_id],
    )
    return str(outcome)


def cancel_at_provider(payment_id: str) -> str:
    payment = sql("select to_jsonb(p) from app.payments p where p.id = %s", [payment_id])
    if payment is None or not payment["provider_payment_id"]:
        return "nothing to cancel at the provider"
    current = gateway(payment["provider"]).cancel(payment["provider_payment_id"], payment_id)
    if current.status == "succeeded":
        # Paid at the provider after all: payment_apply refunds it (the booking is canceled).
        return str(apply_payment(payment["provider"], current))
    return f"provider says {current.status}"


def refund_at_provider(context: JobContext, refund_id: str) -> str:
    refund = sql(
        "select app.refund_json(r) || jsonb_build_object('provider_payment_id', p.provider_payment_id)"
        " from app.refunds r join app.payments p on p.id = r.payment_id where r.id = %s",
        [refund_id],
    )
    if refund is None or refund["status"] != "pending":
        return "nothing to do"
    at = gateway(refund["provider"])
    try:
        if refund["provider_refund_id"]:
            current = at.retrieve_refund(refund["provider_refund_id"])
        else:
            # Ask the provider what exists before refunding: an earlier attempt's answer may have
            # been lost (or its idempotency key expired), and a refund we gave up on may have
            # succeeded after all. Every refund it lists is recorded; ours, if there, is the answer.
            listed = at.refunds_of(refund["provider_payment_id"])
            for ours, found in listed:
                if ours != refund_id:
                    apply_refund(refund["provider"], our_id(ours), found)
            mine = next((found for ours, found in listed if ours == refund_id), None)
            if mine is not None:
                return str(apply_refund(refund["provider"], refund_id, mine))
            if sql("select app_private.refund_overdrawn(%s)", [refund_id]):
                return str(
                    sql(
                        "select app_private.refund_give_up(%s, %s)",
                        [
                            refund_id,
                            "Not refunded: the provider had already refunded this money"
                            " (a refund given up on had succeeded after all).",
                        ],
                    )
                )
            current = at.refund(refund, refund["provider_payment_id"])
    except ProviderError as exc:
        if last_attempt(context):
            sql("select app_private.refund_give_up(%s, %s)", [refund_id, f"The refund could not be made: {exc}"])
        raise
    return str(apply_refund(refund["provider"], refund_id, current))


# --- payouts -----------------------------------------------------------------------------------


def create_account(host_id: str) -> str:
    account_row = sql("select to_jsonb(a) from app.payout_accounts a where a.host_id = %s", [host_id])
    if account_row is None or account_row["provider"] != "stripe" or account_row["provider_account_id"]:
        return "nothing to do"
    # The same parameters as the API's own call (api/specials.py payout_account): one idempotency key, one account.
    account = gateway("stripe").account({"id": host_id})
    return str(sql("select api.payout_account_attach(%s, %s, %s)", [host_id, account.id, account.status]))


def send_payout(context: JobContext, payout_id: str) -> str:
    payout = sql(
        "select app.payout_json(o) || jsonb_build_object('destination', o.destination)"
        " from app.payouts o where o.id = %s",
        [payout_id],
    )
    if payout is None or payout["status"] not in ("scheduled", "processing"):
        return "nothing to do"
    if payout["held"]:  # a dispute opened after it was scheduled: app_private.payout_release sends it later
        return "held: a dispute of the booking is open"
    at = gateway(payout["provider"])
    # One provider object per attempt (app.payouts.attempt): retries of the job and an admin's
    # retry after an unanswered call reuse the key, so the provider returns what it did.
    try:
        if payout["provider_payout_id"]:
            current = at.retrieve_payout(payout["provider_payout_id"])
        else:
            attempt_key = f"{payout_id}.{payout['attempt']}"
            current = at.payout({**payout, "attempt_key": attempt_key}, payout["destination"])
    except ProviderError as exc:
        if last_attempt(context):
            sql("select app_private.payout_give_up(%s, %s)", [payout_id, f"The payout could not be sent: {exc}"])
        raise
    return str(apply_payout(payout["provider"], payout_id, current))


def poll_payouts(timestamp: int) -> str:
    """Every 10 minutes: ask the provider about payouts it accepted and has said nothing of since (no webhook)."""
    return f"asked about {sql('select app_private.payouts_poll()', [])} payouts"


# --- notifications -----------------------------------------------------------------------------


async def send_email(notification_id: str) -> str:
    """Hand one notification's email to the relay (or keep it in the local outbox without SMTP_HOST).

    The row says whether it is still to send, so a retried or duplicated job sends nothing
    twice once the relay accepted it; the Message-ID is the same on every attempt.
    """
    settings = worker_context().settings
    mail = await asql("select app_private.email_render(%s, %s)", [notification_id, settings.frontend_url])
    if mail is None or mail["state"] != "pending":
        return "nothing to do"
    if not settings.smtp_host:
        log.info("email of notification %s kept in the local outbox (no SMTP_HOST)", notification_id)
        return str(await asql("select app_private.email_sent(%s, %s)", [notification_id, Jsonb(mail)]))
    try:
        message = email_message(settings, mail)
    except (ValueError, TypeError) as exc:  # a header Python refuses to write: retrying cannot help
        return str(await asql("select app_private.email_failed(%s, %s, true)", [notification_id, f"unsendable: {exc}"]))
    try:
        with tracing.span(
            "smtp send", "client", {"server.address": settings.smtp_host, "server.port": settings.smtp_port}
        ):
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_user or None,
                password=settings.smtp_password or None,
                start_tls=settings.smtp_starttls,
                timeout=30,
            )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        state = await asql("select app_private.email_failed(%s, %s)", [notification_id, str(exc)])
        # The error's type only: its text may quote the recipient's address (it is kept with the row).
        log.warning(
            "email of notification %s not taken by the relay (%s): %s", notification_id, state, type(exc).__name__
        )
        if state == "pending":
            raise ProviderError(f"smtp: {exc}") from exc  # retried with backoff
        return f"{state}: {exc}"
    # The request that caused it is in the line's request_id (api/logs.py), with its trace.
    log.info("email of notification %s handed to the relay", notification_id)
    return str(await record_sent(notification_id))


async def record_sent(notification_id: str, within: float = SENT_RECORD_SECONDS) -> Any:
    """Record that the relay took the email, trying again while the database is away (a restart, a
    failover): a retried job would send the email a second time. Gives up after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    wait = 0.25
    while True:
        try:
            return await asql("select app_private.email_sent(%s)", [notification_id])
        except (psycopg.OperationalError, PoolTimeout):
            if asyncio.get_running_loop().time() + wait > deadline:
                raise
            log.warning("email of notification %s sent but not yet recorded: the database is away", notification_id)
            await asyncio.sleep(wait)
            wait = min(wait * 2, 5.0)


def email_message(settings: Settings, mail: dict[str, Any]) -> EmailMessage:
    """The MIME message of a rendered notification (app_private.email_render): text with an HTML alternative."""
    message = EmailMessage()
    message["From"] = formataddr((mail["from_name"], settings.email_from))
    message["To"] = mail["to"]
    message["Subject"] = " ".join(str(mail["subject"]).split())  # one line, whatever a listing's name holds
    message["Message-ID"] = mail["message_id"]
    message["Date"] = formatdate(usegmt=True)
    message.set_content(mail["text"])
    message.add_alternative(mail["html"], subtype="html")
    return message


# --- photos ------------------------------------------------------------------------------------


def make_variants(path: str) -> str:
    """Make the WebP variants of the photo stored under `path` and record them on its row."""
    if not storage.ORIGINAL.match(path):  # a row written by hand (psql, bench data), not by an upload
        return "nothing to do: not an uploaded file's path"
    photo = sql("select app_private.media_photo(%s)", [path])
    if photo is None:
        return "nothing to do: no photo uses this path"
    if photo["variants"]:
        return "nothing to do: made already"
    media = worker_context().storage()
    try:
        original = media.get(path)
    except storage.NotFound:
        log.warning("media: the original of %s is missing from the storage", path)
        return "the original is missing"
    width, height, made = images.variants(original)
    recorded = []
    for variant in made:
        key = storage.variant_path(path, variant.width)
        media.put(key, variant.data)
        recorded.append({"path": key, "width": variant.width, "height": variant.height})
    outcome = sql("select app_private.media_variants_set(%s, %s, %s, %s)", [path, width, height, Jsonb(recorded)])
    if outcome == "gone":  # deleted while we worked: its deletion job may have run already
        media.delete_photo(path)
    return f"{outcome}: {len(recorded)} variants"


def delete_media(path: str) -> str:
    """Remove every file of a deleted photo (original and variants), unless a row uses the path again."""
    if not storage.ORIGINAL.match(path):
        return "nothing to do: not an uploaded file's path"
    if sql("select app_private.media_photo(%s)", [path]) is not None:
        return "kept: a photo uses this path"
    return f"removed {worker_context().storage().delete_photo(path)} files"


def sweep_media(timestamp: int, older_than: timedelta = ORPHAN_AGE) -> str:
    """Remove the files of photos no row uses, written more than `older_than` ago. Returns how many."""
    media = worker_context().storage()
    cutoff = datetime.fromtimestamp(timestamp, UTC) - older_than
    stale: dict[str, list[str]] = {}  # a photo's prefix -> its old files
    for stored in media.objects():
        if stored.modified < cutoff:
            stale.setdefault(storage.photo_prefix(stored.key), []).append(stored.key)
    removed = 0
    prefixes = list(stale)
    for start in range(0, len(prefixes), 1000):
        batch = prefixes[start : start + 1000]
        # The original's path may be any of the three extensions (its variants may outlive it).
        candidates = [f"{prefix}.{ext}" for prefix in batch for ext in images.CONTENT_TYPES]
        used = {storage.photo_prefix(p) for p in sql("select app_private.media_in_use(%s)", [candidates])}
        for prefix in batch:
            if prefix not in used:
                removed += media.delete_photo(stale[prefix][0])
    return f"removed {removed} orphaned files"


# --- exchange rates ----------------------------------------------------------------------------


def fetch_rates(timestamp: int) -> str:
    """Every hour: record the feed's reference rates (EXCHANGE_RATES_URL); a feed that gives nothing
    usable changes no rate, and the error is recorded for the admin System page and the metrics."""
    url = worker_context().settings.exchange_rates_url
    if not url:
        return "off: EXCHANGE_RATES_URL is empty"
    try:
        feed = rates.parse(rates.fetch(url, rates.RATES_MAX_BYTES, rates.RATES_TIMEOUT))
    except rates.FeedError as exc:
        log.warning("exchange rates: %s (%s)", exc, url)
        return str(sql("select app_private.exchange_rates_failed(%s, %s)", [url, str(exc)]))
    return str(
        sql(
            "select app_private.exchange_rates_record(%s, %s, %s, %s)",
            [url, feed.base, feed.day, Jsonb(feed.rates)],
        )
    )


# --- reconciliation ----------------------------------------------------------------------------


def reconcile_payments(
    timestamp: int | None = None,
    since: str | None = None,
    provider: str | None = None,
    requested_by: str | None = None,
) -> str:
    """Daily (or when an admin asks: api.reconciliation_run): compare each configured provider's
    objects of the window with ours (api/reconcile.py lists, app_private.reconciliation_record
    compares and records). A provider that cannot be listed fails its run, with why, and changes
    nothing; it is not retried (the next day's run, or an admin's, asks again)."""
    settings = worker_context().settings
    outcomes = []
    for name in [provider] if provider else reconcile.configured(settings):
        run = sql("select app_private.reconciliation_start(%s, %s, %s)", [name, since, requested_by])
        try:
            found = reconcile.records(settings, name, run)
        except (ProviderError, Problem) as exc:
            error = exc.detail if isinstance(exc, Problem) else str(exc)
            log.warning("reconciliation with %s failed: %s", name, error)
            outcomes.append(sql("select app_private.reconciliation_failed(%s, %s)", [run["run_id"], error]))
            continue
        outcomes.append(sql("select app_private.reconciliation_record(%s, %s)", [run["run_id"], Jsonb(found)]))
    return "; ".join(map(str, outcomes)) or "off: no payment provider is configured"


# --- calendars ---------------------------------------------------------------------------------


async def import_calendar(feed_id: str) -> str:
    """Fetch one external calendar and record what it gave (app_private.calendar_feed_apply decides)."""
    plan = await asql("select app_private.calendar_feed_plan(%s)", [feed_id])
    if plan is None:
        return "nothing to do: the feed is gone"
    limits = calendars.Limits.from_settings(worker_context().settings, https_only=plan["https_only"])
    outcome = await calendars.read_feed(plan["url"], plan["etag"], plan["last_modified"], limits, plan["digest"])
    return str(await asql("select app_private.calendar_feed_apply(%s, %s)", [feed_id, Jsonb(outcome)]))


def schedule_calendars(timestamp: int) -> str:
    """Every minute: defer the fetch of each feed that is due."""
    return f"deferred {sql('select app_private.calendar_schedule()', [])} calendar fetches"


# --- every minute ------------------------------------------------------------------------------


def run_booking_jobs(timestamp: int) -> str:
    """Every minute: expire holds, complete stays (which opens payouts), purge idempotency keys."""
    return str(sql("select app.run_booking_jobs()::text", []))


async def retry_stalled(context: JobContext, timestamp: int) -> str:
    return f"retried {await recover_stalled(context.app)} stalled jobs"


async def recover_stalled(app: procrastinate.App, seconds_since_heartbeat: float = STALLED_AFTER) -> int:
    """Retry the jobs of workers that died mid-job (no heartbeat for that long). Returns how many.

    The retried task makes its provider call again with the same idempotency key, so the
    provider answers with what the dead worker had already done, never a second object.
    """
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat)
    for job in stalled:
        await app.job_manager.retry_job(job)
    return len(list(stalled))


# --- the app and the loop ----------------------------------------------------------------------


def make_app(settings: Settings) -> procrastinate.App:
    """The procrastinate app: its connection (schema procrastinate) and the tasks, which run under these settings.

    The task names are the ones app_private.defer writes into the queues (sql/functions/): renaming
    one strands the jobs already deferred under the old name.
    """
    bind(settings)
    connector = PsycopgConnector(conninfo=settings.database_url, kwargs={"options": "-c search_path=procrastinate"})
    app = procrastinate.App(connector=connector)

    register: Callable[..., Any] = app.task

    def task(name: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
        # Each task runs in the context of the request that deferred it: tracing.job takes the
        # `_origin` app_private.defer added out of its arguments (its request id, its trace).
        return lambda fn: register(name=name, **options)(tracing.job(name, fn))

    task(name="payments.create_at_provider", queue="payments", retry=RETRY, pass_context=True)(create_at_provider)
    task(name="payments.capture_at_provider", queue="payments", retry=RETRY)(capture_at_provider)
    task(name="payments.apply_event", queue="payments", retry=RETRY)(apply_event)
    task(name="payments.cancel_at_provider", queue="payments", retry=RETRY)(cancel_at_provider)
    task(name="payments.refund_at_provider", queue="payments", retry=RETRY, pass_context=True)(refund_at_provider)
    task(name="payouts.create_account", queue="payouts", retry=RETRY)(create_account)
    task(name="payouts.send", queue="payouts", retry=RETRY, pass_context=True)(send_payout)
    task(name="notifications.send_email", queue="notifications", retry=EMAIL_RETRY)(send_email)
    task(name="media.make_variants", queue="media", retry=MEDIA_RETRY)(make_variants)
    task(name="media.delete", queue="media", retry=MEDIA_RETRY)(delete_media)
    app.periodic(cron="*/10 * * * *", periodic_id="payouts-poll")(
        task(name="payouts.poll", queue="scheduled", queueing_lock="payouts.poll")(poll_payouts)
    )
    app.periodic(cron="11 * * * *", periodic_id="rates")(
        task(name="rates.fetch", queue="scheduled", queueing_lock="rates.fetch")(fetch_rates)
    )
    app.periodic(cron="30 3 * * *", periodic_id="reconcile")(
        task(name="payments.reconcile", queue="payments", queueing_lock="payments.reconcile", lock="reconciliation")(
            reconcile_payments
        )
    )
    app.periodic(cron="23 * * * *", periodic_id="media-sweep")(
        task(name="media.sweep", queue="scheduled", queueing_lock="media.sweep", retry=MEDIA_RETRY)(sweep_media)
    )
    app.periodic(cron="* * * * *", periodic_id="bookings")(
        task(name="bookings.run_jobs", queue="scheduled", queueing_lock="bookings.run_jobs")(run_booking_jobs)
    )
    task(name="calendars.import", queue="calendars", retry=RETRY)(import_calendar)
    app.periodic(cron="* * * * *", periodic_id="calendars")(
        task(name="calendars.schedule", queue="scheduled", queueing_lock="calendars.schedule")(schedule_calendars)
    )
    app.periodic(cron="* * * * *", periodic_id="stalled")(
        task(name="jobs.retry_stalled", queue="scheduled", queueing_lock="jobs.retry_stalled", pass_context=True)(
            retry_stalled
        )
    )
    return app


async def watch_analyst(conninfo: str, every: float = ANALYST_CHECK_SECONDS) -> None:
    """Hold the analyst to app_private.analyst_settings, every `every` seconds, until cancelled.

    A plain loop rather than a periodic job: it must run more often than cron's minute, and it
    writes nothing worth a job row. Every worker runs it; running it twice at once is harmless.
    It keeps a connection of its own, outside the tasks' pool, for as long as it runs.
    """
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                while True:
                    cur = await conn.execute("select app_private.enforce_analyst_limits()")
                    row = await cur.fetchone()
                    done = row[0] if row else {}
                    if done and any(done.values()):
                        log.warning("analyst limits enforced: %s", done)
                    await asyncio.sleep(every)
        except psycopg.Error as exc:
            log.warning("analyst limits: %s; trying again in %gs", exc, every)
            await asyncio.sleep(every)


async def run_until_idle(app: procrastinate.App, queues: list[str] | None = None) -> None:
    """Run every job that is due now (of these queues; default all), then return (tests, and `--once`)."""
    with opened(worker_context().settings):
        async with app.open_async():
            await app.run_worker_async(
                queues=queues or QUEUES,
                concurrency=CONCURRENCY,
                wait=False,
                install_signal_handlers=False,
                listen_notify=False,
            )


def main() -> None:
    import argparse

    from api.settings import settings

    parser = argparse.ArgumentParser(prog="python -m api.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run the jobs that are due, then exit")
    args = parser.parse_args()
    logs.setup(settings.log_level)  # one JSON line per event (api/logs.py)
    tracing.setup(settings, "nexus-worker")  # only with OTEL_EXPORTER_OTLP_ENDPOINT
    if settings.log_level.lower() != "debug":
        # procrastinate tells of every job start and end at INFO (four lines a minute for the
        # periodic jobs alone); failed jobs are still logged, at ERROR.
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    # httpx tells of every request at INFO, URL included: a calendar feed's URL carries another
    # platform's secret (its ?s=...), which stays out of the logs; the feed's row says what failed.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    app = make_app(settings)
    if args.once:
        asyncio.run(run_until_idle(app))
        return

    if metrics.serve_worker(settings):  # WORKER_METRICS_PORT: what the database counts (api/metrics.py)
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.worker_metrics_port)

    async def forever() -> None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        watcher = asyncio.create_task(watch_analyst(settings.database_url), name="analyst-limits")
        wait = RESTART_WAIT[0]
        try:
            while not stop.is_set():
                started = asyncio.get_running_loop().time()
                try:
                    await run_workers(app, settings, stop)
                except (psycopg.OperationalError, PoolTimeout, procrastinate.exceptions.ConnectorException) as exc:
                    log.warning("the worker lost the database: %s", type(exc).__name__)
                if stop.is_set():
                    break
                # procrastinate stops a worker whose listener lost the database (a restart, a
                # failover): start again, sooner if it had been running a while.
                if asyncio.get_running_loop().time() - started > 60:
                    wait = RESTART_WAIT[0]
                log.warning("the worker stopped by itself: starting again in %.0f s", wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                wait = min(wait * 2, RESTART_WAIT[1])
        finally:
            watcher.cancel()

    asyncio.run(forever())


async def run_workers(app: procrastinate.App, settings: Settings, stop: asyncio.Event) -> None:
    """Run the job workers until `stop` is set (SIGTERM, SIGINT: running jobs finish) or one of them
    stops by itself; then stop the other one too."""
    with opened(settings):
        async with app.open_async():
            await recover_stalled(app)
            others = [q for q in QUEUES if q not in CALENDAR_QUEUES]
            workers = [
                asyncio.create_task(
                    app.run_worker_async(queues=others, concurrency=CONCURRENCY, install_signal_handlers=False),
                    name="worker",
                ),
                # Calendar fetches wait on other people's servers: on a loop of their own.
                asyncio.create_task(
                    app.run_worker_async(
                        queues=CALENDAR_QUEUES,
                        concurrency=CALENDAR_CONCURRENCY,
                        name="calendars",
                        install_signal_handlers=False,
                    ),
                    name="calendar-worker",
                ),
            ]
            stopping = asyncio.create_task(stop.wait(), name="stop")
            try:
                await asyncio.wait([*workers, stopping], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
                for worker in workers:  # cancelling a procrastinate worker stops it gracefully
                    worker.cancel()
                for worker in workers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker


if __name__ == "__main__":
    # `python -m` runs this file as __main__: run it as api.worker instead, so that the tasks, their
    # context and the App are those of the one module everything else imports.
    import api.worker

    api.worker.main()
