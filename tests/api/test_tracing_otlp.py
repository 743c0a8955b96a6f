"""Traces over the wire: OTEL_EXPORTER_OTLP_ENDPOINT set, spans leave in batches over OTLP/HTTP (protobuf)
to a receiver on loopback (tests/otlp_receiver.py); an endpoint that does not answer costs the
requests nothing and is said once."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from api import tracing
from api.app import create_app
from api.settings import Settings
from tests.fix_data import new_listing
from tests.fix_users import User
from tests.loopback import Server
from tests.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def off_after() -> Iterator[None]:
    tracing.shutdown()  # whatever an earlier module left on
    try:
        yield
    finally:
        tracing.shutdown()


def test_spans_reach_an_otlp_receiver_over_http_with_the_service_name(
    off_after: None, settings: Settings, owner: psycopg.Connection[Any], host: User
) -> None:
    listing = new_listing(owner, host.id)
    with Server(OtlpReceiver()) as receiver:
        cfg = replace(settings, otel_endpoint=receiver.base_url)
        with TestClient(create_app(cfg), base_url="http://testserver") as c:
            assert tracing.ON
            r = c.get(f"/api/products/{listing}/")
            assert r.status_code == 200
            tracing.force_flush()

        got = receiver.wait_for(2)

    (server,) = [s for s in got if s.attributes.get("nexus.request_id") == r.headers["x-request-id"]]
    assert (server.service, server.name, server.kind) == ("nexus-api", "GET /api/products/{id}/", 2)  # SERVER
    assert server.attributes["http.response.status_code"] == 200 and server.parent_span_id == ""
    (call,) = [s for s in got if s.parent_span_id == server.span_id]
    assert (call.name, call.kind, call.trace_id) == ("api.product_get", 3, server.trace_id)  # CLIENT
    assert listing not in str(call.attributes)


def test_an_endpoint_that_does_not_answer_costs_requests_nothing_and_is_said_once(
    off_after: None,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.5")  # each batch gives up after half a second
    cfg = replace(settings, otel_endpoint=f"http://127.0.0.1:{port}")

    with caplog.at_level(logging.DEBUG), TestClient(create_app(cfg), base_url="http://testserver") as c:
        statuses = set()
        for _ in range(3):
            statuses |= {c.get("/api/categories/").status_code for _ in range(10)}
            tracing.force_flush()  # a batch sent, refused, dropped

    assert statuses == {200}
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.getMessage()) for r in said] == [
        (
            "nexus.tracing",
            f"traces: http://127.0.0.1:{port}/v1/traces does not take spans; they are dropped until it does",
        )
    ]
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]


def test_off_nothing_of_opentelemetry_is_loaded_and_no_middleware_is_added() -> None:
    program = (
        "import sys; from api.app import create_app; from api.settings import settings; import api.worker;"
        " app = create_app(settings); print([m.cls.__name__ for m in app.user_middleware]);"
        " print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}

    r = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    middleware, loaded = r.stdout.splitlines()
    assert r.returncode == 0, r.stderr
    assert "Requests" not in middleware and "RequestContext" in middleware
    assert loaded == "[]"
