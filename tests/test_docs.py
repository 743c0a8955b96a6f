"""The README and docs/ run as written.

Every fenced `sql` and `sh` block of README.md and docs/*.md is executed against a served copy
of the demo (`make run`'s data, in a cluster of this test's own): `sql` blocks with psql as the
owner (the DBA's `make psql`), `sh` blocks with bash, `http://127.0.0.1:8000` standing for the
served address. A block of `make` commands is checked with `make -n` (the target exists and its
recipe expands), not run. And every URL that `make run` prints answers 200.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest

from tests.fix_db import PRELOAD, superuser_setup
from tests.loopback import Served

ROOT = Path(__file__).resolve().parent.parent
PSQL = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")) / "psql"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^( *)```(\w+)[^\n]*\n(.*?)^\1```$", re.M | re.S)  # also indented, in a list
DEFAULT = "http://127.0.0.1:8000"


def blocks(language: str) -> list[tuple[str, str]]:
    """(where, text) of every fenced block in `language`."""
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in FENCE.finditer(text):
            if match[2] == language:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{path.relative_to(ROOT)}:{line}", textwrap.dedent(match[3])))
    return found


def where_only(value: object) -> str | None:
    """A test id: a block's place (file:line), not its text."""
    return str(value) if isinstance(value, str) and "\n" not in value else ""


def commands(block: str) -> list[str]:
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    """The owner's URL of a cluster of its own, migrated and loaded with `make run`'s demo data."""
    import testing.postgresql

    from api.migrate import migrate, prepare

    server = testing.postgresql.Postgresql(
        initdb=str(ROOT / "scripts" / "initdb"),
        postgres=str(ROOT / "scripts" / "postgres"),
        postgres_args=f"-h 127.0.0.1 -F -c logging_collector=off -c fsync=off {PRELOAD}",
    )
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("create role nexus login createrole")
            conn.execute("create database nexus owner nexus")
        prepare(f"postgresql://postgres@127.0.0.1:{server.settings['port']}/nexus")
        url = f"postgresql://nexus@127.0.0.1:{server.settings['port']}/nexus"
        migrate(url)
        superuser_setup(server.url())
        loaded = subprocess.run(
            [sys.executable, "-m", "api.demo"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
        )
        assert loaded.returncode == 0, loaded.stderr
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def served(demo: str) -> Iterator[Served]:
    with Served(demo, 1) as api:
        yield api


def test_the_docs_have_examples_to_run() -> None:
    assert len(blocks("sql")) >= 1 and len(blocks("sh")) >= 2  # the RLS walk-through, the commands, the tour


@pytest.mark.parametrize(("where", "sql"), blocks("sql"), ids=[where for where, _ in blocks("sql")])
def test_sql_examples_run_in_psql_as_the_owner(demo: str, where: str, sql: str) -> None:
    run = subprocess.run(
        [str(PSQL), "-X", "-q", "-v", "ON_ERROR_STOP=1", demo], input=sql, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, f"{where}: {run.stderr}"


def test_the_rls_walk_through_shows_what_the_guest_sees(demo: str) -> None:
    (where, sql), *_ = [(w, s) for w, s in blocks("sql") if "set_config('role', 'guest'" in s]
    run = subprocess.run(
        [str(PSQL), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", demo], input=sql, capture_output=True, text=True
    )
    assert run.returncode == 0, f"{where}: {run.stderr}"
    assert "guest@nexus.local" in run.stdout.split()  # api.me() as the guest: the guest's own profile


@pytest.mark.parametrize(
    ("where", "script"), [(w, s) for w, s in blocks("sh") if not commands(s)[0].startswith("make ")]
)
def test_shell_examples_run_against_the_served_demo(served: Served, where: str, script: str) -> None:
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(DEFAULT, served.base_url)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"{where}: {run.stderr}\n{run.stdout}"
    if where.startswith("README.md") and "/token/" in script:  # the quick tour
        out = run.stdout
        assert '"count":' in out and "guest@nexus.local" in out  # the search, then who I am
        assert '"status":"pending"' in out.replace(" ", "")  # the booking, held
        assert '"status":409' in out.replace(" ", "") and '"errors":' in out  # the overlap, the mistake
    if "search=Leki" in script:  # the map search (README, Search)
        out = run.stdout.replace(" ", "")
        assert '"distance_km":' in out and '"categories":' in out and '"fuzzy":true' in out, run.stdout


@pytest.mark.parametrize(
    ("where", "block"), [(w, s) for w, s in blocks("sh") if commands(s)[0].startswith("make ")], ids=where_only
)
def test_make_commands_in_the_docs_exist(where: str, block: str) -> None:
    for command in commands(block):
        target = command.split()[1]
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert dry.returncode == 0, f"{where}: make {target}: {dry.stderr}"


def test_every_url_make_run_prints_answers(served: Served) -> None:
    port = served.base_url.rsplit(":", 1)[1]
    printed = subprocess.run(
        ["make", "-n", "serve", "HOST=127.0.0.1", f"PORT={port}"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    urls = re.findall(r"http://[^\s)\"]+", printed)
    assert len(urls) >= 5, printed
    with httpx2.Client(follow_redirects=True, timeout=10) as client:
        answers = {url: client.get(url).status_code for url in urls}
    assert set(answers.values()) == {200}, answers


@pytest.mark.parametrize(("where", "code"), blocks("python"), ids=[where for where, _ in blocks("python")])
def test_route_rows_in_the_docs_are_route_rows(where: str, code: str) -> None:
    """A route table row shown in the docs builds a Route as written (its fields, their order)."""
    from api.routes import LIST, Route

    row = eval(code.strip().rstrip(","), {"Route": Route, "LIST": LIST})  # our own docs
    assert isinstance(row, Route), where
