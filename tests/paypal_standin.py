"""A stand-in of PayPal's REST API on loopback, for the PayPal tests (api.paypal talks to it over HTTP).

It speaks the part of the API Nexus uses, as PayPal does: an OAuth2 client-credentials token
(basic auth) then Bearer on every call, JSON both ways, errors as {"name", "message",
"details": [{"issue", "description"}]}, `PayPal-Request-Id` (the same id answers the first
successful answer again and does nothing new), and `Prefer: return=representation` (without
it, a v2 POST answers only id, status and links, as PayPal's default does):

- POST /v1/oauth2/token
- POST /v2/checkout/orders, GET /v2/checkout/orders/{id}, POST /v2/checkout/orders/{id}/capture
  (422 ORDER_NOT_APPROVED before the guest approved, 422 ORDER_ALREADY_CAPTURED after)
- POST /v2/payments/captures/{id}/refund (422 REFUND_AMOUNT_EXCEEDED beyond what remains,
  CAPTURE_FULLY_REFUNDED after all of it), GET /v2/payments/refunds/{id}
- POST /v1/payments/payouts (a sender_batch_id seen before: 400 with a link to that batch),
  GET /v1/payments/payouts/{id}
- GET /v1/customer/disputes/{id} (made with `open_dispute`, decided with `close_dispute`),
  GET /v2/payments/captures/{id}
- POST /v1/notifications/verify-webhook-signature
- GET /v1/reporting/transactions (the transaction search: captures T0006 and refunds T1107 of a
  window, with their custom_id), for the reconciliation

Webhook signatures are the stand-in's own rule, not PayPal's certificate chain: the signature
is the HMAC-SHA256 hex, keyed with `signing_key`, of
f"{transmission_id}|{transmission_time}|{webhook_id}|{crc32 of the event}", the event being
json.dumps of the webhook_event it is asked about (which is what `signed_event` sends).

Knobs for a test: `approve` (the guest approved the order), `set_capture_status`,
`set_refund_status`, `set_payout_status`, `fail_next` (answer the next API requests, not the
token endpoint, with these HTTP statuses), `lose_next_response` (do the next POST's work,
remember it under its request id, then answer 500, as when the network drops the answer),
`revoke_tokens` (every issued token stops working), `forget_request_ids` (PayPal only keeps
them for a while), and `signed_event` builds a webhook body and its five PAYPAL-* headers.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import secrets
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Answer = tuple[int, dict[str, Any]]

NOT_FOUND = (404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "The specified resource does not exist.")


def paypal_error(status: int, name: str, issue: str | None = None, message: str = "", **extra: Any) -> Answer:
    body: dict[str, Any] = {"name": name, "message": message or name.replace("_", " ").capitalize() + ".", **extra}
    if issue:
        body["details"] = [{"issue": issue, "description": issue.replace("_", " ").lower()}]
    return status, body


def unprocessable(issue: str) -> Answer:
    return paypal_error(
        422,
        "UNPROCESSABLE_ENTITY",
        issue,
        "The requested action could not be performed, semantically incorrect, or failed business validation.",
    )


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8).upper()}"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def minimal(obj: dict[str, Any]) -> dict[str, Any]:
    """PayPal's default answer to a POST (Prefer: return=minimal)."""
    return {k: obj[k] for k in ("id", "status", "links") if k in obj}


@dataclass
class PayPalStandIn:
    client_id: str = "paypal-client"
    client_secret: str = "paypal-secret"
    webhook_id: str = "WH-standin"
    signing_key: str = "standin-signing-key"
    base_url: str = ""
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    captures: dict[str, str] = field(default_factory=dict)  # capture id -> order id
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    answered: dict[str, Answer] = field(default_factory=dict)  # PayPal-Request-Id -> first answer
    fail_next: list[int] = field(default_factory=list)
    lose_next_response: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- knobs -----------------------------------------------------------------------------

    def approve(self, order_id: str) -> None:
        """The guest approved the order at PayPal."""
        with self.lock:
            self.orders[order_id]["status"] = "APPROVED"

    def set_capture_status(self, order_id: str, status: str, reason: str | None = None) -> None:
        with self.lock:
            capture = self.orders[order_id]["purchase_units"][0]["payments"]["captures"][0]
            capture["status"] = status
            if reason:
                capture["status_details"] = {"reason": reason}

    def set_refund_status(self, refund_id: str, status: str) -> None:
        with self.lock:
            self.refunds[refund_id]["status"] = status

    def set_payout_status(self, batch_id: str, status: str, item_status: str | None = None) -> None:
        """The batch's status, and its items' (by default what the batch status implies)."""
        item_status = item_status or {"SUCCESS": "SUCCESS", "DENIED": "FAILED", "CANCELED": "RETURNED"}.get(
            status, "PENDING"
        )
        with self.lock:
            batch = self.payouts[batch_id]
            batch["batch_header"]["batch_status"] = status
            for item in batch["items"]:
                item["transaction_status"] = item_status

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def forget_request_ids(self) -> None:
        with self.lock:
            self.answered.clear()

    def orders_for(self, payment_id: str) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["purchase_units"][0].get("custom_id") == payment_id]

    def sign(self, transmission_id: str, transmission_time: str, webhook_id: str, event: dict[str, Any]) -> str:
        crc = zlib.crc32(json.dumps(event).encode())
        message = f"{transmission_id}|{transmission_time}|{webhook_id}|{crc}"
        return hmac.new(self.signing_key.encode(), message.encode(), hashlib.sha256).hexdigest()

    def signed_event(
        self, event_type: str, resource: dict[str, Any], *, bad: bool = False
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook body and its five PAYPAL-* headers; `bad` signs it with another key."""
        event = {
            "id": "WH-" + secrets.token_hex(10).upper(),
            "event_version": "1.0",
            "create_time": now(),
            "resource_type": event_type.split(".")[-2].lower(),
            "event_type": event_type,
            "summary": f"{event_type} (stand-in)",
            "resource": resource,
        }
        transmission_id, transmission_time = str(uuid.uuid4()), now()
        signature = self.sign(transmission_id, transmission_time, self.webhook_id, event)
        if bad:
            signature = hmac.new(b"not-the-key", signature.encode(), hashlib.sha256).hexdigest()
        return json.dumps(event).encode(), {
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "PAYPAL-CERT-URL": f"{self.base_url}/v1/notifications/certs/CERT-standin",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-SIG": signature,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
        }

    # --- plumbing --------------------------------------------------------------------------

    def _guard(self, request: Request) -> Answer | None:
        self.calls.append((request.method, request.url.path))
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self.tokens:
            return paypal_error(401, "AUTHENTICATION_FAILURE", message="Authentication failed due to invalid token.")
        if self.fail_next:
            return paypal_error(self.fail_next.pop(0), "INTERNAL_SERVER_ERROR", message="An internal error occurred.")
        return None

    def _read(self, handler: Callable[[Request], Answer]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            status, body = self._guard(request) or handler(request)
            return JSONResponse(body, status_code=status)

        return endpoint

    def _write(
        self, handler: Callable[[Request, dict[str, Any]], Answer], idempotent: bool = True, trim: bool = True
    ) -> Callable[[Request], Any]:
        """A POST: the request id's first successful answer again, or the work done once.

        Not `idempotent` (verify-webhook-signature): no request id, no lost answer, nothing trimmed.
        `trim`: a v2 answer without Prefer: return=representation (v1 payouts always answer whole).
        """

        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            refused = self._guard(request)
            if refused:
                return JSONResponse(refused[1], status_code=refused[0])
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                status, answer = paypal_error(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON")
                return JSONResponse(answer, status_code=status)
            if not idempotent:
                status, answer = handler(request, body)
                return JSONResponse(answer, status_code=status)
            key = request.headers.get("paypal-request-id")
            with self.lock:
                if key and key in self.answered:
                    status, answer = self.answered[key]
                else:
                    status, answer = handler(request, body)
                    answer = copy.deepcopy(answer)
                    if key and status < 400:
                        self.answered[key] = (status, answer)
                    if status < 400 and self.lose_next_response:
                        self.lose_next_response = False
                        status, answer = paypal_error(500, "INTERNAL_SERVER_ERROR", message="Connection reset.")
            if trim and status < 400 and request.headers.get("prefer") != "return=representation":
                answer = minimal(answer)
            return JSONResponse(answer, status_code=status)

        return endpoint

    # --- the API ---------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        self.calls.append((request.method, request.url.path))
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        form = await request.form()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client Authentication failed"}, status_code=401
            )
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        token = "A21AA" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return JSONResponse(
            {
                "scope": "https://uri.paypal.com/services/payments/payment",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-STANDIN",
                "expires_in": 32400,
                "nonce": secrets.token_hex(8),
            }
        )

    def create_order(self, request: Request, body: dict[str, Any]) -> Answer:
        units = body.get("purchase_units") or []
        if body.get("intent") != "CAPTURE" or len(units) != 1 or "amount" not in units[0]:
            return paypal_error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER")
        order_id = new_id("ORD")
        order = {
            "id": order_id,
            "intent": "CAPTURE",
            "status": "CREATED",
            "create_time": now(),
            "purchase_units": [
                {k: units[0][k] for k in ("reference_id", "custom_id", "amount") if k in units[0]},
            ],
            "links": [
                {"href": f"{self.base_url}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"},
                {"href": f"{self.base_url}/checkoutnow?token={order_id}", "rel": "approve", "method": "GET"},
                {"href": f"{self.base_url}/v2/checkout/orders/{order_id}", "rel": "update", "method": "PATCH"},
                {"href": f"{self.base_url}/v2/checkout/orders/{order_id}/capture", "rel": "capture", "method": "POST"},
            ],
        }
        self.orders[order_id] = order
        return 201, order

    def get_order(self, request: Request) -> Answer:
        order = self.orders.get(request.path_params["id"])
        return (200, copy.deepcopy(order)) if order else paypal_error(*NOT_FOUND)

    def capture_order(self, request: Request, body: dict[str, Any]) -> Answer:
        order = self.orders.get(request.path_params["id"])
        if order is None:
            return paypal_error(*NOT_FOUND)
        if order["status"] == "COMPLETED":
            return unprocessable("ORDER_ALREADY_CAPTURED")
        if order["status"] != "APPROVED":
            return unprocessable("ORDER_NOT_APPROVED")
        unit = order["purchase_units"][0]
        capture: dict[str, Any] = {
            "id": new_id("CAP"),
            "status": "COMPLETED",
            "amount": dict(unit["amount"]),
            "final_capture": True,
            "create_time": now(),
            "supplementary_data": {"related_ids": {"order_id": order["id"]}},
        }
        unit["payments"] = {"captures": [capture], "refunds": []}
        order["status"] = "COMPLETED"
        self.captures[capture["id"]] = order["id"]
        # PayPal's capture answer: the unit's payments, not its amount.
        answer = copy.deepcopy(order)
        del answer["purchase_units"][0]["amount"]
        return 201, answer

    def refund_capture(self, request: Request, body: dict[str, Any]) -> Answer:
        order_id = self.captures.get(request.path_params["id"])
        if order_id is None:
            return paypal_error(*NOT_FOUND)
        payments = self.orders[order_id]["purchase_units"][0]["payments"]
        capture = payments["captures"][0]
        if capture["status"] == "REFUNDED":
            return unprocessable("CAPTURE_FULLY_REFUNDED")
        if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            return unprocessable("REFUND_NOT_ALLOWED")
        refunded = sum(
            (Decimal(r["amount"]["value"]) for r in payments["refunds"] if r["status"] in ("COMPLETED", "PENDING")),
            Decimal(0),
        )
        remaining = Decimal(capture["amount"]["value"]) - refunded
        amount = body.get("amount") or {"value": str(remaining), "currency_code": capture["amount"]["currency_code"]}
        if amount.get("currency_code") != capture["amount"]["currency_code"]:
            return unprocessable("CURRENCY_MISMATCH")
        value = Decimal(str(amount.get("value")))
        if value <= 0:
            return paypal_error(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE")
        if value > remaining:
            return unprocessable("REFUND_AMOUNT_EXCEEDED")
        refund = {
            "id": new_id("REF"),
            "status": "COMPLETED",
            "amount": {"value": amount["value"], "currency_code": amount["currency_code"]},
            **({"custom_id": body["custom_id"]} if body.get("custom_id") else {}),
            "create_time": now(),
            "links": [
                {"href": f"{self.base_url}/v2/payments/captures/{capture['id']}", "rel": "up", "method": "GET"},
            ],
        }
        self.refunds[refund["id"]] = refund
        payments["refunds"].append(refund)  # the same record: the order shows each refund as it is now
        capture["status"] = "REFUNDED" if value == remaining else "PARTIALLY_REFUNDED"
        return 201, refund

    def get_refund(self, request: Request) -> Answer:
        refund = self.refunds.get(request.path_params["id"])
        return (200, copy.deepcopy(refund)) if refund else paypal_error(*NOT_FOUND)

    def create_payout(self, request: Request, body: dict[str, Any]) -> Answer:
        header = body.get("sender_batch_header") or {}
        items = body.get("items") or []
        if not header.get("sender_batch_id") or not items:
            return paypal_error(400, "VALIDATION_ERROR", "MISSING_REQUIRED_PARAMETER")
        for batch in self.payouts.values():
            if batch["batch_header"]["sender_batch_header"]["sender_batch_id"] == header["sender_batch_id"]:
                batch_id = batch["batch_header"]["payout_batch_id"]
                return paypal_error(
                    400,
                    "USER_BUSINESS_ERROR",
                    message=f"Batch with given sender_batch_id {header['sender_batch_id']} already exists",
                    links=[{"href": f"{self.base_url}/v1/payments/payouts/{batch_id}", "rel": "self", "method": "GET"}],
                )
        batch_id = new_id("PB")
        currency = items[0]["amount"]["currency"]
        total = sum((Decimal(i["amount"]["value"]) for i in items), Decimal(0))
        self.payouts[batch_id] = {
            "batch_header": {
                "payout_batch_id": batch_id,
                "batch_status": "PENDING",
                "time_created": now(),
                "sender_batch_header": header,
                "amount": {
                    "currency": currency,
                    "value": items[0]["amount"]["value"] if len(items) == 1 else str(total),
                },
            },
            "items": [
                {
                    "payout_item_id": new_id("PI"),
                    "transaction_status": "PENDING",
                    "payout_batch_id": batch_id,
                    "payout_item": item,
                }
                for item in items
            ],
            "links": [{"href": f"{self.base_url}/v1/payments/payouts/{batch_id}", "rel": "self", "method": "GET"}],
        }
        created = {
            "batch_header": {
                k: self.payouts[batch_id]["batch_header"][k]
                for k in ("payout_batch_id", "batch_status", "sender_batch_header")
            },
            "links": self.payouts[batch_id]["links"],
        }
        return 201, created

    def get_payout(self, request: Request) -> Answer:
        batch = self.payouts.get(request.path_params["id"])
        return (200, copy.deepcopy(batch)) if batch else paypal_error(*NOT_FOUND)

    def verify(self, request: Request, body: dict[str, Any]) -> Answer:
        names = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id")
        if any(not isinstance(body.get(n), str) or not body[n] for n in names) or "webhook_event" not in body:
            return paypal_error(400, "VALIDATION_ERROR", "MISSING_REQUIRED_PARAMETER")
        expected = self.sign(body["transmission_id"], body["transmission_time"], self.webhook_id, body["webhook_event"])
        good = body["webhook_id"] == self.webhook_id and hmac.compare_digest(body["transmission_sig"], expected)
        return 200, {"verification_status": "SUCCESS" if good else "FAILURE"}

    # --- disputes (a buyer disputes a capture with PayPal) ------------------------------------

    def open_dispute(
        self, order_id: str, value: str | None = None, reason: str = "MERCHANDISE_OR_SERVICE_NOT_RECEIVED"
    ) -> dict[str, Any]:
        """The buyer disputes the order's capture (all of it by default): status OPEN."""
        with self.lock:
            capture = self.orders[order_id]["purchase_units"][0]["payments"]["captures"][0]
            amount = capture["amount"]
            dispute = {
                "dispute_id": new_id("PP-D"),
                "create_time": now(),
                "reason": reason,
                "status": "OPEN",
                "dispute_amount": {"currency_code": amount["currency_code"], "value": value or amount["value"]},
                "disputed_transactions": [{"seller_transaction_id": capture["id"]}],
                "dispute_life_cycle_stage": "CHARGEBACK",
            }
            self.disputes[dispute["dispute_id"]] = dispute
            return copy.deepcopy(dispute)

    def close_dispute(self, dispute_id: str, outcome_code: str) -> dict[str, Any]:
        """PayPal decided: RESOLVED with RESOLVED_BUYER_FAVOUR, RESOLVED_SELLER_FAVOUR, ..."""
        with self.lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = "RESOLVED"
            dispute["dispute_outcome"] = {"outcome_code": outcome_code}
            return copy.deepcopy(dispute)

    def get_dispute(self, request: Request) -> Answer:
        dispute = self.disputes.get(request.path_params["id"])
        return (200, copy.deepcopy(dispute)) if dispute else paypal_error(*NOT_FOUND)

    def get_capture(self, request: Request) -> Answer:
        order_id = self.captures.get(request.path_params["id"])
        if order_id is None:
            return paypal_error(*NOT_FOUND)
        return 200, copy.deepcopy(self.orders[order_id]["purchase_units"][0]["payments"]["captures"][0])

    # --- the transaction search (the reconciliation) ----------------------------------------

    def transactions(self, request: Request) -> Answer:
        """GET /v1/reporting/transactions: captures (T0006) and refunds (T1107) between start_date and
        end_date, with the custom_id each was made with; page and page_size (PayPal's at most 500)."""
        q = request.query_params
        try:
            start = datetime.strptime(q["start_date"], "%Y-%m-%dT%H:%M:%S%z")
            end = datetime.strptime(q["end_date"], "%Y-%m-%dT%H:%M:%S%z")
        except (KeyError, ValueError):
            return paypal_error(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX")
        if (end - start).days > 31:
            return paypal_error(400, "INVALID_REQUEST", "RESULTSET_TOO_LARGE")
        page, size = int(q.get("page", 1)), min(int(q.get("page_size", 100)), 500)
        codes = {"COMPLETED": "S", "PARTIALLY_REFUNDED": "F", "REFUNDED": "V", "PENDING": "P"}
        rows = []
        with self.lock:
            for order in self.orders.values():
                unit = order["purchase_units"][0]
                payments = unit.get("payments") or {}
                for capture in payments.get("captures") or []:
                    rows.append((capture, "T0006", codes.get(capture["status"], "D"), unit.get("custom_id"), 1))
                for refund in payments.get("refunds") or []:
                    state = {"COMPLETED": "S", "PENDING": "P"}.get(refund["status"], "D")
                    rows.append((refund, "T1107", state, refund.get("custom_id"), -1))
        details = []
        for obj, code, state, custom, sign in rows:
            when = datetime.strptime(obj["create_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            if not start <= when <= end:
                continue
            value = Decimal(obj["amount"]["value"]) * sign
            details.append(
                {
                    "transaction_info": {
                        "transaction_id": obj["id"],
                        "transaction_event_code": code,
                        "transaction_initiation_date": when.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                        "transaction_updated_date": when.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                        "transaction_amount": {"currency_code": obj["amount"]["currency_code"], "value": str(value)},
                        "transaction_status": state,
                        **({"custom_field": custom} if custom else {}),
                    }
                }
            )
        pages = max(1, -(-len(details) // size))
        return 200, {
            "transaction_details": details[(page - 1) * size : page * size],
            "account_number": "STANDIN",
            "start_date": q["start_date"],
            "end_date": q["end_date"],
            "page": page,
            "total_items": len(details),
            "total_pages": pages,
        }

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/oauth2/token", self.token, methods=["POST"]),
                Route("/v2/checkout/orders", self._write(self.create_order), methods=["POST"]),
                Route("/v2/checkout/orders/{id}", self._read(self.get_order), methods=["GET"]),
                Route("/v2/checkout/orders/{id}/capture", self._write(self.capture_order), methods=["POST"]),
                Route("/v2/payments/captures/{id}/refund", self._write(self.refund_capture), methods=["POST"]),
                Route("/v2/payments/refunds/{id}", self._read(self.get_refund), methods=["GET"]),
                Route("/v1/payments/payouts", self._write(self.create_payout, trim=False), methods=["POST"]),
                Route("/v1/payments/payouts/{id}", self._read(self.get_payout), methods=["GET"]),
                Route("/v1/customer/disputes/{id}", self._read(self.get_dispute), methods=["GET"]),
                Route("/v2/payments/captures/{id}", self._read(self.get_capture), methods=["GET"]),
                Route("/v1/reporting/transactions", self._read(self.transactions), methods=["GET"]),
                Route(
                    "/v1/notifications/verify-webhook-signature",
                    self._write(self.verify, idempotent=False),
                    methods=["POST"],
                ),
            ]
        )
