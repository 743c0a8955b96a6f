"""The analyst in a real psql session cannot stall the marketplace: no lock it can take serialises a
business write, and its time limits hold whatever it sets for itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from api.worker import watch_analyst
from tests.fix_data import day, new_listing
from tests.fix_users import User

PSQL = str(Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")) / "psql")
if not Path(PSQL).exists():
    PSQL = shutil.which("psql") or PSQL


class Psql:
    """An interactive psql session (`psql -X`), driven line by line as a person at its prompt would."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [PSQL, "-X", "-q", "-A", "-t", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: [self.lines.put(line) for line in stdout], daemon=True).start()
        self.count = 0

    def send(self, sql: str) -> None:
        """Type `sql` and press enter; do not wait."""
        assert self.process.stdin is not None
        self.process.stdin.write(sql + "\n")
        self.process.stdin.flush()

    def run(self, sql: str, timeout: float = 30) -> str:
        """Type `sql`, wait until psql has done it; what it printed."""
        self.count += 1
        marker = f"--done {self.count}--"
        self.send(f"{sql}\n\\echo '{marker}'")
        return self.read_until(marker, timeout)

    def read_until(self, marker: str, timeout: float) -> str:
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:  # psql gave up: the server ended its session
                    return "".join(out)
                assert time.monotonic() < deadline, "psql did not finish: " + "".join(out)
                continue
            if line.strip() == marker:
                return "".join(out)
            out.append(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.send("\\q")
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def test_the_analyst_cannot_stall_bookings_messages_or_retries(
    client: TestClient, owner: psycopg.Connection[Any], analyst_url: str, host: User, guest: User
) -> None:
    listing = new_listing(owner, host.id)
    analyst = Psql(analyst_url)
    try:
        # Every key the booking and message functions once serialised on, held in an open transaction.
        keys = [
            f"booking-listing:{listing}",
            f"booking-cap:{guest.id}",
            f"idempotency:{guest.id}:retry-1",
            f"messages:{guest.id}",
        ]
        held = analyst.run(
            "begin;\n" + "\n".join(f"select pg_advisory_lock(hashtextextended('{k}', 0));" for k in keys)
        )
        assert "ERROR" not in held, held  # advisory locks are anyone's: they must guard nothing of ours
        row_locks = analyst.run(
            "rollback; begin;\nselect from analytics.listings for update;\nrollback; begin;\n"
            f"select from app.products where id = '{listing}' for update;\nrollback;"
        )

        started = time.monotonic()
        booked = client.post(
            "/api/bookings/",
            json={"product_id": listing, "start_date": day(10), "end_date": day(12), "guests": 1},
            headers={**guest.auth, "Idempotency-Key": "retry-1"},
        )
        asked = client.post(
            "/api/conversations/", json={"product_id": listing, "body": "Is it quiet?"}, headers=guest.auth
        )
        seconds = time.monotonic() - started
    finally:
        analyst.close()

    assert booked.status_code == 201, booked.text
    assert asked.status_code == 201, asked.text
    assert seconds < 3  # not the 5 s statement timeout a held lock cost (then a 503)
    assert row_locks.count("permission denied") == 2, row_locks  # the locks that do guard bookings are not its


def test_no_function_of_ours_serialises_on_an_advisory_lock(owner: psycopg.Connection[Any]) -> None:
    found = owner.execute(
        """select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('api', 'app', 'app_private', 'analytics') and p.prosrc ~ 'pg_(try_)?advisory'"""
    ).fetchall()

    assert found == []


@pytest.fixture
def tight(owner: psycopg.Connection[Any], owner_url: str) -> Iterator[None]:
    """The analyst limited to 1 s statements and 2 s idle transactions, held by the worker's watch
    (api.worker.watch_analyst, every 0.2 s here) for the test; the migrated limits after."""
    owner.execute("update app_private.analyst_settings set statement_seconds = 1, idle_in_transaction_seconds = 2")
    owner.execute("select app_private.analyst_defaults_apply()")
    loop = asyncio.new_event_loop()
    watch = loop.create_task(watch_analyst(owner_url, every=0.2))

    def run() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(watch)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    loop.call_soon_threadsafe(watch.cancel)
    thread.join(timeout=5)
    loop.close()
    owner.execute("update app_private.analyst_settings set statement_seconds = 15, idle_in_transaction_seconds = 60")
    owner.execute("select app_private.analyst_defaults_apply()")


def test_the_analysts_time_limits_hold_whatever_it_sets_for_itself(
    tight: None, owner: psycopg.Connection[Any], analyst_url: str
) -> None:
    analyst = Psql(analyst_url)
    idle = Psql(analyst_url)
    try:
        lifted = analyst.run(
            "set statement_timeout = 0;\nset default_transaction_read_only = off;\n"
            "alter role analyst set statement_timeout = '16s';\n"
            "alter role analyst set idle_in_transaction_session_timeout = 0;\nshow statement_timeout;"
        )
        started = time.monotonic()
        slept = analyst.run("select pg_sleep(20);")
        seconds = time.monotonic() - started
        idle.run("set idle_in_transaction_session_timeout = 0;\nbegin;\nselect count(*) from analytics.listings;")
        time.sleep(3)
        ended = idle.run("select 1;")
    finally:
        analyst.close()
        idle.close()
    config = owner.execute("select rolconfig from pg_roles where rolname = 'analyst'").fetchone()

    assert lifted.strip().endswith("0") and "ERROR" not in lifted, lifted  # PostgreSQL lets it lift them...
    assert "canceling statement due to user request" in slept and seconds < 5, (slept, seconds)  # ...not hold them
    assert "terminat" in ended or "closed" in ended, ended  # the open transaction's session was ended
    assert config is not None and sorted(config[0]) == [
        "default_transaction_read_only=on",
        "idle_in_transaction_session_timeout=2s",
        "statement_timeout=1s",
    ]  # its own ALTER ROLE undone
