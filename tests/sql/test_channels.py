"""The product's NOTIFY channels have secret names: a client role can neither speak on them nor listen.

NOTIFY and LISTEN take no privilege in PostgreSQL: any role may use any channel it can name.
So the names end with a random suffix kept in app_private.channels, and only the API's login
role learns them (app.listen_channels). What reaches the API's listeners when a client role
speaks on the old names is tested with the listeners themselves (tests/api/test_notification_stream.py,
tests/api/test_catalog_cache.py).
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from tests.fix_db import As


def test_the_api_learns_each_channel_with_the_secret_suffix(
    owner: psycopg.Connection[Any], direct_app_url: str
) -> None:
    (suffix,) = owner.execute("select suffix from app_private.channels").fetchone()  # type: ignore[misc]

    with psycopg.connect(direct_app_url) as conn:
        (names,) = conn.execute("select app.listen_channels()").fetchone()  # type: ignore[misc]

    assert re.fullmatch("[0-9a-f]{24}", suffix)
    assert names == {"notifications": f"nexus_notifications_{suffix}", "catalog": f"nexus_catalog_{suffix}"}
    assert owner.execute("select count(*) from app_private.channels").fetchone() == (1,)


@pytest.mark.parametrize(
    "query",
    [
        "select suffix from app_private.channels",
        "select app.listen_channels()",
        "select app_private.channel('notifications')",
    ],
)
def test_the_analyst_cannot_learn_the_names(analyst_url: str, query: str) -> None:
    with psycopg.connect(analyst_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as denied:
        conn.execute(query)

    assert denied.value.sqlstate == "42501"


@pytest.mark.parametrize("role", ["anon", "guest", "host", "admin", "api_internal"])
def test_no_role_the_api_switches_to_can_learn_the_names(as_role: As, role: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as denied:
        as_role(role).execute("select app.listen_channels()")

    assert denied.value.sqlstate == "42501"
