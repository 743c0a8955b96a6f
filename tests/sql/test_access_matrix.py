"""Every table, role and command, read from the catalog and pinned in tests/sql/access_matrix.json.

What each role may do to each table is part of the design: a change to it (a new table, a new
grant, a role gaining a command) fails here until the pinned matrix is updated on purpose:

    NEXUS_PIN_ACCESS_MATRIX=1 python -m pytest tests/sql/test_access_matrix.py

Privileges say whether a command can be attempted at all; row-level security (pinned by
tests/sql/test_access.py) then decides which rows. The API's login role, `authenticator`,
must hold nothing on any table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psycopg

PINNED = Path(__file__).with_name("access_matrix.json")
ROLES = ("anon", "guest", "host", "admin", "analyst", "authenticator", "api_internal")
COMMANDS = ("select", "insert", "update", "delete")


def matrix(owner: psycopg.Connection[Any]) -> dict[str, dict[str, list[str]]]:
    rows = owner.execute(
        """select n.nspname || '.' || c.relname, r.rolname, p.cmd
             from pg_class c
             join pg_namespace n on n.oid = c.relnamespace
             cross join unnest(%s::text[]) r(rolname)
             cross join unnest(%s::text[]) p(cmd)
            where n.nspname in ('app', 'app_private', 'analytics', 'procrastinate', 'api')
              and c.relkind in ('r', 'p', 'v', 'm')
              and (has_table_privilege(r.rolname, c.oid, p.cmd)
                   -- a column grant (e.g. update (read_at)) counts as the command too
                   or case when p.cmd = 'delete' then false  -- no column privilege for delete
                           else exists (select from pg_attribute a
                                         where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                                           and has_column_privilege(r.rolname, c.oid, a.attnum, p.cmd)) end)
            order by 1, 2, 3""",
        (list(ROLES), list(COMMANDS)),
    ).fetchall()
    result: dict[str, dict[str, list[str]]] = {}
    for table, role, cmd in rows:
        result.setdefault(table, {}).setdefault(role, []).append(cmd)
    tables = [
        t
        for (t,) in owner.execute(
            """select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname in ('app', 'app_private', 'analytics', 'procrastinate', 'api') and c.relkind in ('r', 'p', 'v', 'm')"""
        )
    ]
    return {t: result.get(t, {}) for t in sorted(tables)}


def test_the_access_matrix_is_as_designed(owner: psycopg.Connection[Any]) -> None:
    actual = matrix(owner)
    if os.environ.get("NEXUS_PIN_ACCESS_MATRIX") == "1":
        PINNED.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(PINNED.read_text())

    assert actual == pinned, "the access matrix changed: review it, then pin it again (see the module docstring)"


def test_the_login_roles_hold_nothing(owner: psycopg.Connection[Any]) -> None:
    actual = matrix(owner)

    assert [t for t, roles in actual.items() if "authenticator" in roles] == []
    assert {t.split(".")[0] for t, roles in actual.items() if "analyst" in roles} == {"analytics"}
    assert [t for t, roles in actual.items() if t.startswith(("app_private.", "procrastinate.")) and roles] == []
