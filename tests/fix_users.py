"""Users plugin: people to act as, created straight in the database, with signed access tokens.

`make_user(role, first_name=..., email=...)` makes one; the fixtures `guest`, `host` (first
name Ada), `other_host` and `admin` are one each per test. `User.auth` is the header dict.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

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
