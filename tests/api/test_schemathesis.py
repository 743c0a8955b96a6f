"""Schemathesis against the live app: every operation, as anonymous, guest, host and admin.

The app is served on loopback (uvicorn, the real stack) with the payment stand-ins; the
`st` command line reads /openapi.json from it, generates requests from the document (valid
and invalid data) and applies every check it has (tests/api/schemathesis.toml): no server
error, documented status codes, content types, headers and schemas, and both directions of
the contract: a request the document calls valid is not refused with 400/422
(positive_data_acceptance), one it calls invalid is refused (negative_data_rejection). The
few operations where a rule cannot be said in OpenAPI 3.1 skip one check each, with the
reason, in that file. Every response is also checked by tests/fix_contract.py, in this
process. The run is bounded (examples per operation) and seeded, so CI repeats it.

Signed-in runs leave out the operations that can end the caller's own session (sign out
everywhere, close the account, become a host, an admin ending a user's sessions or
changing a user): schemathesis reuses ids it has seen, its own included, and after that
every later request of the run would be a 401. Two last runs, as a guest and as an admin,
take exactly those operations. The notification stream never ends by design (a signed-in
run would wait out each request's timeout): tests/api/test_notification_stream.py tests it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest

from api.settings import Settings
from tests.fix_users import MakeUser
from tests.loopback import LiveApp, Server

CONFIG = Path(__file__).with_name("schemathesis.toml")  # every check, and the few exceptions with their reasons
EXAMPLES = os.environ.get(
    "NEXUS_SCHEMATHESIS_EXAMPLES", "5"
)  # per operation and phase; --max-time would fuzz on until spent
SELF_ENDING = r"^/api/(token/revoke-all/|users/me/|users/me/become-host/|users/\{id\}/|users/\{id\}/end-sessions/)$"


@pytest.fixture(scope="module")
def live(pay_settings: Settings, owner_url: str) -> Iterator[LiveApp]:
    with psycopg.connect(owner_url, autocommit=True) as owner:
        (since,) = owner.execute("select coalesce(max(id), 0) from app_private.login_attempts").fetchone() or (0,)
        with Server(LiveApp(pay_settings), lifespan="on") as app:
            yield app
        # Its thousands of failed sign-ins came from 127.0.0.1: later loopback tests must not inherit the throttle.
        owner.execute("delete from app_private.login_attempts where id > %s", (since,))
        # The calendars it added name made-up hosts: later tests that run the worker must not fetch them.
        owner.execute("delete from app_private.calendar_feeds")


@pytest.mark.parametrize("run", ["anon", "guest", "host", "admin", "ending:guest", "ending:admin"])
def test_schemathesis_finds_nothing(live: LiveApp, make_user: MakeUser, run: str, tmp_path: Path) -> None:
    ending, _, role = run.rpartition(":")
    command = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{live.base_url}/openapi.json",
        "--max-examples",
        EXAMPLES,
        "--seed",
        "20261129",
        "--workers",
        "1",
        "--phases",
        os.environ.get("NEXUS_SCHEMATHESIS_PHASES", "examples,coverage,fuzzing"),
        "--request-timeout",
        "20",
        "--generation-database",
        "none",  # nothing carried between runs: the seed alone decides
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    if role != "anon":
        user = make_user(role)
        command += ["-H", f"Authorization: {user.auth['Authorization']}"]
        command += ["--include-path-regex" if ending else "--exclude-path-regex", SELF_ENDING]
        command += ["--exclude-path", "/api/notifications/stream"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    summary = done.stdout[-4000:]
    print(summary)
    assert done.returncode == 0, summary
    selected = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", done.stdout)
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert selected and cases, summary
    assert selected[1] == selected[3], "every selected operation was tested"
    assert cases[1] == cases[2]
    if role != "anon" and not ending:  # the run kept its session to the end: its requests were made as this role
        me = httpx2.get(f"{live.base_url}/api/users/me/", headers=user.auth)
        assert me.status_code == 200 and me.json()["role"] == role
