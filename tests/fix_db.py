"""Database fixtures: a real PostgreSQL cluster for the session, migrated like production.

The cluster comes from testing.postgresql (as the `postgres` system user when the tests
run as root: scripts/initdb, scripts/postgres). The owner role `nexus` is created
exactly as the README tells a DBA (LOGIN CREATEROLE, owns the database) and runs the
migrations. Set NEXUS_TEST_DATABASE_URL to point the suite at an existing, empty
database instead (its user must be such an owner). With NEXUS_TEST_PGBOUNCER=1 (make
test-pgbouncer) every connection of the API and of the client roles goes through a
PgBouncer in transaction pooling that the session starts.
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

from tests.pgbouncer import BINARY as PGBOUNCER
from tests.pgbouncer import PgBouncer

ROOT = Path(__file__).resolve().parent.parent

# pg_stat_statements as in the local cluster (scripts/pg-local): preloaded by the server, created
# by the superuser in schema extensions once the migrations made it, read and reset by the owner.
PRELOAD = "-c shared_preload_libraries=pg_stat_statements"


def superuser_setup(superuser_url: str) -> None:
    """What `scripts/pg-local setup` does in the local cluster, on a test cluster's migrated database."""
    with psycopg.connect(make_conninfo(superuser_url, dbname="nexus"), autocommit=True) as conn:
        conn.execute("create extension if not exists pg_stat_statements with schema extensions")
        conn.execute("grant pg_read_all_stats to nexus")
        conn.execute("grant execute on function extensions.pg_stat_statements_reset(oid, oid, bigint) to nexus")


def with_user(url: str, user: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(url), "user": user, "password": ""})


@pytest.fixture(scope="session")
def owner_url() -> Iterator[str]:
    """The owner's connection string, on a freshly migrated database."""
    from api.migrate import migrate, prepare

    existing = os.environ.get("NEXUS_TEST_DATABASE_URL")
    if existing:
        migrate(existing)
        yield existing
        return
    import testing.postgresql

    server = testing.postgresql.Postgresql(
        initdb=str(ROOT / "scripts" / "initdb"),
        postgres=str(ROOT / "scripts" / "postgres"),
        postgres_args=f"-h 127.0.0.1 -F -c logging_collector=off -c max_connections=200 -c fsync=off {PRELOAD}",
    )
    try:
        su = server.url()
        with psycopg.connect(su, autocommit=True) as conn:
            conn.execute("create role nexus login createrole")
            conn.execute("create database nexus owner nexus")
        prepare(make_conninfo(su, dbname="nexus"))  # PostGIS: sql/superuser.sql
        url = f"postgresql://nexus@127.0.0.1:{server.settings['port']}/nexus"
        migrate(url)
        superuser_setup(su)
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def direct_app_url(owner_url: str) -> str:
    """The authenticator straight to PostgreSQL (LISTEN needs a session of its own)."""
    return with_user(owner_url, "authenticator")


@pytest.fixture(scope="session")
def app_url(owner_url: str, direct_app_url: str) -> Iterator[str]:
    """How the API connects: as authenticator; through a PgBouncer in transaction pooling when
    NEXUS_TEST_PGBOUNCER=1 (make test-pgbouncer), as deployed behind one."""
    if os.environ.get("NEXUS_TEST_PGBOUNCER") != "1":
        yield direct_app_url
        return
    if not Path(PGBOUNCER).exists():
        pytest.exit("NEXUS_TEST_PGBOUNCER=1 needs pgbouncer: apt-get install -y pgbouncer", returncode=2)
    with PgBouncer(owner_url) as bouncer:
        yield with_user(bouncer.url, "authenticator")


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
    with psycopg.connect(app_url, autocommit=True, prepare_threshold=None) as conn:
        yield As(conn)
        conn.execute("rollback")
