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

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe

from api.errors import Problem
from api.settings import Settings

WEBHOOK_TOLERANCE = 300  # seconds: a signature older than this is refused (replays)

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
    id: str
    status: str  # one of app.payment_status
    amount_minor: int
    currency: str  # upper case ISO 4217
    client_secret: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    object_id: str | None


def to_minor(amount: str) -> int:
    """A payment's amount in its currency's minor units: "123.45" (USD) -> 12345, "5000" (JPY) -> 5000.

    SQL writes every amount with exactly its currency's minor units as its scale
    (app.payment_json), so the digits after the point are the minor units.
    """
    value = Decimal(amount)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int) and exponent <= 0, amount
    return int(value.scaleb(-exponent))


def idempotency_key(payment_id: str, action: str) -> str:
    return f"nexus-{action}-{payment_id}"


class StripeGateway:
    name = "stripe"

    def __init__(self, settings: Settings) -> None:
        if not settings.stripe_secret_key:
            raise Problem(503, "Stripe payments are not configured on this server.")
        self.webhook_secret = settings.stripe_webhook_secret
        self.client = stripe.StripeClient(
            settings.stripe_secret_key,
            base_addresses={"api": settings.stripe_api_base},
            max_network_retries=0,  # retries are the worker's, with backoff
        )

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
                    "metadata": {"payment_id": payment["id"], "booking_id": payment["booking_id"]},
                },
                options={"idempotency_key": idempotency_key(payment["id"], "create")},
            )
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe: {exc.__class__.__name__}: {exc.user_message or exc}") from exc
        return self._payment(intent)

    def retrieve(self, provider_payment_id: str) -> ProviderPayment:
        try:
            return self._payment(self.client.v1.payment_intents.retrieve(provider_payment_id))
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe: {exc.__class__.__name__}: {exc.user_message or exc}") from exc

    def cancel(self, provider_payment_id: str, payment_id: str) -> ProviderPayment:
        try:
            intent = self.client.v1.payment_intents.cancel(
                provider_payment_id, options={"idempotency_key": idempotency_key(payment_id, "cancel")}
            )
        except stripe.InvalidRequestError:
            # Already canceled or succeeded: the provider's record says what it is.
            return self.retrieve(provider_payment_id)
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe: {exc.__class__.__name__}: {exc.user_message or exc}") from exc
        return self._payment(intent)

    def event(self, payload: bytes, signature: str | None) -> Event:
        """The verified event of a webhook request; 400 for a missing, wrong or stale signature."""
        if not self.webhook_secret:
            raise Problem(503, "Stripe webhooks are not configured on this server.")
        try:
            event = stripe.Webhook.construct_event(
                payload, signature or "", self.webhook_secret, tolerance=WEBHOOK_TOLERANCE
            )
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise Problem(400, "The webhook signature is missing, wrong or too old.") from exc
        body: dict[str, Any] = event.to_dict()
        obj = (body.get("data") or {}).get("object") or {}
        return Event(id=str(body["id"]), type=str(body["type"]), object_id=obj.get("id"))


def gateway(settings: Settings, provider: str) -> StripeGateway:
    """The gateway of a configured provider; 503 for one that is not configured."""
    if provider == "stripe":
        return StripeGateway(settings)
    raise Problem(503, f"{provider} payments are not configured on this server.")
