"""Traces (api/tracing.py), caught by the SDK's in-memory exporter: a SERVER span per request, a CLIENT
span per SQL call named by its function and holding none of its values, a span per provider call
(Stripe, PayPal, SMTP), and the jobs a request deferred continuing its trace in the worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.testclient import TestClient

from api import tracing
from api.settings import Settings
from tests.fix_api import PASSWORD, new_email
from tests.fix_contract import contract_app
from tests.fix_data import day, new_listing
from tests.fix_payments import pay, webhook
from tests.fix_users import User
from tests.loglines import captured_logs
from tests.paypal_standin import PayPalStandIn
from tests.stripe_standin import StripeStandIn

CLIENT_TRACEPARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


@pytest.fixture(scope="module")
def exporter(settings: Settings) -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process for this module, every span kept in memory as it ends."""
    memory = InMemorySpanExporter()
    tracing.setup(settings, "nexus-api", exporter=memory)
    try:
        yield memory
    finally:
        tracing.shutdown()


@pytest.fixture(scope="module")
def traced(exporter: InMemorySpanExporter, pay_settings: Settings) -> Iterator[TestClient]:
    """The app with every provider configured, built while tracing is on (so with its middleware)."""
    with TestClient(contract_app(pay_settings), base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


def server_span(spans: InMemorySpanExporter, request_id: str) -> ReadableSpan:
    (found,) = [
        s
        for s in spans.get_finished_spans()
        if s.kind == SpanKind.SERVER and (s.attributes or {}).get("nexus.request_id") == request_id
    ]
    return found


def children(spans: InMemorySpanExporter, parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        s for s in spans.get_finished_spans() if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == name]


def every_value(spans: InMemorySpanExporter) -> str:
    """Everything the spans carry besides ids, as text: names, attributes, events, links, status."""
    parts = []
    for s in spans.get_finished_spans():
        parts += [s.name, str(s.status.description or "")]
        parts += [f"{k}={v}" for k, v in (s.attributes or {}).items()]
        parts += [f"{e.name} {dict(e.attributes or {})}" for e in s.events]
        parts += [str(dict(link.attributes or {})) for link in s.links]
    return "\n".join(parts)


def test_a_request_is_a_server_span_with_a_client_span_per_sql_call_named_by_its_function(
    traced: TestClient, spans: InMemorySpanExporter, owner: psycopg.Connection[Any], host: User
) -> None:
    listing = new_listing(owner, host.id)

    r = traced.get(f"/api/products/{listing}/")

    assert r.status_code == 200
    server = server_span(spans, r.headers["x-request-id"])
    assert server.name == "GET /api/products/{id}/"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/api/products/{id}/"
    assert server.attributes["http.request.method"] == "GET"
    assert server.attributes["http.response.status_code"] == 200
    assert server.status.status_code == StatusCode.UNSET
    (call,) = children(spans, server)
    assert (call.name, call.kind) == ("api.product_get", SpanKind.CLIENT)
    assert call.attributes == {"db.system.name": "postgresql", "db.operation.name": "api.product_get"}
    assert call.context is not None and server.context is not None
    assert call.context.trace_id == server.context.trace_id
    assert named(spans, "GET") == []  # health checks and the like are not what this request made


def test_no_value_a_client_sends_reaches_a_span_not_even_from_a_failed_statement(
    traced: TestClient, spans: InMemorySpanExporter
) -> None:
    email = new_email()
    body = {"email": email, "password": PASSWORD, "first_name": "Grace", "last_name": "Hopper"}

    assert traced.post("/api/register/", json=body).status_code == 201
    again = traced.post("/api/register/", json=body)  # the address is taken: the statement fails
    tokens = traced.post("/api/token/", json={"email": email, "password": PASSWORD}).json()
    refreshed = traced.post("/api/token/refresh/", json={"refresh": tokens["refresh"]})

    assert again.status_code in (400, 409) and refreshed.status_code == 200
    failed = server_span(spans, again.headers["x-request-id"])
    (call,) = children(spans, failed)
    assert call.name == "api.register" and call.status.status_code == StatusCode.ERROR
    assert call.attributes is not None and str(call.attributes["db.response.status_code"]).startswith(("PT", "23"))
    carried = every_value(spans)
    assert "api.token_refresh" in carried and "POST /api/token/refresh/" in carried
    for secret in (email, email.lower(), PASSWORD, "Hopper", tokens["access"], tokens["refresh"]):
        assert secret not in carried
    assert refreshed.json()["refresh"] not in carried
    token = "t" + uuid.uuid4().hex  # a listing's secret calendar URL: its route, never its secret
    feed = traced.get(f"/api/calendars/{token}.ics")
    calendar = server_span(spans, feed.headers["x-request-id"])
    assert calendar.name == "GET /api/calendars/{token}.ics" and token not in every_value(spans)


def test_a_clients_traceparent_is_only_a_link(traced: TestClient, spans: InMemorySpanExporter) -> None:
    r = traced.get("/api/categories/", headers={"traceparent": CLIENT_TRACEPARENT})

    server = server_span(spans, r.headers["x-request-id"])
    assert server.parent is None and server.context is not None
    assert server.context.trace_id != int("a" * 32, 16)
    (link,) = server.links
    assert (link.context.trace_id, link.context.span_id) == (int("a" * 32, 16), int("b" * 16, 16))


def test_a_trusted_proxys_traceparent_is_the_parent(
    exporter: InMemorySpanExporter, spans: InMemorySpanExporter, settings: Settings
) -> None:
    behind_proxy = replace(settings, trusted_proxies=frozenset({"testclient"}))  # the TestClient's peer
    with TestClient(contract_app(behind_proxy), base_url="http://testserver") as c:
        r = c.get("/api/categories/", headers={"traceparent": CLIENT_TRACEPARENT})

    server = server_span(spans, r.headers["x-request-id"])
    assert server.parent is not None and server.context is not None
    assert (server.context.trace_id, server.parent.span_id) == (int("a" * 32, 16), int("b" * 16, 16))
    assert server.links == ()


def test_the_email_job_a_booking_deferred_continues_its_trace_and_logs_its_request_id(
    traced: TestClient,
    spans: InMemorySpanExporter,
    owner: psycopg.Connection[Any],
    work: Any,
    host: User,
    guest: User,
) -> None:
    listing = new_listing(owner, host.id)
    r = traced.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(40), "end_date": day(42), "guests": 1},
        headers=guest.auth,
    )
    assert r.status_code == 201, r.text
    request_id = r.headers["x-request-id"]
    server = server_span(spans, request_id)
    (create,) = [s for s in children(spans, server) if s.name == "api.booking_create"]
    assert create.context is not None
    (origin,) = owner.execute(
        "select args -> '_origin' from procrastinate.procrastinate_jobs"
        " where task_name = 'notifications.send_email' and args -> '_origin' ->> 'request_id' = %s",
        (request_id,),
    ).fetchone()  # type: ignore[misc]
    context = create.context
    assert origin["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"

    with captured_logs() as logs:
        work()

    (job,) = [
        s
        for s in named(spans, "notifications.send_email")
        if (s.attributes or {}).get("nexus.request_id") == request_id
    ]
    assert job.kind == SpanKind.CONSUMER and job.context is not None and job.parent is not None
    assert (job.context.trace_id, job.parent.span_id) == (create.context.trace_id, create.context.span_id)
    inside = {s.name: s for s in children(spans, job)}
    assert {"app_private.email_render", "smtp send", "app_private.email_sent"} <= inside.keys()
    assert inside["smtp send"].kind == SpanKind.CLIENT
    sent = [
        line
        for line in logs.parsed()
        if line["logger"] == "nexus.worker"
        and "handed to the relay" in line["message"]
        and line.get("request_id") == request_id
    ]
    assert len(sent) == 1
    assert sent[0]["trace_id"] == f"{create.context.trace_id:032x}"


def test_provider_calls_are_spans_in_the_request_and_in_the_jobs_its_webhook_causes(
    traced: TestClient,
    spans: InMemorySpanExporter,
    owner: psycopg.Connection[Any],
    stripe: StripeStandIn,
    work: Any,
    host: User,
    guest: User,
) -> None:
    listing = new_listing(owner, host.id)
    booking = traced.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(50), "end_date": day(52), "guests": 1},
        headers=guest.auth,
    ).json()
    paid = pay(traced, guest, booking)
    assert paid.status_code == 201, paid.text
    work()  # the host's booking request email: not this test's
    spans.clear()

    hook = webhook(
        traced, stripe, "payment_intent.succeeded", stripe.set_status(paid.json()["provider_payment_id"], "succeeded")
    )
    assert hook.status_code == 200
    work()

    server = server_span(spans, hook.headers["x-request-id"])
    assert server.context is not None
    trace = [
        s for s in spans.get_finished_spans() if s.context is not None and s.context.trace_id == server.context.trace_id
    ]
    names = [s.name for s in trace]
    # The webhook's request, its job (Stripe's own record read back), and the emails that job deferred.
    assert "payments.apply_event" in names and "stripe retrieve" in names
    assert names.count("notifications.send_email") >= 2 and names.count("smtp send") >= 2
    (apply,) = [s for s in trace if s.name == "payments.apply_event"]
    (retrieve,) = [s for s in trace if s.name == "stripe retrieve"]
    assert retrieve.kind == SpanKind.CLIENT and retrieve.parent is not None and apply.context is not None
    assert retrieve.parent.span_id == apply.context.span_id


def test_a_paypal_payment_is_a_span_with_a_child_per_http_call(
    traced: TestClient,
    spans: InMemorySpanExporter,
    owner: psycopg.Connection[Any],
    paypal: PayPalStandIn,
    host: User,
    guest: User,
) -> None:
    listing = new_listing(owner, host.id)
    booking = traced.post(
        "/api/bookings/",
        json={"product_id": listing, "start_date": day(60), "end_date": day(62), "guests": 1},
        headers=guest.auth,
    ).json()

    r = pay(traced, guest, booking, provider="paypal")

    assert r.status_code == 201, r.text
    server = server_span(spans, r.headers["x-request-id"])
    (create,) = [s for s in children(spans, server) if s.name == "paypal create"]
    calls = children(spans, create)
    assert calls and {s.name for s in calls} <= {"paypal POST", "paypal GET"}
    assert all((s.attributes or {}).get("http.response.status_code") in (200, 201) for s in calls)
    assert all(paypal.client_secret not in str(dict(s.attributes or {})) for s in calls)
