"""The HTTP skeleton: health, docs, and the one error path for every kind of client mistake."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import psycopg
import pytest
from starlette.testclient import TestClient

from api import db
from api.app import create_app
from api.settings import Settings
from tests.fix_api import assert_problem
from tests.fix_users import User


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_reports_applied_migrations(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert "0001.foundation" in r.json()["migrations"]


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert len(client.get("/healthz").headers["x-request-id"]) == 32


def test_openapi_document(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_swagger_ui_is_served_locally(client: TestClient) -> None:
    page = client.get("/swagger/")
    assert page.status_code == 200
    assert "/swagger/assets/swagger-ui-bundle.js" in page.text
    assert "http" not in page.text.replace("https://nexus.dev", "")  # no CDN
    js = client.get("/swagger/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert "/openapi.json" in client.get("/swagger/init.js").text


def test_unknown_route_is_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/api/nope/"), 404)


def test_wrong_method_is_405_problem(client: TestClient) -> None:
    r = client.delete("/healthz")
    assert_problem(r, 405)
    assert "GET" in r.headers["allow"]


def test_cors_is_closed_unless_configured(client: TestClient, settings: Settings) -> None:
    preflight = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"}

    closed = client.options("/healthz", headers=preflight)

    assert "access-control-allow-origin" not in closed.headers
    app = create_app(replace(settings, cors_origins=["http://localhost:3000"]))
    with TestClient(app, base_url="http://testserver") as open_client:
        r = open_client.options("/healthz", headers=preflight)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/healthz", "/api/categories/", "/api/nope/", "/swagger/"):
        r = client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert "strict-transport-security" not in r.headers  # only over TLS
    assert (
        client.get("/api/categories/").headers["content-security-policy"]
        == "default-src 'none'; frame-ancestors 'none'"
    )
    tls = client.get("https://testserver/healthz")
    assert tls.headers["strict-transport-security"].startswith("max-age=31536000")


def test_each_client_role_runs_under_its_own_statement_timeout(settings: Settings) -> None:
    assert settings.statement_timeouts["anon"] == "3s" and settings.statement_timeouts["admin"] == "30s"

    async def sleep_as(role: str) -> None:
        pool = db.make_pool(
            settings.app_url(), 1, 1, 5, "/media/", settings.db_prepare, {"anon": "200ms", "admin": "5s"}
        )
        await pool.open()
        try:
            await db.call(pool, role, None, "select pg_sleep(0.5)", [], True)
        finally:
            await pool.close()

    with pytest.raises(psycopg.errors.QueryCanceled):
        asyncio.run(sleep_as("anon"))
    asyncio.run(sleep_as("admin"))  # the admin's longer budget lets the same statement finish


def test_database_unreachable_is_503_with_retry_after(settings: Settings) -> None:
    down = replace(settings, app_database_url="postgresql://authenticator@127.0.0.1:1/nexus", pool_timeout=0.5)
    with TestClient(create_app(down), raise_server_exceptions=False) as c:
        assert c.get("/healthz").status_code == 200  # the process is up
        r = c.get("/readyz")
        assert r.status_code == 503 and r.headers["Retry-After"]
        r = c.post("/api/register/", json={"email": "a@b.co"})
        assert_problem(r, 503)
        assert r.headers["Retry-After"]


def test_who_may_call_what_is_read_by_the_first_request_if_startup_could_not(settings: Settings, guest: User) -> None:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        assert c.app.state.contract is not None  # read at startup: the database was there
        c.app.state.contract = None  # as if it had not been

        assert_problem(c.get("/api/users/me/"), 401)  # granted to signed-in roles only
        assert c.app.state.contract is not None
        assert_problem(c.get("/api/admin/overview/", headers=guest.auth), 403)  # granted to admin only


def test_empty_body_without_content_type_counts_as_empty_object(client: TestClient) -> None:
    body = assert_problem(client.post("/api/register/"), 400)  # validated as {}, not a 415
    assert "email" in body["errors"]


def test_nul_in_a_parameter_is_a_400_naming_it(client: TestClient) -> None:
    body = assert_problem(client.get("/api/products/?search=a%00b"), 400)
    assert "search" in body["errors"]
    assert_problem(client.get("/api/categories/a%00b/"), 400)
