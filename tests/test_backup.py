"""The restore drill: `make backup`, then `make restore TIME=...` brings back exactly what was committed before TIME.

A project-like folder (the Makefile, scripts/ and sql/superuser.sql, nothing else) gets its own local cluster from
scripts/pg-local, migrated as `make migrate` does, with WAL archived by pgBackRest. Bookings and
payments are written through the same SQL functions the API calls (the guest books and pays, the
provider's success is applied as the worker applies it, the ledger posts), a backup is taken, more
is written, the time T is noted, more is written; `make restore TIME=T` must leave exactly the rows
committed before T, with a ledger that balances. A TIME before the oldest backup, or in the future,
is refused and changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fix_data import day, new_listing, new_user

ROOT = Path(__file__).resolve().parent.parent
PGBACKREST = Path("/usr/bin/pgbackrest")

# A cluster of its own, a backup and a restore: ~40 s on 2 shared cores (the fast subset skips it; make test runs it).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PGBACKREST.exists(), reason="pgBackRest is not installed (make test-tools installs it)"),
]

# Every row the drill looks at, as (kind, id, what it says): what a restore must bring back exactly.
ROWS = """
    select 'user', id::text, email from app.users
    union all select 'booking', id::text, status::text from app.bookings
    union all select 'payment', id::text, status::text || ' ' || amount || ' ' || currency from app.payments
    union all select 'ledger', id::text, booking_id || ' ' || account || ' ' || amount || ' ' || currency
              from app.ledger_entries
    order by 1, 2"""


@dataclass
class Project:
    folder: Path
    env: dict[str, str]
    url: str

    def make(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "-s", *args], cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=120
        )

    def rows(self) -> list[tuple[str, str, str]]:
        with psycopg.connect(self.url) as conn:
            return [tuple(row) for row in conn.execute(ROWS).fetchall()]  # type: ignore[misc]

    def kept_aside(self) -> list[str]:
        return sorted(p.name for p in (self.folder / ".pg").resolve().iterdir() if p.name.startswith("data."))


@pytest.fixture(scope="module")
def project() -> Iterator[Project]:
    """A migrated local cluster in a fresh project-like folder (private, as mktemp -d makes it)."""
    private = Path(tempfile.mkdtemp(prefix="nexus-drill-"))
    folder = private / "nexus"
    shutil.copytree(ROOT / "scripts", folder / "scripts")
    shutil.copy(ROOT / "Makefile", folder / "Makefile")
    (folder / "sql").mkdir()
    shutil.copy(ROOT / "sql" / "superuser.sql", folder / "sql" / "superuser.sql")  # pg-local's superuser step (PostGIS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "BACKUP_", "DATABASE_URL", "MAKE"))}
    env["DATABASE_URL"] = ""
    url = f"postgresql://nexus@/nexus?host={folder / '.pg' / 'run'}"
    try:
        started = subprocess.run(
            [folder / "scripts" / "pg-local", "start"], env=env, capture_output=True, text=True, timeout=60
        )
        assert started.returncode == 0, started.stderr
        assert "WAL archiving on" in started.stdout
        # What make migrate does: the migrations as the owner, then the superuser's part.
        for command in ([sys.executable, "-m", "api.migrate", url], [folder / "scripts" / "pg-local", "setup"]):
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
        yield Project(folder, env, url)
    finally:
        subprocess.run([folder / "scripts" / "pg-local", "stop"], env=env, capture_output=True)
        cluster = (folder / ".pg").resolve() if (folder / ".pg").is_symlink() else None
        shutil.rmtree(private, ignore_errors=True)
        if cluster:
            shutil.rmtree(cluster, ignore_errors=True)


# --- writing as the API does --------------------------------------------------------------------


def as_user(conn: psycopg.Connection[Any], role: str, user_id: str, query: str, params: Any) -> Any:
    """One committed transaction as `role` with the user's claims (as the API runs a request)."""
    with conn.transaction():
        claims = json.dumps({"sub": user_id, "role": role})
        conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)", (role, claims))
        return conn.execute(query, params).fetchone()[0]  # type: ignore[index]


def booked(conn: psycopg.Connection[Any], host: str, start: int) -> tuple[str, str, str]:
    """A new guest books 3 nights and starts paying with Stripe: (booking id, the Stripe id, amount in cents)."""
    guest = new_user(conn)
    body = {"product_id": new_listing(conn, host, price="120.00"), "start_date": day(start), "end_date": day(start + 3)}
    booking = as_user(conn, "guest", guest, "select api.booking_create(%s::jsonb)", (json.dumps(body),))
    payment = as_user(
        conn, "guest", guest, 'select api.payment_create(%s, \'{"provider": "stripe"}\')', (booking["id"],)
    )
    intent = f"pi_{uuid.uuid4().hex}"
    conn.execute("select api.payment_attach(%s, %s)", (payment["id"], intent))  # what the worker records
    return booking["id"], intent, str(int(Decimal(payment["amount"]) * 100))


def paid(conn: psycopg.Connection[Any], intent: str, cents: str) -> None:
    """Stripe says the payment succeeded, applied as the worker applies it: the booking confirms, the ledger posts."""
    (done,) = conn.execute(
        "select app_private.payment_apply('stripe', %s, 'succeeded', %s, 'USD')", (intent, cents)
    ).fetchone()  # type: ignore[misc]
    assert done == "succeeded: booking confirmed", done


def paid_stay(conn: psycopg.Connection[Any], host: str, start: int) -> str:
    booking, intent, cents = booked(conn, host, start)
    paid(conn, intent, cents)
    return booking


def unbalanced(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select booking_id, currency, sum(amount) from app.ledger_entries group by 1, 2 having sum(amount) <> 0"
        ).fetchall()


# --- the drill -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backed_up(project: Project) -> dict[str, Any]:
    """Two paid stays, then `make backup`: when the backup began and what it holds."""
    with psycopg.connect(project.url, autocommit=True) as conn:
        host = new_user(conn, "host")
        for start in (30, 40):
            paid_stay(conn, host, start)
        (began,) = conn.execute("select clock_timestamp()").fetchone()  # type: ignore[misc]
    backup = project.make("backup")
    assert backup.returncode == 0, backup.stderr
    assert "full backup" in backup.stdout and "make restore reaches any moment from" in backup.stdout
    return {"host": host, "began": began, "rows": project.rows()}


def test_the_local_cluster_counts_statements_for_the_owner(project: Project, backed_up: dict[str, Any]) -> None:
    with psycopg.connect(project.url) as conn:
        (schema,) = conn.execute(
            "select extnamespace::regnamespace::text from pg_extension where extname = 'pg_stat_statements'"
        ).fetchone()  # type: ignore[misc]
        (calls,) = conn.execute(
            "select sum(calls) from extensions.pg_stat_statements where query like 'select api.payment_create(%%'"
        ).fetchone()  # type: ignore[misc]
    assert schema == "extensions"
    assert calls >= 2  # the guests' payments, counted (the server preloads it)


def test_a_restore_to_a_time_before_the_oldest_backup_or_in_the_future_is_refused_and_changes_nothing(
    project: Project, backed_up: dict[str, Any]
) -> None:
    too_early = (backed_up["began"].timestamp() - 60, "before the oldest backup")
    too_late = (time.time() + 3600, "in the future")
    for moment, why in (too_early, too_late):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(moment))

        refused = project.make("restore", f"TIME={stamp}")

        assert refused.returncode != 0
        assert why in refused.stderr and "nothing was changed" in refused.stderr
    assert project.kept_aside() == []  # the data directory never moved
    assert project.rows() == backed_up["rows"]  # and the cluster still serves it


def test_make_restore_brings_back_exactly_what_was_committed_before_the_time(
    project: Project, backed_up: dict[str, Any]
) -> None:
    host = backed_up["host"]
    with psycopg.connect(project.url, autocommit=True) as conn:
        # Setup: after the backup, a paid stay, and a booking whose payment is still open at T.
        before_t = paid_stay(conn, host, 50)
        straddling, intent, cents = booked(conn, host, 60)
        committed = project.rows()
        (t,) = conn.execute("select clock_timestamp()").fetchone()  # type: ignore[misc]
        time.sleep(0.05)
        # After T: that payment succeeds, another stay is paid, someone signs up.
        paid(conn, intent, cents)
        after_t = paid_stay(conn, host, 70)
        late_user = new_user(conn)
    assert len(project.rows()) > len(committed)

    # Action
    restored = project.make("restore", f"TIME={t.isoformat(sep=' ')}")

    # Assertions
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert "restored to" in restored.stdout
    assert project.rows() == committed  # exactly the rows committed before T, as they were
    ids = {row[1] for row in committed}
    assert before_t in ids and straddling in ids
    assert after_t not in ids and late_user not in ids
    with psycopg.connect(project.url) as conn:
        (status,) = conn.execute("select status::text from app.bookings where id = %s", (straddling,)).fetchone()  # type: ignore[misc]
        assert status == "pending"  # its payment succeeded after T: not in the restored books
        (entries,) = conn.execute("select count(*) from app.ledger_entries").fetchone()  # type: ignore[misc]
        assert entries > 0
    assert unbalanced(project.url) == []  # every booking's ledger sums to zero per currency
    assert [name.split("-")[0] for name in project.kept_aside()] == ["data.replaced"]  # the old cluster, kept

    # The restored cluster is the project's database again: it takes writes, and they are archived.
    with psycopg.connect(project.url, autocommit=True) as conn:
        new_user(conn)
    again = project.make("backup", "TYPE=incr")
    assert again.returncode == 0, again.stderr


def test_backups_of_a_database_elsewhere_are_left_to_whoever_runs_it() -> None:
    for target in ("backup", "backups", "restore"):
        refused = subprocess.run(
            ["make", "-s", target, "TIME=latest", "DATABASE_URL=postgresql://nexus@db.example.com/nexus"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert refused.returncode != 0 and "DATABASE_URL names another server" in refused.stdout, target
