"""Users plugin: people to act as, created straight in the database, with signed access tokens.

`make_user(role, first_name=..., email=...)` makes one; the fixtures `guest`, `host` (first
name Ada), `other_host` and `admin` are one each per test. `User.auth` is the header dict.
`access_token(conn, settings, user_id, role)` signs a token for a user made elsewhere, in a new
session (an access token is only good while its session lives, app.check_session).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from api.auth import sign_access
from api.settings import Settings


@dataclass
class User:
    id: str
    email: str
    role: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def access_token(conn: psycopg.Connection[Any], settings: Settings, user_id: str, role: str) -> str:
    """An access token for the user in a new session, begun as a DBA would (app_private.issue_refresh)."""
    (session,) = conn.execute("select app_private.issue_refresh(%s) ->> 'session'", (user_id,)).fetchone()  # type: ignore[misc]
    return sign_access(settings, user_id, role, session)


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
            return User(str(uid), email, role, access_token(conn, settings, str(uid), role))

    return make


MakeUser = Callable[..., User]


@pytest.fixture
def guest(make_user: MakeUser) -> User:
    return make_user("guest")


@pytest.fixture
def host(make_user: MakeUser) -> User:
    return make_user("host", first_name="Ada")


@pytest.fixture
def other_host(make_user: MakeUser) -> User:
    return make_user("host")


@pytest.fixture
def admin(make_user: MakeUser) -> User:
    return make_user("admin")
