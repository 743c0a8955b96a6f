"""api.paypal.PayPalGateway against a loopback stand-in of PayPal's REST API (tests/paypal_standin.py).

Orders (create, approve, capture), refunds, payouts and webhooks, with PayPal's idempotency
(PayPal-Request-Id), its failures (5xx, 429, a lost answer, a revoked token) and its refusals.
Decided here: a refund beyond what remains is a Problem(409), not a ProviderError, because
retrying cannot make it succeed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from api.errors import Problem
from api.payments import ProviderError
from api.paypal import PayPalGateway
from api.settings import Settings
from tests.loopback import Server
from tests.paypal_standin import PayPalStandIn

HEADERS = (
    "PAYPAL-AUTH-ALGO",
    "PAYPAL-CERT-URL",
    "PAYPAL-TRANSMISSION-ID",
    "PAYPAL-TRANSMISSION-SIG",
    "PAYPAL-TRANSMISSION-TIME",
)


@pytest.fixture(scope="module")
def paypal() -> Iterator[PayPalStandIn]:
    with Server(PayPalStandIn()) as standin:
        yield standin


@pytest.fixture(scope="module")
def paypal_settings(settings: Settings, paypal: PayPalStandIn) -> Settings:
    return replace(
        settings,
        paypal_client_id=paypal.client_id,
        paypal_client_secret=paypal.client_secret,
        paypal_webhook_id=paypal.webhook_id,
        paypal_api_base=paypal.base_url,
    )


@pytest.fixture
def gateway(paypal_settings: Settings, paypal: PayPalStandIn) -> PayPalGateway:
    paypal.fail_next.clear()
    paypal.lose_next_response = False
    return PayPalGateway(paypal_settings)


def new_payment(amount: str = "360.00", currency: str = "USD") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "booking_id": str(uuid.uuid4()), "amount": amount, "currency": currency}


def captured(gateway: PayPalGateway, paypal: PayPalStandIn, amount: str = "360.00") -> str:
    """An order the guest approved and we captured; its id."""
    payment = new_payment(amount)
    order = gateway.create(payment)
    paypal.approve(order.id)
    assert gateway.capture(order.id, payment["id"]).status == "succeeded"
    return order.id


def token_calls(paypal: PayPalStandIn) -> int:
    return paypal.calls.count(("POST", "/v1/oauth2/token"))


# --- configuration and the connection ---------------------------------------------------------


@pytest.mark.parametrize("missing", ["paypal_client_id", "paypal_client_secret"])
def test_a_gateway_without_credentials_is_503(paypal_settings: Settings, missing: str) -> None:
    unset: dict[str, Any] = {missing: ""}

    with pytest.raises(Problem) as raised:
        PayPalGateway(replace(paypal_settings, **unset))

    assert raised.value.status == 503
    assert raised.value.detail == "PayPal payments are not configured on this server."


def test_the_token_is_fetched_once_and_shared_by_gateways(
    gateway: PayPalGateway, paypal: PayPalStandIn, paypal_settings: Settings
) -> None:
    gateway.create(new_payment())
    before = token_calls(paypal)

    gateway.create(new_payment())
    PayPalGateway(paypal_settings).create(new_payment())  # payments.gateway() makes one per call

    assert token_calls(paypal) == before


def test_a_revoked_token_is_renewed_once(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    order = gateway.create(new_payment())
    before = token_calls(paypal)
    paypal.revoke_tokens()

    again = gateway.retrieve(order.id)

    assert again.id == order.id
    assert token_calls(paypal) == before + 1


def test_wrong_credentials_are_a_provider_error(paypal_settings: Settings) -> None:
    wrong = PayPalGateway(replace(paypal_settings, paypal_client_secret="not-the-secret"))

    with pytest.raises(ProviderError, match="Client Authentication failed"):
        wrong.create(new_payment())


def test_paypal_unreachable_is_a_provider_error(paypal_settings: Settings) -> None:
    down = PayPalGateway(replace(paypal_settings, paypal_api_base="http://127.0.0.1:1"))

    with pytest.raises(ProviderError, match="ConnectError"):
        down.create(new_payment())


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_failed_call_is_a_provider_error_and_the_retry_makes_one_order(
    gateway: PayPalGateway, paypal: PayPalStandIn, status: int
) -> None:
    payment = new_payment()
    paypal.fail_next.append(status)

    with pytest.raises(ProviderError, match=f"HTTP {status}"):
        gateway.create(payment)
    order = gateway.create(payment)

    assert order.status == "requires_payment"
    assert [o["id"] for o in paypal.orders_for(payment["id"])] == [order.id]


def test_a_lost_answer_then_the_retry_makes_exactly_one_order(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    payment = new_payment()
    paypal.lose_next_response = True

    with pytest.raises(ProviderError):
        gateway.create(payment)
    assert len(paypal.orders_for(payment["id"])) == 1  # PayPal did make it
    order = gateway.create(payment)

    assert [o["id"] for o in paypal.orders_for(payment["id"])] == [order.id]


def test_another_client_error_is_a_provider_error_with_paypals_words(gateway: PayPalGateway) -> None:
    with pytest.raises(ProviderError, match="HTTP 404 RESOURCE_NOT_FOUND: INVALID_RESOURCE_ID"):
        gateway.retrieve("ORD-NOT-THERE")


# --- orders -----------------------------------------------------------------------------------


def test_a_new_order_waits_for_the_guest_to_approve(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    payment = new_payment("360.00")

    order = gateway.create(payment)

    assert order.status == "requires_payment"
    assert (order.amount_minor, order.currency) == (36000, "USD")
    assert order.approve_url == f"{paypal.base_url}/checkoutnow?token={order.id}"
    unit = paypal.orders[order.id]["purchase_units"][0]
    assert unit == {
        "reference_id": payment["booking_id"],
        "custom_id": payment["id"],
        "amount": {"currency_code": "USD", "value": "360.00"},
    }


def test_a_zero_decimal_currency_keeps_its_units(gateway: PayPalGateway) -> None:
    order = gateway.create(new_payment("18000", "JPY"))

    assert (order.amount_minor, order.currency) == (18000, "JPY")


def test_the_same_payment_gets_the_same_order(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    payment = new_payment()

    first = gateway.create(payment)
    second = gateway.create(payment)

    assert second == first
    assert len(paypal.orders_for(payment["id"])) == 1


def test_capturing_before_the_guest_approved_is_409(gateway: PayPalGateway) -> None:
    payment = new_payment()
    order = gateway.create(payment)

    with pytest.raises(Problem) as raised:
        gateway.capture(order.id, payment["id"])

    assert raised.value.status == 409
    assert raised.value.detail == "The guest has not approved this PayPal order yet."
    assert gateway.retrieve(order.id).status == "requires_payment"


def test_an_approved_order_is_captured_once(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    payment = new_payment("360.00")
    order = gateway.create(payment)
    paypal.approve(order.id)

    first = gateway.capture(order.id, payment["id"])
    second = gateway.capture(order.id, payment["id"])

    assert (first.status, first.amount_minor, first.currency) == ("succeeded", 36000, "USD")
    assert second.status == "succeeded"
    assert len(paypal.orders[order.id]["purchase_units"][0]["payments"]["captures"]) == 1


def test_capturing_again_after_paypal_forgot_the_request_id_reads_the_order(
    gateway: PayPalGateway, paypal: PayPalStandIn
) -> None:
    payment = new_payment()
    order = gateway.create(payment)
    paypal.approve(order.id)
    gateway.capture(order.id, payment["id"])
    paypal.forget_request_ids()  # now PayPal answers 422 ORDER_ALREADY_CAPTURED

    again = gateway.capture(order.id, payment["id"])

    assert again.status == "succeeded"
    assert paypal.calls[-2:] == [
        ("POST", f"/v2/checkout/orders/{order.id}/capture"),
        ("GET", f"/v2/checkout/orders/{order.id}"),
    ]


@pytest.mark.parametrize(
    ("capture_status", "status"),
    [("COMPLETED", "succeeded"), ("PENDING", "processing"), ("DECLINED", "failed"), ("FAILED", "failed")],
)
def test_a_completed_order_is_as_paid_as_its_capture(
    gateway: PayPalGateway, paypal: PayPalStandIn, capture_status: str, status: str
) -> None:
    order_id = captured(gateway, paypal)
    paypal.set_capture_status(order_id, capture_status, reason="ECHECK" if capture_status == "PENDING" else None)

    current = gateway.retrieve(order_id)

    assert current.status == status
    assert current.reason == ("ECHECK" if capture_status == "PENDING" else None)


def test_cancel_leaves_an_unapproved_order_to_expire(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    payment = new_payment()
    order = gateway.create(payment)

    current = gateway.cancel(order.id, payment["id"])

    assert current.status == "requires_payment"
    assert paypal.orders[order.id]["status"] == "CREATED"


# --- refunds ----------------------------------------------------------------------------------


def test_a_partial_refund_then_the_rest_then_nothing_more(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    order_id = captured(gateway, paypal, "360.00")
    part = {"id": str(uuid.uuid4()), "amount": "100.00", "currency": "USD"}
    rest = {"id": str(uuid.uuid4()), "amount": "260.00", "currency": "USD"}
    more = {"id": str(uuid.uuid4()), "amount": "0.01", "currency": "USD"}

    first = gateway.refund(part, order_id)
    repeated = gateway.refund(part, order_id)
    partly = gateway.retrieve(order_id)
    second = gateway.refund(rest, order_id)
    with pytest.raises(Problem) as raised:
        gateway.refund(more, order_id)

    assert (first.status, first.amount_minor, first.currency) == ("succeeded", 10000, "USD")
    assert repeated.id == first.id
    assert (second.status, second.amount_minor) == ("succeeded", 26000)
    assert raised.value.status == 409
    assert len(paypal.orders[order_id]["purchase_units"][0]["payments"]["refunds"]) == 2
    # The payment stays paid, partly or wholly refunded: refunds are their own records.
    assert (partly.status, gateway.retrieve(order_id).status) == ("succeeded", "succeeded")
    assert gateway.refunds_of(order_id) == [(part["id"], first), (rest["id"], second)]


def test_a_refund_beyond_what_remains_is_409(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    order_id = captured(gateway, paypal, "360.00")

    with pytest.raises(Problem) as raised:
        gateway.refund({"id": str(uuid.uuid4()), "amount": "360.01", "currency": "USD"}, order_id)

    assert raised.value.status == 409
    assert paypal.orders[order_id]["purchase_units"][0]["payments"]["refunds"] == []


def test_a_refund_of_an_uncaptured_order_is_409(gateway: PayPalGateway) -> None:
    order = gateway.create(new_payment())

    with pytest.raises(Problem) as raised:
        gateway.refund({"id": str(uuid.uuid4()), "amount": "1.00", "currency": "USD"}, order.id)

    assert raised.value.status == 409


@pytest.mark.parametrize(
    ("paypal_status", "status"),
    [("COMPLETED", "succeeded"), ("PENDING", "pending"), ("FAILED", "failed"), ("CANCELLED", "failed")],
)
def test_a_refund_is_read_back_with_its_status(
    gateway: PayPalGateway, paypal: PayPalStandIn, paypal_status: str, status: str
) -> None:
    order_id = captured(gateway, paypal)
    refund = gateway.refund({"id": str(uuid.uuid4()), "amount": "12.50", "currency": "USD"}, order_id)
    paypal.set_refund_status(refund.id, paypal_status)

    current = gateway.retrieve_refund(refund.id)

    assert (current.id, current.status, current.amount_minor, current.currency) == (refund.id, status, 1250, "USD")


# --- payouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_status", "status"), [("SUCCESS", "paid"), ("DENIED", "failed"), ("PROCESSING", "processing")]
)
def test_a_payout_is_processing_then_what_paypal_says(
    gateway: PayPalGateway, paypal: PayPalStandIn, batch_status: str, status: str
) -> None:
    payout = {"id": str(uuid.uuid4()), "amount": "306.00", "currency": "USD"}

    sent = gateway.payout(payout, "host@example.com")
    paypal.set_payout_status(sent.id, batch_status)
    current = gateway.retrieve_payout(sent.id)

    assert (sent.status, sent.amount_minor, sent.currency) == ("processing", 30600, "USD")
    assert (current.id, current.status, current.amount_minor) == (sent.id, status, 30600)
    item = paypal.payouts[sent.id]["items"][0]["payout_item"]
    assert (item["receiver"], item["sender_item_id"]) == ("host@example.com", payout["id"])


def test_the_same_payout_is_one_batch_even_after_paypal_forgot_the_request_id(
    gateway: PayPalGateway, paypal: PayPalStandIn
) -> None:
    payout = {"id": str(uuid.uuid4()), "amount": "50.00", "currency": "USD"}
    first = gateway.payout(payout, "host@example.com")
    again = gateway.payout(payout, "host@example.com")
    paypal.forget_request_ids()  # now PayPal refuses the sender_batch_id, with a link to the batch

    late = gateway.payout(payout, "host@example.com")

    assert again.id == first.id
    assert late.id == first.id
    batches = [
        b
        for b in paypal.payouts.values()
        if b["batch_header"]["sender_batch_header"]["sender_batch_id"] == payout["id"]
    ]
    assert len(batches) == 1


def test_each_attempt_of_a_payout_is_its_own_batch(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    payout_id = str(uuid.uuid4())
    first = {"id": payout_id, "amount": "50.00", "currency": "USD", "attempt_key": f"{payout_id}.1"}
    retried = {**first, "attempt_key": f"{payout_id}.2"}  # an admin's retry after a failed payout

    one = gateway.payout(first, "host@example.com")
    same = gateway.payout(first, "host@example.com")  # the job's retry
    two = gateway.payout(retried, "host@example.com")

    assert same.id == one.id
    assert two.id != one.id
    senders = [b["batch_header"]["sender_batch_header"]["sender_batch_id"] for b in paypal.payouts.values()]
    assert (senders.count(f"{payout_id}.1"), senders.count(f"{payout_id}.2")) == (1, 1)


def test_a_host_account_is_their_paypal_email(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    calls = len(paypal.calls)

    account = gateway.account({"id": str(uuid.uuid4()), "email": "host@example.com", "paypal_email": "pay@example.com"})
    again = gateway.retrieve_account(account.id)

    assert (account.id, account.status, account.onboarding_url) == ("pay@example.com", "active", None)
    assert again == account
    assert len(paypal.calls) == calls  # nothing to ask PayPal


# --- webhooks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "resource", "kind", "object_id"),
    [
        ("CHECKOUT.ORDER.APPROVED", {"id": "ORD-1", "status": "APPROVED"}, "payment", "ORD-1"),
        (
            "PAYMENT.CAPTURE.COMPLETED",
            {"id": "CAP-1", "status": "COMPLETED", "supplementary_data": {"related_ids": {"order_id": "ORD-2"}}},
            "payment",
            "ORD-2",
        ),
        ("PAYMENT.CAPTURE.REFUNDED", {"id": "REF-1", "status": "COMPLETED"}, "refund", "REF-1"),
        ("PAYMENT.CAPTURE.REVERSED", {"id": "REF-2", "status": "COMPLETED"}, "refund", "REF-2"),
        ("PAYMENT.PAYOUTS-ITEM.SUCCEEDED", {"payout_item_id": "PI-1", "payout_batch_id": "PB-1"}, "payout", "PB-1"),
        ("PAYMENT.PAYOUTSBATCH.SUCCESS", {"batch_header": {"payout_batch_id": "PB-2"}}, "payout", "PB-2"),
        ("CUSTOMER.DISPUTE.CREATED", {"dispute_id": "PP-D-1"}, "dispute", "PP-D-1"),
        ("BILLING.SUBSCRIPTION.CREATED", {"id": "I-1"}, None, None),
    ],
)
def test_a_verified_event_says_what_it_is_about(
    gateway: PayPalGateway,
    paypal: PayPalStandIn,
    event_type: str,
    resource: dict[str, Any],
    kind: str | None,
    object_id: str | None,
) -> None:
    body, headers = paypal.signed_event(event_type, resource)

    event = gateway.event(body, headers)

    assert (event.id, event.type) == (json.loads(body)["id"], event_type)
    assert (event.kind, event.object_id) == (kind, object_id)


def test_header_names_are_case_insensitive(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    body, headers = paypal.signed_event("CHECKOUT.ORDER.APPROVED", {"id": "ORD-3"})

    event = gateway.event(body, {k.lower(): v for k, v in headers.items()})

    assert event.object_id == "ORD-3"


def test_a_wrong_signature_is_400(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    body, headers = paypal.signed_event("CHECKOUT.ORDER.APPROVED", {"id": "ORD-4"}, bad=True)

    with pytest.raises(Problem) as raised:
        gateway.event(body, headers)

    assert (raised.value.status, raised.value.detail) == (400, "The webhook signature is missing or wrong.")


def test_a_changed_body_is_400(gateway: PayPalGateway, paypal: PayPalStandIn) -> None:
    body, headers = paypal.signed_event("CHECKOUT.ORDER.APPROVED", {"id": "ORD-5"})

    with pytest.raises(Problem) as raised:
        gateway.event(body.replace(b"ORD-5", b"ORD-6"), headers)

    assert raised.value.status == 400


def test_an_event_for_another_webhook_is_400(paypal_settings: Settings, paypal: PayPalStandIn) -> None:
    other = PayPalGateway(replace(paypal_settings, paypal_webhook_id="WH-another"))
    body, headers = paypal.signed_event("CHECKOUT.ORDER.APPROVED", {"id": "ORD-7"})

    with pytest.raises(Problem) as raised:
        other.event(body, headers)

    assert raised.value.status == 400


@pytest.mark.parametrize("missing", HEADERS)
def test_a_missing_header_is_400_without_asking_paypal(
    gateway: PayPalGateway, paypal: PayPalStandIn, missing: str
) -> None:
    body, headers = paypal.signed_event("CHECKOUT.ORDER.APPROVED", {"id": "ORD-8"})
    del headers[missing]
    calls = len(paypal.calls)

    with pytest.raises(Problem) as raised:
        gateway.event(body, headers)

    assert (raised.value.status, raised.value.detail) == (400, "The webhook signature is missing or wrong.")
    assert len(paypal.calls) == calls


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"event_type": "X"}'])
def test_a_body_that_is_not_an_event_is_400(gateway: PayPalGateway, paypal: PayPalStandIn, body: bytes) -> None:
    _, headers = paypal.signed_event("CHECKOUT.ORDER.APPROVED", {"id": "ORD-9"})

    with pytest.raises(Problem) as raised:
        gateway.event(body, headers)

    assert raised.value.status == 400


@pytest.mark.parametrize("failures", [[503], [429], [401, 401]], ids=["down", "busy", "refuses-our-token"])
def test_paypal_unable_to_verify_is_503_so_it_redelivers(
    gateway: PayPalGateway, paypal: PayPalStandIn, failures: list[int]
) -> None:
    body, headers = paypal.signed_event("CHECKOUT.ORDER.APPROVED", {"id": "ORD-10"})
    paypal.fail_next.extend(failures)

    with pytest.raises(Problem) as raised:
        gateway.event(body, headers)

    assert (raised.value.status, raised.value.detail) == (
        503,
        "PayPal could not verify the webhook; it will be redelivered.",
    )
    assert gateway.event(body, headers).object_id == "ORD-10"  # the redelivery


def test_webhooks_without_a_webhook_id_are_503(paypal_settings: Settings, paypal: PayPalStandIn) -> None:
    unconfigured = PayPalGateway(replace(paypal_settings, paypal_webhook_id=""))
    body, headers = paypal.signed_event("CHECKOUT.ORDER.APPROVED", {"id": "ORD-11"})

    with pytest.raises(Problem) as raised:
        unconfigured.event(body, headers)

    assert (raised.value.status, raised.value.detail) == (503, "PayPal webhooks are not configured on this server.")
