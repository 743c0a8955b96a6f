"""PayPal's side of payments: orders (guest pays), refunds, payouts (host is paid), webhooks.

The same boundary as api/payments.py's StripeGateway and the same answers (ProviderPayment,
ProviderRefund, ProviderPayout, ProviderAccount, Event): every rule lives in SQL; this module
only calls PayPal's REST API and maps its statuses onto ours.

Why plain HTTP (httpx2) and not PayPal's SDK (paypal-server-sdk): the SDK has no Payouts and no
webhook verification, and it pins its base URLs, so PAYPAL_API_BASE could not point at the
test suite's loopback stand-in. The part of the API used here is small:

- OAuth2 client credentials (POST /v1/oauth2/token). The token is cached per process (base
  URL and credentials) until shortly before it expires, not per gateway: `payments.gateway()` builds
  a gateway per call, and a token per call would double the requests. A 401 with a cached
  token (revoked early) fetches a new one and tries once more.
- Every POST carries `PayPal-Request-Id` = idempotency_key(our id, action): PayPal answers a
  repeated request id with the first answer, so the API's call and the worker's retries make
  one order, one capture, one refund, one payout. `Prefer: return=representation` asks for the
  whole object (the default answer has no amounts).
- Unreachable, timed out, 5xx or 429 raise ProviderError (the worker retries). A 4xx meaning
  "already done" answers with PayPal's record of what was done; a refusal the guest or the
  admin must act on is a Problem (not retried); any other 4xx is a ProviderError with
  PayPal's message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx2
import orjson

from api import tracing
from api.errors import Problem
from api.payments import (
    Event,
    ProviderAccount,
    ProviderDispute,
    ProviderError,
    ProviderPayment,
    ProviderPayout,
    ProviderRefund,
    idempotency_key,
    is_id,
    to_minor,
)
from api.settings import Settings

TIMEOUT = httpx2.Timeout(10.0)
TOKEN_MARGIN = 60.0  # seconds: a token this close to expiry is renewed first

# Order statuses -> app.payment_status. A COMPLETED order is as paid as its capture (below).
ORDER_STATUS = {
    "CREATED": "requires_payment",
    "SAVED": "requires_payment",
    "APPROVED": "requires_payment",
    "PAYER_ACTION_REQUIRED": "requires_payment",
    "VOIDED": "canceled",
}
# The first capture of a COMPLETED order. A refunded capture was still paid: refunds are their own records.
CAPTURE_STATUS = {
    "COMPLETED": "succeeded",
    "PARTIALLY_REFUNDED": "succeeded",
    "REFUNDED": "succeeded",
    "PENDING": "processing",
    "DECLINED": "failed",
    "FAILED": "failed",
}
# A RESOLVED dispute's outcome -> app.dispute_status. PayPal paying the buyer from its own
# funds (RESOLVED_WITH_PAYOUT) or the buyer backing down leaves the money with us: won.
DISPUTE_OUTCOME = {
    "RESOLVED_BUYER_FAVOUR": "lost",
    "ACCEPTED": "lost",
    "RESOLVED_SELLER_FAVOUR": "won",
    "RESOLVED_WITH_PAYOUT": "won",
    "CANCELED_BY_BUYER": "won",
    "DENIED": "won",
}
REFUND_STATUS = {"COMPLETED": "succeeded", "PENDING": "pending", "FAILED": "failed", "CANCELLED": "failed"}
# A batch's status says the batch was processed, not that its item reached the host: a SUCCESS
# batch may hold an UNCLAIMED (no PayPal account at that email yet) or RETURNED item. Nexus
# sends one item per batch and follows that item; the batch status stands in until items exist.
PAYOUT_STATUS = {
    "SUCCESS": "paid",
    "NEW": "processing",
    "PENDING": "processing",
    "PROCESSING": "processing",
    "DENIED": "failed",
    "CANCELED": "failed",
    "FAILED": "failed",
}
PAYOUT_ITEM_STATUS = {
    "SUCCESS": "paid",
    "NEW": "processing",
    "PENDING": "processing",
    "ONHOLD": "processing",
    "UNCLAIMED": "processing",  # waiting for the receiver to claim it (PayPal returns it after 30 days)
    "FAILED": "failed",
    "RETURNED": "failed",
    "BLOCKED": "failed",
    "REFUNDED": "failed",
    "REVERSED": "failed",
    "DENIED": "failed",
}
WEBHOOK_HEADERS = {  # verify-webhook-signature field -> the webhook request's header
    "auth_algo": "paypal-auth-algo",
    "cert_url": "paypal-cert-url",
    "transmission_id": "paypal-transmission-id",
    "transmission_sig": "paypal-transmission-sig",
    "transmission_time": "paypal-transmission-time",
}
BAD_SIGNATURE = "The webhook signature is missing or wrong."
NOT_AN_EVENT = "The webhook body is not a PayPal event."

_http = httpx2.Client(timeout=TIMEOUT)  # one pool per process: thread-safe, keeps connections to PayPal alive
_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}  # (base, id, secret) -> (token, monotonic expiry)
_tokens_lock = threading.Lock()


def _issues(body: dict[str, Any]) -> list[str]:
    return [str(d.get("issue")) for d in body.get("details") or [] if isinstance(d, dict)]


def _body(response: httpx2.Response) -> dict[str, Any]:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


class PayPalGateway:
    name = "paypal"

    def __init__(self, settings: Settings) -> None:
        if not settings.paypal_client_id or not settings.paypal_client_secret:
            raise Problem(503, "PayPal payments are not configured on this server.")
        self.base = settings.paypal_api_base.rstrip("/")
        self.client_id = settings.paypal_client_id
        self.client_secret = settings.paypal_client_secret
        self.webhook_id = settings.paypal_webhook_id

    # --- HTTP ------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        try:
            with tracing.span(
                f"paypal {method}", "client", {"http.request.method": method, "url.full": self.base + path}
            ) as s:
                response = _http.request(method, self.base + path, **kwargs)
                if s is not None:
                    s.set_attribute("http.response.status_code", response.status_code)
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise ProviderError(f"paypal: {method} {path}: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            body = _body(response)
            raise ProviderError(
                f"paypal: {method} {path}: HTTP {response.status_code} {body.get('name', '')}: {body.get('message', '')}"
            )
        return response

    def _token(self, renew: bool = False) -> str:
        key = (self.base, self.client_id, self.client_secret)
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not renew and cached[1] > time.monotonic():
                return cached[0]
        response = self._send(
            "POST",
            "/v1/oauth2/token",
            auth=(self.client_id, self.client_secret),
            data={"grant_type": "client_credentials"},
            headers={"Accept": "application/json"},
        )
        body = _body(response)
        token = body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str):
            raise ProviderError(
                f"paypal: token: HTTP {response.status_code}: {body.get('error_description') or body.get('error')}"
            )
        expires_in = float(body.get("expires_in") or 0)
        with _tokens_lock:
            _tokens[key] = (token, time.monotonic() + expires_in - TOKEN_MARGIN)
        return token

    def _call(
        self, method: str, path: str, *, request_id: str | None = None, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        """One API request with the cached token (renewed once on a 401); 5xx, 429 and no answer raise."""
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if method == "POST":
            headers["Prefer"] = "return=representation"
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        for renew in (False, True):
            headers["Authorization"] = f"Bearer {self._token(renew)}"
            response = self._send(method, path, headers=headers, **kwargs)
            if response.status_code != 401:
                break
        return response.status_code, _body(response)

    @staticmethod
    def _ok(status: int, body: dict[str, Any], what: str) -> dict[str, Any]:
        """The body of a 2xx answer; any other is a ProviderError with PayPal's own words."""
        if 200 <= status < 300:
            return body
        issues = ", ".join(_issues(body))
        raise ProviderError(f"paypal: {what}: HTTP {status} {body.get('name', '')}: {issues or body.get('message')}")

    # --- payments (orders) -----------------------------------------------------------------

    def _payment(self, order: dict[str, Any], read_back: bool = True) -> ProviderPayment:
        unit: dict[str, Any] = (order.get("purchase_units") or [{}])[0]
        captures = (unit.get("payments") or {}).get("captures") or []
        capture: dict[str, Any] = captures[0] if captures else {}
        reason = (capture.get("status_details") or {}).get("reason")
        if order["status"] == "COMPLETED":
            status = CAPTURE_STATUS.get(capture.get("status", ""), "processing")
        else:
            status = ORDER_STATUS.get(order["status"], "requires_payment")
        # A capture's answer has the capture's amount but not always the unit's.
        amount: dict[str, Any] = unit.get("amount") or capture.get("amount") or {}
        if not amount:
            if not read_back:
                raise ProviderError(f"paypal: order {order['id']} has no amount")
            return self._payment(self._order(str(order["id"])), read_back=False)
        links = {link.get("rel"): link.get("href") for link in order.get("links") or []}
        return ProviderPayment(
            id=str(order["id"]),
            status=status,
            amount_minor=to_minor(str(amount["value"])),
            currency=str(amount["currency_code"]).upper(),
            approve_url=links.get("approve") or links.get("payer-action"),
            reason=reason,
        )

    def create(self, payment: dict[str, Any]) -> ProviderPayment:
        """An order for the payment; the same payment always gets the same order."""
        status, body = self._call(
            "POST",
            "/v2/checkout/orders",
            request_id=idempotency_key(payment["id"], "create"),
            json={
                "intent": "CAPTURE",
                "purchase_units": [
                    {
                        "reference_id": payment["booking_id"],
                        "custom_id": payment["id"],
                        "amount": {"currency_code": payment["currency"], "value": payment["amount"]},
                    }
                ],
            },
        )
        return self._payment(self._ok(status, body, "create order"))

    def retrieve(self, provider_payment_id: str) -> ProviderPayment:
        return self._payment(self._order(provider_payment_id), read_back=False)

    def _order(self, order_id: str) -> dict[str, Any]:
        status, body = self._call("GET", f"/v2/checkout/orders/{order_id}")
        return self._ok(status, body, "order")

    def capture(self, provider_payment_id: str, payment_id: str) -> ProviderPayment:
        """Take the money the guest approved; capturing twice answers with the first capture."""
        status, body = self._call(
            "POST",
            f"/v2/checkout/orders/{provider_payment_id}/capture",
            request_id=idempotency_key(payment_id, "capture"),
        )
        issues = _issues(body)
        if status == 422 and any("ALREADY_CAPTURED" in issue for issue in issues):
            return self.retrieve(provider_payment_id)
        if status == 422 and "ORDER_NOT_APPROVED" in issues:
            raise Problem(409, "The guest has not approved this PayPal order yet.")
        if status == 422 and "INSTRUMENT_DECLINED" in issues:
            # PayPal's advice: send the guest back to approve with another funding source; retrying cannot help.
            raise Problem(409, "PayPal declined the guest's payment method; the guest must approve the order again.")
        return self._payment(self._ok(status, body, "capture order"))

    def cancel(self, provider_payment_id: str, payment_id: str) -> ProviderPayment:
        """PayPal's record of the order, unchanged.

        A merchant cannot void a CAPTURE-intent order through v2: one the guest never approved
        (or approved but we never captured) simply expires at PayPal, and no money moved.
        """
        return self.retrieve(provider_payment_id)

    # --- refunds ---------------------------------------------------------------------------

    @staticmethod
    def _refund(body: dict[str, Any], sent: dict[str, Any] | None = None) -> ProviderRefund:
        amount = body.get("amount") or {}
        value = amount.get("value") or (sent or {}).get("amount")
        currency = amount.get("currency_code") or (sent or {}).get("currency")
        return ProviderRefund(
            id=str(body["id"]),
            status=REFUND_STATUS.get(str(body.get("status")), "pending"),
            amount_minor=to_minor(str(value)),
            currency=str(currency).upper(),
            reason=(body.get("status_details") or {}).get("reason"),
        )

    def refund(self, refund: dict[str, Any], provider_payment_id: str) -> ProviderRefund:
        """Refund part or all of the order's capture; the same refund id makes one refund.

        Our refund id goes along as PayPal's custom_id, so `refunds_of` can pair them again.

        PayPal refusing a refund for more than what remains of the capture is a Problem(409),
        not a ProviderError: retrying cannot succeed, and it means our books and PayPal's
        disagree (a refund made in PayPal's dashboard), which a person must look at.
        """
        unit = (self._order(provider_payment_id).get("purchase_units") or [{}])[0]
        captures = (unit.get("payments") or {}).get("captures") or []
        if not captures:
            raise Problem(409, "This PayPal order has not been captured: there is nothing to refund.")
        status, body = self._call(
            "POST",
            f"/v2/payments/captures/{captures[0]['id']}/refund",
            request_id=idempotency_key(refund["id"], "refund"),
            json={
                "amount": {"value": refund["amount"], "currency_code": refund["currency"]},
                "custom_id": refund["id"],
            },
        )
        issues = _issues(body)
        if status == 422 and ({"REFUND_AMOUNT_EXCEEDED", "CAPTURE_FULLY_REFUNDED"} & set(issues)):
            raise Problem(409, "PayPal refused the refund: it is more than what remains of the payment.")
        return self._refund(self._ok(status, body, "refund capture"), refund)

    def retrieve_refund(self, provider_refund_id: str) -> ProviderRefund:
        status, body = self._call("GET", f"/v2/payments/refunds/{provider_refund_id}")
        return self._refund(self._ok(status, body, "refund"))

    def refunds_of(self, provider_payment_id: str) -> list[tuple[str | None, ProviderRefund]]:
        """Every refund of the order, each with our refund id (its custom_id; None for one made at PayPal)."""
        unit = (self._order(provider_payment_id).get("purchase_units") or [{}])[0]
        refunds = (unit.get("payments") or {}).get("refunds") or []
        return [
            (r.get("custom_id"), self._refund(r) if r.get("amount") else self.retrieve_refund(r["id"])) for r in refunds
        ]

    # --- payouts ---------------------------------------------------------------------------

    @staticmethod
    def _payout(body: dict[str, Any], sent: dict[str, Any] | None = None) -> ProviderPayout:
        header = body.get("batch_header") or {}
        amount = header.get("amount") or {}  # absent from the create answer: then what we sent
        value = amount.get("value") or (sent or {}).get("amount")
        currency = amount.get("currency") or (sent or {}).get("currency")
        items = body.get("items") or []
        item_status = str(items[0].get("transaction_status")) if items else None
        status = (
            PAYOUT_ITEM_STATUS.get(item_status, "processing")
            if item_status
            else PAYOUT_STATUS.get(str(header.get("batch_status")), "processing")
        )
        return ProviderPayout(
            id=str(header["payout_batch_id"]),
            status=status,
            reason=f"PayPal: the payout item is {item_status}." if status == "failed" and item_status else None,
            amount_minor=to_minor(str(value)),
            currency=str(currency).upper(),
        )

    def payout(self, payout: dict[str, Any], destination: str) -> ProviderPayout:
        """Send the payout to the host's PayPal email; the same attempt makes one batch.

        The attempt is payout["attempt_key"] (the worker's: a retry of the job reuses it, an
        admin's retry does not), else the payout id. The request id makes a retry return the
        first answer; once PayPal has forgotten it, the sender_batch_id (the attempt, unique
        for 30 days at PayPal) is refused with a link to the original batch, which is then the answer.
        """
        attempt = str(payout.get("attempt_key") or payout["id"])
        status, body = self._call(
            "POST",
            "/v1/payments/payouts",
            request_id=idempotency_key(attempt, "payout"),
            json={
                "sender_batch_header": {
                    "sender_batch_id": attempt,
                    "email_subject": "You have a payout from Nexus",
                },
                "items": [
                    {
                        "recipient_type": "EMAIL",
                        "amount": {"value": payout["amount"], "currency": payout["currency"]},
                        "receiver": destination,
                        "sender_item_id": payout["id"],
                    }
                ],
            },
        )
        if status == 400:
            marker = "/v1/payments/payouts/"
            for link in body.get("links") or []:
                href = str(link.get("href") or "")
                if marker in href:
                    return self.retrieve_payout(href.rsplit(marker, 1)[1].split("?")[0])
        return self._payout(self._ok(status, body, "payout"), payout)

    def retrieve_payout(self, provider_payout_id: str) -> ProviderPayout:
        status, body = self._call("GET", f"/v1/payments/payouts/{provider_payout_id}")
        return self._payout(self._ok(status, body, "payout batch"))

    def account(self, host: dict[str, Any]) -> ProviderAccount:
        """PayPal pays out to an email: there is no account to create or onboard."""
        return ProviderAccount(id=str(host["paypal_email"]), status="active")

    def retrieve_account(self, provider_account_id: str) -> ProviderAccount:
        return ProviderAccount(id=provider_account_id, status="active")

    # --- disputes --------------------------------------------------------------------------

    def retrieve_dispute(self, provider_dispute_id: str) -> ProviderDispute:
        """The dispute, and the order it is about (read from its capture: a dispute names the capture)."""
        status, body = self._call("GET", f"/v1/customer/disputes/{provider_dispute_id}")
        dispute = self._ok(status, body, "dispute")
        transactions = dispute.get("disputed_transactions") or [{}]
        capture_id = transactions[0].get("seller_transaction_id")
        order_id = ""
        if capture_id:
            status, body = self._call("GET", f"/v2/payments/captures/{capture_id}")
            capture = self._ok(status, body, "capture")
            order_id = ((capture.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id") or ""
        amount = dispute.get("dispute_amount") or {}
        outcome = (dispute.get("dispute_outcome") or {}).get("outcome_code")
        return ProviderDispute(
            id=str(dispute["dispute_id"]),
            payment_id=str(order_id),
            status=DISPUTE_OUTCOME.get(str(outcome), "open") if dispute.get("status") == "RESOLVED" else "open",
            amount_minor=to_minor(str(amount.get("value"))),
            currency=str(amount.get("currency_code")).upper(),
            reason=dispute.get("reason"),
            provider_status=dispute.get("status"),
        )

    # --- webhooks --------------------------------------------------------------------------

    def event(self, payload: bytes, headers: Mapping[str, str]) -> Event:
        """The verified event of a webhook request: 400 for a body that is not a PayPal event
        (paypal_event) or a missing or wrong signature, 503 when PayPal cannot be asked (PayPal
        redelivers on any non-2xx)."""
        if not self.webhook_id:
            raise Problem(503, "PayPal webhooks are not configured on this server.")
        try:
            event = paypal_event(orjson.loads(payload))
        except orjson.JSONDecodeError as exc:
            raise Problem(400, "The webhook body is not JSON.") from exc
        lower = {k.lower(): v for k, v in headers.items()}
        fields = {name: lower.get(header) for name, header in WEBHOOK_HEADERS.items()}
        if not all(fields.values()):
            raise Problem(400, BAD_SIGNATURE)
        # The event goes back byte for byte: PayPal checks it against what it signed, and a
        # re-serialised copy (escaped non-ASCII, another number format) would not match.
        head = orjson.dumps({**fields, "webhook_id": self.webhook_id})
        content = head[:-1] + b',"webhook_event":' + payload.strip() + b"}"
        try:
            status, body = self._call("POST", "/v1/notifications/verify-webhook-signature", content=content)
        except ProviderError as exc:
            raise Problem(503, "PayPal could not verify the webhook; it will be redelivered.") from exc
        if status in (401, 403):  # our credentials: not the sender's fault, and it will be redelivered
            raise Problem(503, "PayPal could not verify the webhook; it will be redelivered.")
        if status != 200 or body.get("verification_status") != "SUCCESS":
            raise Problem(400, BAD_SIGNATURE)
        return event


def paypal_event(body: Any) -> Event:
    """What an event is about: its id, its type and the id of the object Nexus re-reads.

    400 for any other JSON: not an object, an id or an event_type that is not 1 to 255
    characters, a resource that is not an object, a step on the way to the object id that is
    not an object, or an object id that is not an id. PayPalGateway.event checks the shape
    before the signature: unlike Stripe's, PayPal's check is a call to PayPal, not worth making
    for a body refused whatever it says. Either way a malformed event is a 400 and nothing is
    recorded.
    """
    resource = body.get("resource") if isinstance(body, dict) else None
    if not isinstance(resource, dict):
        raise Problem(400, NOT_AN_EVENT)
    event_id, event_type = body.get("id"), body.get("event_type")
    if not (is_id(event_id) and is_id(event_type)):
        raise Problem(400, NOT_AN_EVENT)
    kind, object_id = classify(event_type, resource)
    return Event(id=event_id, type=event_type, kind=kind, object_id=object_id)


def classify(event_type: str, resource: dict[str, Any]) -> tuple[str | None, str | None]:
    """What an event is about: (kind, PayPal id of the object to read back); (None, None) to ignore.

    An event with no object id (or an empty one) is recorded and ignored, as before; one whose
    way to it is not objects, or whose id is not 1 to 255 characters of text, is a 400.
    """
    path: tuple[str, ...]
    if event_type.startswith("CHECKOUT.ORDER."):
        kind, path = "payment", ("id",)
    elif event_type in ("PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"):
        kind, path = "refund", ("id",)
    elif event_type.startswith("PAYMENT.CAPTURE."):
        kind, path = "payment", ("supplementary_data", "related_ids", "order_id")
    elif event_type.startswith("PAYMENT.PAYOUTSBATCH."):
        kind, path = "payout", ("batch_header", "payout_batch_id")
    elif event_type.startswith("PAYMENT.PAYOUTS-ITEM."):
        kind, path = "payout", ("payout_batch_id",)
    elif event_type.startswith("CUSTOMER.DISPUTE."):
        kind, path = "dispute", ("dispute_id",)
    else:
        return None, None
    object_id: Any = resource
    for key in path:
        if object_id is None:
            break
        if not isinstance(object_id, dict):
            raise Problem(400, NOT_AN_EVENT)
        object_id = object_id.get(key)
    if object_id is None or object_id == "":
        return None, None
    if not is_id(object_id):
        raise Problem(400, NOT_AN_EVENT)
    return kind, object_id
