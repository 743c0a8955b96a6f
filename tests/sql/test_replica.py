"""A streaming replica of the test cluster (pg_basebackup on loopback): analysts read it and cannot
write; the API sends anonymous reads there, and a user who writes still reads their own writes."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from starlette.testclient import TestClient

from api.settings import Settings
from tests.fix_contract import contract_app
from tests.fix_data import new_listing
from tests.fix_users import User

ROOT = Path(__file__).resolve().parents[2]
AS_PG = str(ROOT / "scripts" / "as-pg-owner")


def url(base: str, port: int, user: str, dbname: str = "nexus") -> str:
    return make_conninfo(
        **{**conninfo_to_dict(base), "port": str(port), "user": user, "dbname": dbname, "password": ""}
    )


@pytest.fixture(scope="module")
def replica(owner_url: str) -> Iterator[int]:
    """The replica's port: a base backup of the primary, started as a hot standby that streams from it."""
    primary = conninfo_to_dict(owner_url)
    folder = Path(tempfile.mkdtemp(prefix="nexus-replica-"))
    data = folder / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backup = subprocess.run(
        [
            AS_PG,
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary["port"]),
            "-U",
            "postgres",
            "-D",
            str(data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if backup.returncode != 0:
        pytest.skip(f"pg_basebackup could not copy the test cluster: {backup.stderr.strip()}")
    data.chmod(0o700)  # PostgreSQL refuses a data directory others can read
    # A hot standby needs at least the primary's max_connections (tests/fix_db.py starts it with 200).
    start = subprocess.run(
        [
            AS_PG,
            "pg_ctl",
            "start",
            "-D",
            str(data),
            "-w",
            "-l",
            str(data / "replica.log"),
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c hot_standby=on -c max_connections=200",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert start.returncode == 0, start.stderr
    try:
        yield port
    finally:
        subprocess.run([AS_PG, "pg_ctl", "stop", "-D", str(data), "-m", "immediate"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def superuser(owner_url: str, port: int) -> psycopg.Connection[Any]:
    return psycopg.connect(url(owner_url, port, "postgres"), autocommit=True)


def caught_up(owner_url: str, replica: int) -> None:
    """Wait until the replica has replayed everything the primary wrote so far."""
    with psycopg.connect(owner_url) as primary:
        (lsn,) = primary.execute("select pg_current_wal_lsn()").fetchone()  # type: ignore[misc]
    with superuser(owner_url, replica) as standby:
        deadline = time.monotonic() + 30
        while standby.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone() != (True,):
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.05)


def test_the_analyst_reads_the_replica_and_cannot_write(owner_url: str, replica: int) -> None:
    caught_up(owner_url, replica)
    with psycopg.connect(url(owner_url, replica, "analyst")) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone() == (True,)
        conn.execute("select count(*) from analytics.bookings").fetchone()
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("create temp table t (x int)")


def test_anonymous_reads_use_the_replica_and_a_writer_reads_their_own_writes(
    owner_url: str, settings: Settings, replica: int, owner: psycopg.Connection[Any], host: User
) -> None:
    listing = new_listing(owner, host.id)
    caught_up(owner_url, replica)
    app = contract_app(replace(settings, replica_database_url=url(owner_url, replica, "authenticator")))
    with TestClient(app, base_url="http://testserver") as client, superuser(owner_url, replica) as standby:
        path = f"/api/products/{listing}/"
        assert client.get(path).json()["name"] == "A place"
        standby.execute("select pg_wal_replay_pause()")
        try:
            renamed = client.patch(path, json={"name": "Renamed"}, headers=host.auth)
            assert renamed.status_code == 200, renamed.text

            assert client.get(path, headers=host.auth).json()["name"] == "Renamed"  # the writer: the primary
            assert client.get(path).json()["name"] == "A place"  # anonymous: the replica, paused behind
        finally:
            standby.execute("select pg_wal_replay_resume()")
        caught_up(owner_url, replica)
        assert client.get(path).json()["name"] == "Renamed"


def test_the_metrics_see_the_replica_and_its_lag_from_both_sides(owner_url: str, replica: int) -> None:
    """app_private.metrics() (the worker's scrape, sql/functions/90_metrics.sql): on the primary, each
    standby's lag from pg_stat_replication (its lag columns need pg_read_all_stats: a superuser here);
    on a standby, its own lag. Replay paused while the primary writes: the standby falls behind."""

    def series(conn: psycopg.Connection[Any], name: str) -> dict[str, float]:
        (families,) = conn.execute("select app_private.metrics()").fetchone()  # type: ignore[misc]
        (family,) = [f for f in families if f["name"] == name]
        return {s["labels"].get("replica", ""): float(s["value"]) for s in family["samples"]}

    caught_up(owner_url, replica)
    with (
        superuser(owner_url, int(conninfo_to_dict(owner_url)["port"])) as primary,
        superuser(owner_url, replica) as standby,
    ):
        standby.execute("select pg_wal_replay_pause()")
        try:
            primary.execute("create table public.metrics_lag (x int); drop table public.metrics_lag")
            primary.execute("select pg_switch_wal()")  # past what the standby replayed
            time.sleep(0.2)
            behind = series(primary, "nexus_replica_lag_bytes")
            standbys = series(primary, "nexus_replicas")
            own = series(standby, "nexus_replica_lag_seconds")
        finally:
            standby.execute("select pg_wal_replay_resume()")

    assert standbys == {"": 1.0}
    assert len(behind) == 1 and next(iter(behind.values())) > 0
    assert set(own) == {"self"} and own["self"] >= 0
