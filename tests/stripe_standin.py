"""A stand-in of Stripe's HTTP API on loopback, for the payment tests (the real `stripe` SDK talks to it).

It speaks the part of the API Nexus uses, as Stripe does: form-encoded requests with a
Bearer secret key, JSON answers, errors as {"error": {...}} with Stripe's status codes, and
Idempotency-Key (the same key returns the first answer and creates nothing new):

- POST /v1/payment_intents, GET /v1/payment_intents/{id}, POST /v1/payment_intents/{id}/cancel
- POST /v1/refunds (never more than the intent's unrefunded amount), GET /v1/refunds/{id},
  GET /v1/refunds?payment_intent=
- POST /v1/accounts, GET /v1/accounts/{id}, POST /v1/account_links (Connect onboarding)
- POST /v1/transfers (to an account whose payouts are enabled), GET /v1/transfers/{id}
- GET /v1/disputes/{id} (a dispute made with `open_dispute`, decided with `close_dispute`)
- GET /v1/payment_intents, /v1/refunds and /v1/transfers by creation time (created[gte], created[lte],
  limit, starting_after: newest first, as Stripe's lists), for the reconciliation

Knobs for a test: `fail_next` (answer the next requests with these HTTP statuses),
`lose_next_response` (create the object, remember it under the key, then answer 500, as when
the network drops the answer), `slow_next` (create the intent, then wait before answering), `set_status` (the guest paid, or a card was declined), and
`enable_payouts` (the host finished onboarding), `refund_status` (what new refunds become), and
`signed_event` builds a webhook body with a valid (or stale) Stripe-Signature header. For the
reconciliation, objects Nexus never made or heard of: `add_intent`, `add_refund` (as from the
dashboard) and `reverse_transfer`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def stripe_error(status: int, message: str, kind: str = "api_error") -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


@dataclass
class StripeStandIn:
    secret_key: str = "sk_test_standin"
    webhook_secret: str = "whsec_standin"
    base_url: str = ""
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    refund_status: str = "succeeded"
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> answer
    fail_next: list[int] = field(default_factory=list)
    lose_next_response: bool = False
    slow_next: float = 0.0  # seconds to sit on the next created intent's answer (a worker can die meanwhile)
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- knobs -----------------------------------------------------------------------------

    def set_status(self, intent_id: str, status: str, **changes: Any) -> dict[str, Any]:
        with self.lock:
            self.intents[intent_id].update(status=status, **changes)
            return dict(self.intents[intent_id])

    def intents_for(self, payment_id: str) -> list[dict[str, Any]]:
        return [i for i in self.intents.values() if i["metadata"].get("payment_id") == payment_id]

    def signed_event(
        self, event_type: str, obj: dict[str, Any], *, age: int = 0, secret: str | None = None
    ) -> tuple[bytes, str]:
        """A webhook body and its Stripe-Signature header (HMAC-SHA256 of "t.body"), `age` seconds old."""
        body = json.dumps(
            {
                "id": "evt_" + secrets.token_hex(12),
                "object": "event",
                "type": event_type,
                "created": int(time.time()),
                "data": {"object": obj},
            }
        ).encode()
        t = int(time.time()) - age
        mac = hmac.new((secret or self.webhook_secret).encode(), f"{t}.".encode() + body, hashlib.sha256)
        return body, f"t={t},v1={mac.hexdigest()}"

    # --- the API ---------------------------------------------------------------------------

    async def _guard(self, request: Request) -> Response | None:
        self.calls.append((request.method, request.url.path))
        if request.headers.get("authorization") != f"Bearer {self.secret_key}":
            return stripe_error(401, "Invalid API Key provided.", "invalid_request_error")
        if self.fail_next:
            return stripe_error(self.fail_next.pop(0), "Something went wrong on Stripe's end.")
        return None

    async def create(self, request: Request) -> Response:
        refused = await self._guard(request)
        if refused:
            return refused
        key = request.headers.get("idempotency-key")
        form = await request.form()
        with self.lock:  # the key checked and its answer recorded at once: a concurrent retry gets this one
            if key and key in self.answered:
                return JSONResponse(self.answered[key])
            intent = self._new_intent(form)
            if key:
                self.answered[key] = intent
            if self.lose_next_response:
                self.lose_next_response = False
                return stripe_error(500, "The connection was reset.")
            delay, self.slow_next = self.slow_next, 0.0
        await asyncio.sleep(delay)
        return JSONResponse(intent)

    def _new_intent(self, form: Any) -> dict[str, Any]:
        intent_id = "pi_" + secrets.token_hex(12)
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(str(form["amount"])),
            "currency": str(form["currency"]),
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "metadata": {k[len("metadata[") : -1]: str(v) for k, v in form.items() if k.startswith("metadata[")},
            "last_payment_error": None,
            "amount_refunded": 0,
            "created": int(time.time()),
        }
        self.intents[intent_id] = intent
        return intent

    async def retrieve(self, request: Request) -> Response:
        refused = await self._guard(request)
        if refused:
            return refused
        intent = self.intents.get(request.path_params["id"])
        if intent is None:
            return stripe_error(404, "No such payment_intent.", "invalid_request_error")
        return JSONResponse(intent)

    async def cancel(self, request: Request) -> Response:
        refused = await self._guard(request)
        if refused:
            return refused
        intent = self.intents.get(request.path_params["id"])
        if intent is None:
            return stripe_error(404, "No such payment_intent.", "invalid_request_error")
        if intent["status"] in ("succeeded", "canceled", "processing"):
            return stripe_error(
                400,
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
                "invalid_request_error",
            )
        return JSONResponse(self.set_status(intent["id"], "canceled"))

    async def _idempotent(self, request: Request, make: Any) -> Response:
        """Create with `make(form)` (an object, or an error Response) once per Idempotency-Key."""
        refused = await self._guard(request)
        if refused:
            return refused
        key = request.headers.get("idempotency-key")
        form = {k: str(v) for k, v in (await request.form()).items()}
        with self.lock:  # the key checked and its answer recorded at once: a concurrent retry gets this one
            if key and key in self.answered:
                return JSONResponse(self.answered[key])
            made = make(form)
            if isinstance(made, Response):
                return made
            if key:
                self.answered[key] = made
            if self.lose_next_response:
                self.lose_next_response = False
                return stripe_error(500, "The connection was reset.")
        return JSONResponse(made)

    def _get(self, table: dict[str, dict[str, Any]], kind: str) -> Any:
        async def get(request: Request) -> Response:
            refused = await self._guard(request)
            if refused:
                return refused
            obj = table.get(request.path_params["id"])
            if obj is None:
                return stripe_error(404, f"No such {kind}.", "invalid_request_error")
            return JSONResponse(obj)

        return get

    @staticmethod
    def _metadata(form: dict[str, str]) -> dict[str, str]:
        return {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")}

    async def create_refund(self, request: Request) -> Response:
        def make(form: dict[str, str]) -> Any:
            intent = self.intents.get(form.get("payment_intent", ""))
            if intent is None:
                return stripe_error(404, "No such payment_intent.", "invalid_request_error")
            if intent["status"] != "succeeded":
                return stripe_error(
                    400, "This PaymentIntent has no successful charge to refund.", "invalid_request_error"
                )
            amount = int(form.get("amount") or intent["amount"] - intent["amount_refunded"])
            if amount > intent["amount"] - intent["amount_refunded"]:
                return stripe_error(
                    400, "Refund amount is greater than unrefunded amount on charge.", "invalid_request_error"
                )
            refund = {
                "id": "re_" + secrets.token_hex(12),
                "object": "refund",
                "amount": amount,
                "currency": intent["currency"],
                "payment_intent": intent["id"],
                "status": self.refund_status,
                "metadata": self._metadata(form),
                "failure_reason": None,
                "created": int(time.time()),
            }
            if refund["status"] != "failed":
                intent["amount_refunded"] += amount
            self.refunds[refund["id"]] = refund
            return refund

        return await self._idempotent(request, make)

    async def list_refunds(self, request: Request) -> Response:
        refused = await self._guard(request)
        if refused:
            return refused
        pi = request.query_params.get("payment_intent")
        if pi is None:  # every refund of a time (the reconciliation)
            return self._list(request, self.refunds, "/v1/refunds")
        data = [r for r in self.refunds.values() if r["payment_intent"] == pi]
        return JSONResponse({"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"})

    async def create_account(self, request: Request) -> Response:
        def make(form: dict[str, str]) -> Any:
            account = {
                "id": "acct_" + secrets.token_hex(8),
                "object": "account",
                "type": form.get("type"),
                "email": form.get("email"),
                "payouts_enabled": False,
                "metadata": self._metadata(form),
            }
            self.accounts[account["id"]] = account
            return account

        return await self._idempotent(request, make)

    async def create_account_link(self, request: Request) -> Response:
        def make(form: dict[str, str]) -> Any:
            if form.get("account") not in self.accounts:
                return stripe_error(404, "No such account.", "invalid_request_error")
            return {
                "object": "account_link",
                "url": f"{self.base_url}/connect/onboarding/{form['account']}/{secrets.token_hex(6)}",
                "expires_at": int(time.time()) + 300,
            }

        return await self._idempotent(request, make)

    async def create_transfer(self, request: Request) -> Response:
        def make(form: dict[str, str]) -> Any:
            account = self.accounts.get(form.get("destination", ""))
            if account is None or not account["payouts_enabled"]:
                return stripe_error(400, "The destination account cannot receive transfers.", "invalid_request_error")
            transfer = {
                "id": "tr_" + secrets.token_hex(12),
                "object": "transfer",
                "amount": int(form["amount"]),
                "currency": form["currency"],
                "destination": account["id"],
                "transfer_group": form.get("transfer_group"),
                "reversed": False,
                "metadata": self._metadata(form),
                "created": int(time.time()),
            }
            self.transfers[transfer["id"]] = transfer
            return transfer

        return await self._idempotent(request, make)

    def enable_payouts(self, account_id: str) -> dict[str, Any]:
        with self.lock:
            self.accounts[account_id]["payouts_enabled"] = True
            return dict(self.accounts[account_id])

    # --- disputes (a guest's bank disputes a charge) ----------------------------------------

    def open_dispute(self, intent_id: str, amount: int | None = None, reason: str = "fraudulent") -> dict[str, Any]:
        """The guest's bank disputes the intent's charge (all of it by default): a dp_ object, needs_response."""
        with self.lock:
            intent = self.intents[intent_id]
            dispute = {
                "id": "dp_" + secrets.token_hex(12),
                "object": "dispute",
                "amount": intent["amount"] if amount is None else amount,
                "currency": intent["currency"],
                "charge": "ch_" + intent_id[3:],
                "payment_intent": intent_id,
                "reason": reason,
                "status": "needs_response",
                "created": int(time.time()),
            }
            self.disputes[dispute["id"]] = dispute
            return dict(dispute)

    def close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        """The bank decided: won or lost (or any of Stripe's dispute statuses)."""
        with self.lock:
            self.disputes[dispute_id]["status"] = status
            return dict(self.disputes[dispute_id])

    # --- lists by creation time (the reconciliation) ---------------------------------------

    def _list(self, request: Request, table: dict[str, dict[str, Any]], url: str) -> Response:
        """Objects newest first, created[gte]/[lte], limit, starting_after: {object: list, data, has_more, url}."""
        q = request.query_params
        gte, lte = int(q.get("created[gte]", 0)), int(q.get("created[lte]", 2**62))
        limit = int(q.get("limit", 10))
        with self.lock:
            listed = [o for o in reversed(list(table.values())) if gte <= o["created"] <= lte]
        after = q.get("starting_after")
        if after:
            ids = [o["id"] for o in listed]
            listed = listed[ids.index(after) + 1 :] if after in ids else []
        return JSONResponse({"object": "list", "data": listed[:limit], "has_more": len(listed) > limit, "url": url})

    def _lister(self, table: dict[str, dict[str, Any]], url: str) -> Any:
        async def endpoint(request: Request) -> Response:
            refused = await self._guard(request)
            return refused or self._list(request, table, url)

        return endpoint

    def add_intent(
        self, amount: int, currency: str = "usd", status: str = "succeeded", **metadata: str
    ) -> dict[str, Any]:
        """A PaymentIntent made at Stripe by someone else than Nexus (the dashboard, another integration)."""
        intent_id = "pi_" + secrets.token_hex(12)
        with self.lock:
            self.intents[intent_id] = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "currency": currency,
                "status": status,
                "client_secret": None,
                "metadata": dict(metadata),
                "last_payment_error": None,
                "amount_refunded": 0,
                "created": int(time.time()),
            }
            return dict(self.intents[intent_id])

    def add_refund(self, intent_id: str, amount: int, status: str = "succeeded") -> dict[str, Any]:
        """A refund made in Stripe's dashboard: no metadata of ours, and no webhook sent."""
        with self.lock:
            intent = self.intents[intent_id]
            refund = {
                "id": "re_" + secrets.token_hex(12),
                "object": "refund",
                "amount": amount,
                "currency": intent["currency"],
                "payment_intent": intent_id,
                "status": status,
                "metadata": {},
                "failure_reason": None,
                "created": int(time.time()),
            }
            self.refunds[refund["id"]] = refund
            if status != "failed":
                intent["amount_refunded"] += amount
            return dict(refund)

    def reverse_transfer(self, transfer_id: str) -> dict[str, Any]:
        """The transfer was reversed at Stripe (no webhook sent)."""
        with self.lock:
            self.transfers[transfer_id]["reversed"] = True
            return dict(self.transfers[transfer_id])

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/payment_intents", self.create, methods=["POST"]),
                Route("/v1/payment_intents", self._lister(self.intents, "/v1/payment_intents"), methods=["GET"]),
                Route("/v1/payment_intents/{id}", self.retrieve, methods=["GET"]),
                Route("/v1/payment_intents/{id}/cancel", self.cancel, methods=["POST"]),
                Route("/v1/refunds", self.create_refund, methods=["POST"]),
                Route("/v1/refunds", self.list_refunds, methods=["GET"]),
                Route("/v1/refunds/{id}", self._get(self.refunds, "refund"), methods=["GET"]),
                Route("/v1/accounts", self.create_account, methods=["POST"]),
                Route("/v1/accounts/{id}", self._get(self.accounts, "account"), methods=["GET"]),
                Route("/v1/account_links", self.create_account_link, methods=["POST"]),
                Route("/v1/transfers", self.create_transfer, methods=["POST"]),
                Route("/v1/transfers", self._lister(self.transfers, "/v1/transfers"), methods=["GET"]),
                Route("/v1/transfers/{id}", self._get(self.transfers, "transfer"), methods=["GET"]),
                Route("/v1/disputes/{id}", self._get(self.disputes, "dispute"), methods=["GET"]),
            ]
        )
