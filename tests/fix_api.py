"""HTTP fixtures: real requests through the ASGI app, as anonymous or as a signed-in user."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.auth import sign_access
from api.settings import Settings


@pytest.fixture(scope="session")
def settings(owner_url: str, app_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    media: Path = tmp_path_factory.mktemp("media")
    return replace(
        Settings(),
        database_url=owner_url,
        app_database_url=app_url,
        media_root=media,
        pool_min=1,
        pool_max=20,
        jwt_keys={"test-2": "second-secret-for-tests-" + "0" * 48, "test-1": "first-secret-for-tests-" + "1" * 48},
    )


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """One app for the session (one pool); each test's requests are independent."""
    with TestClient(create_app(settings), base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


@dataclass
class User:
    id: str
    email: str
    role: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_user(owner_url: str, settings: Settings) -> Callable[..., User]:
    """Create a user straight in the database (as a DBA would) and sign an access token for it."""

    def make(role: str = "guest", first_name: str = "Test", email: str | None = None) -> User:
        email = email or f"{role}-{uuid.uuid4().hex[:12]}@example.com"
        with psycopg.connect(owner_url, autocommit=True) as conn:
            (uid,) = conn.execute(
                "insert into app.users (email, first_name, last_name, role) values (%s, %s, 'User', %s) returning id",
                (email, first_name, role),
            ).fetchone()  # type: ignore[misc]
        return User(str(uid), email, role, sign_access(settings, str(uid), role))

    return make
