"""HTTP plugin: real requests through the ASGI app, and the one way to check a problem.

Fixtures `settings` and `client` (one app and pool for the session); helpers
`assert_problem(response, status, field=None)`, `listing(client, user, category, **fields)`, and
signing up and in through the API: `register`, `login`, `signed_up`, `bearer`, `new_email`, `PASSWORD`.
Users to act as come from tests/fix_users.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from api.settings import Settings
from tests.fix_contract import contract_app
from tests.fix_data import word
from tests.fix_users import User


@pytest.fixture(scope="session")
def settings(owner_url: str, app_url: str, direct_app_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    media: Path = tmp_path_factory.mktemp("media")
    behind_pgbouncer = app_url != direct_app_url
    return replace(
        Settings(),
        database_url=owner_url,
        app_database_url=app_url,
        listen_database_url=direct_app_url,
        db_prepare=not behind_pgbouncer,  # PgBouncer 1.18 cannot route server-side prepared statements
        rate_limits=False,
        cache_max_bytes=0,  # reads right after a write in SQL need no wait; tests/api/test_catalog_cache.py turns it on  # the suite signs up hundreds of users from one address; tests/api/test_rate_limits.py turns them on
        media_root=media,
        public_url="http://testserver",  # the TestClient's base URL: links it is given lead back to the app
        pool_min=1,
        pool_max=20,
        jwt_keys={"test-2": "second-secret-for-tests-" + "0" * 48, "test-1": "first-secret-for-tests-" + "1" * 48},
    )


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """One app for the session (one pool); each test's requests are independent."""
    with TestClient(contract_app(settings), base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem with this status (and, when given, an error for this field); returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    if field:
        assert field in body.get("errors", {}), body
    return body


def listing(client: TestClient, user: User, category: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Flat " + word(),
        "description": "A bright flat.",
        "location": "Lekki, Lagos, Nigeria",
        "price_per_night": "120.00",
        "max_guests": 2,
        "category": category["slug"],
        **fields,
    }
    r = client.post("/api/products/", json=body, headers=user.auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


PASSWORD = "correct horse battery"


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@Example.com"


def register(client: TestClient, **fields: Any) -> Any:
    body = {"email": new_email(), "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace", **fields}
    return client.post("/api/register/", json=body)


def login(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/api/token/", json={"email": email, "password": password})


def signed_up(client: TestClient, **fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    user = register(client, **fields).json()
    tokens = login(client, user["email"]).json()
    return user, tokens


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access']}"}
