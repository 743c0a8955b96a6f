"""The reconciliation's provider side: what each provider lists of a window, in our words.

The worker's payments.reconcile (api/worker.py) asks SQL for a run and its window
(app_private.reconciliation_start), lists the provider's objects of that window here, and
hands them to app_private.reconciliation_record, which compares them with our rows and records
every difference (sql/functions/43_reconciliation.sql). Nothing here decides or changes anything:
each object becomes one record, {kind, id, ours, status, provider_status, amount_minor,
currency, created}, with the status mapped onto ours by the same tables as the gateways use
and the provider's own word beside it.

- Stripe: PaymentIntents, Refunds and Transfers created in the window (the SDK's list calls,
  every page: auto_paging_iter). Our ids come back from the metadata we set on each.
- PayPal: the transaction search (GET /v1/reporting/transactions, at most 31 days a request)
  lists captures (event code T0006) and refunds (T1107), with the custom_id we set (our
  payment or refund id); PayPal has no list of payout batches, so each batch SQL names (our
  payouts of the window) is read by its id, and one PayPal does not know is left out (SQL
  then finds it missing).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe

from api.errors import Problem
from api.payments import STRIPE_REFUND_STATUS, STRIPE_STATUS, ProviderError, StripeGateway, stripe_error, to_minor
from api.settings import Settings

PAGE_SIZE = 100  # Stripe's largest page
PAYPAL_PAGE_SIZE = 500  # the transaction search's largest page
PAYPAL_MAX_PAGES = 200  # 100,000 transactions in a window: past that, the answer is not trusted to be whole
# Transaction search: event codes we made (T0006 a checkout capture, T1107 a merchant's refund) and statuses.
PAYPAL_PAYMENT_CODES = {"T0006"}
PAYPAL_REFUND_CODES = {"T1107"}
# S completed, P pending, D denied, V reversed (refunded in full), F partially refunded: a capture
# refunded was still paid (refunds are records of their own), as api/paypal.py's CAPTURE_STATUS says.
PAYPAL_CAPTURE_STATUS = {"S": "succeeded", "F": "succeeded", "V": "succeeded", "P": "processing", "D": "failed"}
PAYPAL_REFUND_STATUS = {"S": "succeeded", "P": "pending", "D": "failed", "V": "failed"}


def record(
    kind: str, id: str, ours: Any, status: str, provider_status: Any, amount_minor: int, currency: str, created: str
) -> dict[str, Any]:
    return {
        "kind": kind,
        "id": id,
        "ours": ours if isinstance(ours, str) else None,
        "status": status,
        "provider_status": str(provider_status) if provider_status is not None else None,
        "amount_minor": amount_minor,
        "currency": currency.upper(),
        "created": created,
    }


def epoch(value: Any) -> str:
    return datetime.fromtimestamp(int(value), UTC).isoformat()


def records(settings: Settings, provider: str, run: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object the provider lists for the run's window (and, for PayPal, the run's payout batches).

    ProviderError when the provider cannot be listed (unreachable, refusing, an answer not
    understood); Problem(503) when it is not configured.
    """
    since, until = datetime.fromisoformat(run["since"]), datetime.fromisoformat(run["until"])
    try:
        if provider == "stripe":
            return stripe_records(StripeGateway(settings), since, until)
        if provider == "paypal":
            from api.paypal import PayPalGateway

            return paypal_records(PayPalGateway(settings), since, until, list(run["payout_ids"]))
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:  # an answer not shaped as documented
        raise ProviderError(f"{provider}: an answer that could not be read: {type(exc).__name__}: {exc}") from exc
    raise Problem(503, f"{provider} payments are not offered.")


# --- Stripe ------------------------------------------------------------------------------------


def stripe_records(gateway: StripeGateway, since: datetime, until: datetime) -> list[dict[str, Any]]:
    created = {"gte": int(since.timestamp()), "lte": int(until.timestamp()) + 1}
    params: Any = {"created": created, "limit": PAGE_SIZE}
    v1 = gateway.client.v1
    found: list[dict[str, Any]] = []
    try:
        for obj in v1.payment_intents.list(params=params).auto_paging_iter():
            intent: dict[str, Any] = obj.to_dict()
            found.append(
                record(
                    "payment",
                    intent["id"],
                    (intent.get("metadata") or {}).get("payment_id"),
                    STRIPE_STATUS.get(intent["status"], "requires_payment"),
                    intent["status"],
                    int(intent["amount"]),
                    str(intent["currency"]),
                    epoch(intent["created"]),
                )
            )
        for listed in v1.refunds.list(params=params).auto_paging_iter():
            refund: dict[str, Any] = listed.to_dict()
            found.append(
                record(
                    "refund",
                    refund["id"],
                    (refund.get("metadata") or {}).get("refund_id"),
                    STRIPE_REFUND_STATUS.get(refund["status"], "failed"),
                    refund["status"],
                    int(refund["amount"]),
                    str(refund["currency"]),
                    epoch(refund["created"]),
                )
            )
        for sent in v1.transfers.list(params=params).auto_paging_iter():
            transfer: dict[str, Any] = sent.to_dict()
            found.append(
                record(
                    "payout",
                    transfer["id"],
                    (transfer.get("metadata") or {}).get("payout_id"),
                    "failed" if transfer.get("reversed") else "paid",  # as StripeGateway._payout reads it
                    "reversed" if transfer.get("reversed") else "transferred",
                    int(transfer["amount"]),
                    str(transfer["currency"]),
                    epoch(transfer["created"]),
                )
            )
    except stripe.StripeError as exc:
        raise stripe_error(exc) from exc
    return found


# --- PayPal ------------------------------------------------------------------------------------


def paypal_time(value: datetime) -> str:
    """The transaction search's date-time: 2024-05-01T03:30:00+0000."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def paypal_when(value: Any) -> str:
    """A PayPal date-time (2024-05-01T03:30:00+0000, or ...Z) as ISO 8601."""
    text = str(value)
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z").isoformat()


def paypal_records(gateway: Any, since: datetime, until: datetime, batch_ids: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page, pages = 1, 1
    while page <= pages:
        status, body = gateway._call(
            "GET",
            "/v1/reporting/transactions",
            params={
                "start_date": paypal_time(since),
                "end_date": paypal_time(until),
                "fields": "transaction_info",
                "page_size": PAYPAL_PAGE_SIZE,
                "page": page,
            },
        )
        body = gateway._ok(status, body, "transaction search")
        pages = int(body.get("total_pages") or 1)
        if pages > PAYPAL_MAX_PAGES:
            raise ProviderError(f"paypal: transaction search: {pages} pages, more than {PAYPAL_MAX_PAGES}")
        for detail in body.get("transaction_details") or []:
            info: dict[str, Any] = detail.get("transaction_info") or {}
            code, state = info.get("transaction_event_code"), info.get("transaction_status")
            amount = info.get("transaction_amount") or {}
            if code in PAYPAL_PAYMENT_CODES:
                kind, ours_status = "payment", PAYPAL_CAPTURE_STATUS.get(str(state), "processing")
            elif code in PAYPAL_REFUND_CODES:
                kind, ours_status = "refund", PAYPAL_REFUND_STATUS.get(str(state), "pending")
            else:
                continue  # fees, transfers, holds: not ours to compare
            found.append(
                record(
                    kind,
                    str(info["transaction_id"]),
                    info.get("custom_field"),
                    ours_status,
                    f"{code} {state}",
                    to_minor(str(abs(Decimal(str(amount["value"]))))),
                    str(amount["currency_code"]),
                    paypal_when(info.get("transaction_initiation_date")),
                )
            )
        page += 1
    for batch_id in batch_ids:
        status, body = gateway._call("GET", f"/v1/payments/payouts/{batch_id}")
        if status == 404:
            continue  # PayPal does not know it: missing at the provider, as SQL will say
        body = gateway._ok(status, body, "payout batch")
        payout = gateway._payout(body)
        header = body.get("batch_header") or {}
        items = body.get("items") or []
        item = items[0] if items else {}
        found.append(
            record(
                "payout",
                payout.id,
                (item.get("payout_item") or {}).get("sender_item_id"),
                payout.status,
                item.get("transaction_status") or header.get("batch_status"),
                payout.amount_minor,
                payout.currency,
                paypal_when(header.get("time_created")),
            )
        )
    return found


def configured(settings: Settings) -> list[str]:
    """The providers this server is configured for (a secret key, PayPal's client credentials)."""
    return [
        name
        for name, on in (
            ("stripe", bool(settings.stripe_secret_key)),
            ("paypal", bool(settings.paypal_client_id and settings.paypal_client_secret)),
        )
        if on
    ]
