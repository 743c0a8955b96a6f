"""The payment providers' side, and nothing else: create, read and cancel their objects, verify their webhooks.

Every rule (who pays what, in which currency, what a provider's answer means for the booking)
lives in sql/functions/40_payments.sql. This module is the provider boundary: it turns an
exact decimal amount into the provider's minor units (and back, for the comparison SQL does),
calls the official SDK with an idempotency key derived from our payment id (so the API's call
and the worker's retries create one object, never two), and maps the provider's statuses onto
ours. No card data passes through here: the guest's browser gives it to the provider.

A provider without its secret key is not configured: asking for it is a 503 problem.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeGuard, cast

import orjson
import stripe

from api import tracing
from api.errors import Problem
from api.settings import Settings

WEBHOOK_TOLERANCE = 300  # seconds: a signature older than this (replays) or dated further ahead is refused
SIGNATURE_HEADER = "Stripe-Signature"  # Stripe's signature of a webhook's body: t=<unix time>,v1=<HMAC hex>
BAD_SIGNATURE = "The webhook signature is missing, wrong, or not dated within 5 minutes of now."
NOT_AN_EVENT = "The webhook body is not a Stripe event."

# Stripe PaymentIntent statuses -> app.payment_status. A declined attempt leaves the intent
# in requires_payment_method: the guest may try another card, so it stays requires_payment.
STRIPE_STATUS = {
    "requires_payment_method": "requires_payment",
    "requires_confirmation": "requires_payment",
    "requires_action": "requires_payment",
    "processing": "processing",
    "requires_capture": "processing",
    "succeeded": "succeeded",
    "canceled": "canceled",
}


class ProviderError(Exception):
    """The provider could not be reached or refused: the worker retries, the API answers without it."""


@dataclass(frozen=True)
class ProviderPayment:
    """A provider's own record of a payment (Stripe PaymentIntent, PayPal order)."""

    id: str
    status: str  # one of app.payment_status: requires_payment, processing, succeeded, failed, canceled
    amount_minor: int
    currency: str  # upper case ISO 4217
    client_secret: str | None = None  # Stripe: what the guest's browser confirms with
    approve_url: str | None = None  # PayPal: where the guest approves the order
    reason: str | None = None


@dataclass(frozen=True)
class ProviderRefund:
    """A provider's own record of a refund (Stripe re_..., PayPal refund id)."""

    id: str
    status: str  # pending, succeeded, failed
    amount_minor: int
    currency: str
    reason: str | None = None


@dataclass(frozen=True)
class ProviderPayout:
    """A provider's own record of money sent to a host (Stripe Transfer tr_..., PayPal payout batch)."""

    id: str
    status: str  # processing, paid, failed
    amount_minor: int
    currency: str
    reason: str | None = None


@dataclass(frozen=True)
class ProviderDispute:
    """A provider's own record of a dispute (Stripe dp_..., PayPal PP-D-...) of one of our payments."""

    id: str
    payment_id: str  # the provider's id of the payment disputed (Stripe PaymentIntent, PayPal order)
    status: str  # open, won, lost
    amount_minor: int
    currency: str
    reason: str | None = None
    provider_status: str | None = None  # the provider's own word, for admins


@dataclass(frozen=True)
class ProviderAccount:
    """A host's account at a provider (Stripe Connect acct_...): can it receive payouts yet?"""

    id: str
    status: str  # pending (onboarding not finished), active
    onboarding_url: str | None = None


@dataclass(frozen=True)
class Event:
    """A verified webhook event: what kind of object it is about, and that object's provider id."""

    id: str
    type: str
    kind: str | None  # payment, refunds, refund, payout, account, dispute; None for events Nexus does not act on
    object_id: str | None


def to_minor(amount: str) -> int:
    """A payment's amount in its currency's minor units: "123.45" (USD) -> 12345, "5000" (JPY) -> 5000.

    SQL writes every amount with exactly its currency's minor units as its scale
    (app.payment_json), so the digits after the point are the minor units.
    """
    if not isinstance(amount, str):  # a float would lose the scale, and with it the minor units
        raise TypeError(f"amounts cross the provider boundary as decimal strings, not {type(amount).__name__}")
    value = Decimal(amount)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int) and exponent <= 0, amount
    return int(value.scaleb(-exponent))


def idempotency_key(payment_id: str, action: str) -> str:
    return f"nexus-{action}-{payment_id}"


def stripe_error(exc: stripe.StripeError) -> ProviderError:
    return ProviderError(f"stripe: {exc.__class__.__name__}: {exc.user_message or exc}")


# Stripe Refund statuses -> app.refund_status.
STRIPE_REFUND_STATUS = {"pending": "pending", "requires_action": "pending", "succeeded": "succeeded"}

# Stripe Dispute statuses -> app.dispute_status: decided ones; every other (warning_needs_response,
# needs_response, under_review, ...) is open. An inquiry closed without a chargeback (warning_closed)
# leaves the money with us: won.
STRIPE_DISPUTE_STATUS = {"won": "won", "warning_closed": "won", "lost": "lost"}

# Stripe event types -> what Nexus re-reads from Stripe (Event.kind) and which id in the object.
STRIPE_KINDS = (
    ("charge.dispute.", "dispute", "id"),
    ("payment_intent.", "payment", "id"),
    ("charge.refunded", "refunds", "payment_intent"),
    ("charge.refund.", "refund", "id"),
    ("refund.", "refund", "id"),
    ("transfer.", "payout", "id"),
    ("account.updated", "account", "id"),
)


class StripeGateway:
    """Stripe through its official SDK: PaymentIntents, Refunds, Connect accounts, Transfers, webhooks."""

    name = "stripe"

    def __init__(self, settings: Settings) -> None:
        if not settings.stripe_secret_key:
            raise Problem(503, "Stripe payments are not configured on this server.")
        self.webhook_secret = settings.stripe_webhook_secret
        self.frontend_url = settings.frontend_url.rstrip("/")
        self.client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses={"api": settings.stripe_api_base, "connect": settings.stripe_api_base},
            max_network_retries=0,  # retries are the worker's, with backoff
            # The SDK's default of 80 s would outlast REQUEST_TIMEOUT; PayPal and OAuth wait 10 s too.
            http_client=stripe.new_default_http_client(timeout=10),
        )

    # --- payments ---------------------------------------------------------------------------

    def _payment(self, obj: stripe.PaymentIntent) -> ProviderPayment:
        intent: dict[str, Any] = obj.to_dict()
        error = intent.get("last_payment_error") or {}
        return ProviderPayment(
            id=intent["id"],
            status=STRIPE_STATUS.get(intent["status"], "requires_payment"),
            amount_minor=int(intent["amount"]),
            currency=str(intent["currency"]).upper(),
            client_secret=intent.get("client_secret"),
            reason=error.get("message"),
        )

    def create(self, payment: dict[str, Any]) -> ProviderPayment:
        """A PaymentIntent for the payment; the same payment always gets the same intent."""
        try:
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": to_minor(payment["amount"]),
                    "currency": payment["currency"].lower(),
                    "automatic_payment_methods": {"enabled": True},
                    "transfer_group": payment["booking_id"],
                    "metadata": {"payment_id": payment["id"], "booking_id": payment["booking_id"]},
                },
                options={"idempotency_key": idempotency_key(payment["id"], "create")},
            )
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
        return self._payment(intent)

    def retrieve(self, provider_payment_id: str) -> ProviderPayment:
        try:
            return self._payment(self.client.v1.payment_intents.retrieve(provider_payment_id))
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc

    def capture(self, provider_payment_id: str, payment_id: str) -> ProviderPayment:
        """Stripe payments complete in the guest's browser (automatic capture): nothing to capture."""
        return self.retrieve(provider_payment_id)

    def cancel(self, provider_payment_id: str, payment_id: str) -> ProviderPayment:
        try:
            intent = self.client.v1.payment_intents.cancel(
                provider_payment_id, options={"idempotency_key": idempotency_key(payment_id, "cancel")}
            )
        except stripe.InvalidRequestError:
            # Already canceled or succeeded: the provider's record says what it is.
            return self.retrieve(provider_payment_id)
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
        return self._payment(intent)

    # --- refunds ----------------------------------------------------------------------------

    def _refund(self, obj: stripe.Refund) -> ProviderRefund:
        refund: dict[str, Any] = obj.to_dict()
        return ProviderRefund(
            id=refund["id"],
            status=STRIPE_REFUND_STATUS.get(refund["status"], "failed"),
            amount_minor=int(refund["amount"]),
            currency=str(refund["currency"]).upper(),
            reason=refund.get("failure_reason"),
        )

    def refund(self, refund: dict[str, Any], provider_payment_id: str) -> ProviderRefund:
        """Refund part of a PaymentIntent; the same refund id never refunds twice."""
        try:
            obj = self.client.v1.refunds.create(
                params={
                    "payment_intent": provider_payment_id,
                    "amount": to_minor(refund["amount"]),
                    "metadata": {"refund_id": refund["id"], "payment_id": refund["payment_id"]},
                },
                options={"idempotency_key": idempotency_key(refund["id"], "refund")},
            )
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
        return self._refund(obj)

    def retrieve_refund(self, provider_refund_id: str) -> ProviderRefund:
        try:
            return self._refund(self.client.v1.refunds.retrieve(provider_refund_id))
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc

    def refunds_of(self, provider_payment_id: str) -> list[tuple[str | None, ProviderRefund]]:
        """Every refund of a PaymentIntent, each with our refund id from its metadata (charge.refunded)."""
        try:
            page = self.client.v1.refunds.list(params={"payment_intent": provider_payment_id, "limit": 100})
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
        return [((r.to_dict().get("metadata") or {}).get("refund_id"), self._refund(r)) for r in page.data]

    # --- host accounts and payouts ----------------------------------------------------------

    def account(self, host: dict[str, Any]) -> ProviderAccount:
        """The host's Connect (Express) account (created once: host["provider_account_id"] when known), and a fresh onboarding link."""
        try:
            if host.get("provider_account_id"):
                acct = self.client.v1.accounts.retrieve(host["provider_account_id"])
            else:
                # Only what both callers (the API and the worker) know, so both send the same
                # parameters under the one idempotency key; Stripe's onboarding asks the rest.
                acct = self.client.v1.accounts.create(
                    params={
                        "type": "express",
                        "capabilities": {"transfers": {"requested": True}},
                        "metadata": {"host_id": host["id"]},
                    },
                    options={"idempotency_key": idempotency_key(host["id"], "account")},
                )
            link = self.client.v1.account_links.create(
                params={
                    "account": acct.id,
                    "type": "account_onboarding",
                    "refresh_url": f"{self.frontend_url}/host/payouts?onboarding=refresh",
                    "return_url": f"{self.frontend_url}/host/payouts?onboarding=done",
                }
            )
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
        return ProviderAccount(
            id=acct.id, status="active" if acct.to_dict().get("payouts_enabled") else "pending", onboarding_url=link.url
        )

    def retrieve_account(self, provider_account_id: str) -> ProviderAccount:
        try:
            acct = self.client.v1.accounts.retrieve(provider_account_id)
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
        return ProviderAccount(id=acct.id, status="active" if acct.to_dict().get("payouts_enabled") else "pending")

    def _payout(self, obj: stripe.Transfer) -> ProviderPayout:
        transfer: dict[str, Any] = obj.to_dict()
        return ProviderPayout(
            id=transfer["id"],
            # A transfer moves money between Stripe balances at once; a reversed one did not pay.
            status="failed" if transfer.get("reversed") else "paid",
            amount_minor=int(transfer["amount"]),
            currency=str(transfer["currency"]).upper(),
            reason="The transfer was reversed." if transfer.get("reversed") else None,
        )

    def payout(self, payout: dict[str, Any], destination: str) -> ProviderPayout:
        """A Transfer to the host's connected account; the same payout attempt never transfers twice."""
        try:
            obj = self.client.v1.transfers.create(
                params={
                    "amount": to_minor(payout["amount"]),
                    "currency": payout["currency"].lower(),
                    "destination": destination,
                    "transfer_group": payout["booking_id"],
                    "metadata": {"payout_id": payout["id"], "booking_id": payout["booking_id"]},
                },
                options={"idempotency_key": idempotency_key(payout["attempt_key"], "payout")},
            )
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
        return self._payout(obj)

    def retrieve_payout(self, provider_payout_id: str) -> ProviderPayout:
        try:
            return self._payout(self.client.v1.transfers.retrieve(provider_payout_id))
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc

    # --- disputes ---------------------------------------------------------------------------

    def retrieve_dispute(self, provider_dispute_id: str) -> ProviderDispute:
        try:
            dispute: dict[str, Any] = self.client.v1.disputes.retrieve(provider_dispute_id).to_dict()
        except stripe.StripeError as exc:
            raise stripe_error(exc) from exc
        intent = dispute.get("payment_intent")
        return ProviderDispute(
            id=dispute["id"],
            payment_id=str(intent.get("id") if isinstance(intent, dict) else intent or ""),
            status=STRIPE_DISPUTE_STATUS.get(str(dispute.get("status")), "open"),
            amount_minor=int(dispute["amount"]),
            currency=str(dispute["currency"]).upper(),
            reason=dispute.get("reason"),
            provider_status=dispute.get("status"),
        )

    # --- webhooks ---------------------------------------------------------------------------

    def event(self, payload: bytes, headers: Mapping[str, str]) -> Event:
        """The verified event of a webhook request; 400 for a missing, wrong or badly dated signature,
        and for a signed body that is not a Stripe event.

        The SDK checks the signature (WebhookSignature.verify_header) and refuses one older than the
        tolerance, but not one dated later than now; and its construct_event takes whatever JSON was
        signed for an event (an array raised AttributeError there). So the date's other side and the
        body's shape are checked here, and nothing is parsed before the signature verifies.
        """
        if not self.webhook_secret:
            raise Problem(503, "Stripe webhooks are not configured on this server.")
        header = headers.get(SIGNATURE_HEADER.lower()) or ""
        try:
            text = payload.decode("utf-8")  # what Stripe signs: the body as text
        except UnicodeDecodeError as exc:
            raise Problem(400, "The webhook body is not UTF-8.") from exc
        try:
            stripe.WebhookSignature.verify_header(text, header, self.webhook_secret, tolerance=WEBHOOK_TOLERANCE)
        except stripe.SignatureVerificationError as exc:
            raise Problem(400, BAD_SIGNATURE) from exc
        at = signed_at(header)
        if at is None or at > time.time() + WEBHOOK_TOLERANCE:
            raise Problem(400, BAD_SIGNATURE)
        try:
            # orjson, not json: deep nesting is a JSONDecodeError here, a RecursionError there.
            body = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise Problem(400, "The webhook body is not JSON.") from exc
        return stripe_event(body)


def signed_at(header: str) -> int | None:
    """When a Stripe-Signature header says it was signed: its first `t=`, read as the SDK reads it.

    None when it cannot be read (the SDK read it to verify the signature, so only if a later SDK
    reads it otherwise): refused like a signature out of date.
    """
    for item in header.split(","):
        key, *value = item.split("=", 2)
        if key == "t":
            try:
                return int(value[0])
            except (IndexError, ValueError):
                return None
    return None


def is_id(value: object) -> TypeGuard[str]:
    """A provider id or event type as app_private.webhook_events keeps it: text of 1 to 255 characters."""
    return isinstance(value, str) and 0 < len(value) <= 255


def stripe_event(body: Any) -> Event:
    """What a verified (snapshot) event is about: its id, its type and the id of the object Nexus re-reads.

    400 for any other signed JSON: not an object, no "object": "event" (a thin v2 event), an id or
    a type that is not 1 to 255 characters, no data.object, or an object id that is not an id.
    """
    data = body.get("data") if isinstance(body, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or body.get("object") != "event":
        raise Problem(400, NOT_AN_EVENT)
    event_id, event_type = body.get("id"), body.get("type")
    if not (is_id(event_id) and is_id(event_type)):
        raise Problem(400, NOT_AN_EVENT)
    for prefix, kind, key in STRIPE_KINDS:
        if event_type.startswith(prefix) and obj.get(key):
            if not is_id(obj[key]):
                raise Problem(400, NOT_AN_EVENT)
            return Event(id=event_id, type=event_type, kind=kind, object_id=obj[key])
    return Event(id=event_id, type=event_type, kind=None, object_id=None)


class Gateway(Protocol):
    """What the API and the worker ask of a provider (StripeGateway, api.paypal.PayPalGateway)."""

    name: str

    def create(self, payment: dict[str, Any]) -> ProviderPayment: ...
    def retrieve(self, provider_payment_id: str) -> ProviderPayment: ...
    def capture(self, provider_payment_id: str, payment_id: str) -> ProviderPayment: ...
    def cancel(self, provider_payment_id: str, payment_id: str) -> ProviderPayment: ...
    def refund(self, refund: dict[str, Any], provider_payment_id: str) -> ProviderRefund: ...
    def retrieve_refund(self, provider_refund_id: str) -> ProviderRefund: ...
    def refunds_of(self, provider_payment_id: str) -> list[tuple[str | None, ProviderRefund]]: ...
    def account(self, host: dict[str, Any]) -> ProviderAccount: ...
    def retrieve_account(self, provider_account_id: str) -> ProviderAccount: ...
    def payout(self, payout: dict[str, Any], destination: str) -> ProviderPayout: ...
    def retrieve_payout(self, provider_payout_id: str) -> ProviderPayout: ...
    def retrieve_dispute(self, provider_dispute_id: str) -> ProviderDispute: ...
    def event(self, payload: bytes, headers: Mapping[str, str]) -> Event: ...


def gateway(settings: Settings, provider: str) -> Gateway:
    """The gateway of a configured provider (each call a span while tracing is on); 503 for one that is not configured."""
    chosen: Gateway
    if provider == "stripe":
        chosen = StripeGateway(settings)
    elif provider == "paypal":
        from api.paypal import PayPalGateway

        chosen = PayPalGateway(settings)
    else:
        raise Problem(503, f"{provider} payments are not offered.")
    return cast(Gateway, tracing.gateway(chosen)) if tracing.ON else chosen
