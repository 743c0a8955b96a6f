"""Database fixtures: a real PostgreSQL cluster for the session, migrated like production.

The cluster comes from testing.postgresql (as the `postgres` system user when the tests
run as root: scripts/initdb, scripts/postgres). The owner role `nexus` is created
exactly as the README tells a DBA (LOGIN CREATEROLE, owns the database) and runs the
migrations. Set NEXUS_TEST_DATABASE_URL to point the suite at an existing, empty
database instead (its user must be such an owner).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent


def with_user(url: str, user: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(url), "user": user, "password": ""})


@pytest.fixture(scope="session")
def owner_url() -> Iterator[str]:
    """The owner's connection string, on a freshly migrated database."""
    from api.migrate import migrate

    existing = os.environ.get("NEXUS_TEST_DATABASE_URL")
    if existing:
        migrate(existing)
        yield existing
        return
    import testing.postgresql

    server = testing.postgresql.Postgresql(
        initdb=str(ROOT / "scripts" / "initdb"),
        postgres=str(ROOT / "scripts" / "postgres"),
        postgres_args="-h 127.0.0.1 -F -c logging_collector=off -c max_connections=200 -c fsync=off",
    )
    try:
        su = server.url()
        with psycopg.connect(su, autocommit=True) as conn:
            conn.execute("create role nexus login createrole")
            conn.execute("create database nexus owner nexus")
        url = f"postgresql://nexus@127.0.0.1:{server.settings['port']}/nexus"
        migrate(url)
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def app_url(owner_url: str) -> str:
    """How the API connects: as authenticator."""
    return with_user(owner_url, "authenticator")


@pytest.fixture(scope="session")
def analyst_url(owner_url: str) -> str:
    return with_user(owner_url, "analyst")


@pytest.fixture
def owner(owner_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An owner connection in autocommit mode (test setup, as a DBA would)."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        yield conn


class As:
    """Run SQL as a client role with JWT claims, in a transaction rolled back afterwards."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def __call__(self, role: str, user_id: object = None) -> psycopg.Connection[Any]:
        claims = json.dumps({"sub": str(user_id), "role": role}) if user_id else ""
        self.conn.execute("rollback")
        self.conn.execute("begin")
        self.conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)", (role, claims)
        )
        return self.conn


@pytest.fixture
def as_role(app_url: str) -> Iterator[As]:
    """`as_role('guest', user_id).execute(...)`: SQL as that user, through the authenticator."""
    with psycopg.connect(app_url, autocommit=True) as conn:
        yield As(conn)
        conn.execute("rollback")
