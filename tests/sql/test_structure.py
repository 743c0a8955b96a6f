"""Structure tests over the catalog: the house rules, checked on the real database.

They must stay green as the schema grows: every new table, column, function and role
is held to them automatically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

CLIENT_ROLES = ("anon", "guest", "host", "admin", "analyst", "authenticator", "api_internal")


def rows(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    return conn.execute(query).fetchall()


def test_rls_enabled_and_forced_on_every_table(owner: psycopg.Connection[Any]) -> None:
    bad = rows(
        owner,
        """select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname in ('app', 'app_private') and c.relkind in ('r', 'p')
             and not (c.relrowsecurity and c.relforcerowsecurity)""",
    )
    assert bad == []


def test_only_superusers_bypass_rls(owner: psycopg.Connection[Any]) -> None:
    assert rows(owner, "select rolname from pg_roles where rolbypassrls and not rolsuper") == []


def test_client_roles_cannot_log_in_except_authenticator_and_analyst(owner: psycopg.Connection[Any]) -> None:
    login = dict(
        owner.execute(
            "select rolname, rolcanlogin from pg_roles where rolname = any(%s)", (list(CLIENT_ROLES),)
        ).fetchall()
    )
    assert login == {
        "anon": False,
        "guest": False,
        "host": False,
        "admin": False,
        "api_internal": False,
        "analyst": True,
        "authenticator": True,
    }


def test_authenticator_owns_nothing_and_inherits_nothing(owner: psycopg.Connection[Any]) -> None:
    owned = rows(
        owner,
        """select c.relname from pg_class c join pg_roles r on r.oid = c.relowner where r.rolname = 'authenticator'
           union all select p.proname from pg_proc p join pg_roles r on r.oid = p.proowner
           where r.rolname = 'authenticator'""",
    )
    assert owned == []
    assert rows(
        owner, "select rolinherit, rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = 'authenticator'"
    ) == [(False, False, False, False)]
    members = {
        r
        for (r,) in rows(
            owner,
            """select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid
                                            join pg_roles u on u.oid = m.member where u.rolname = 'authenticator'""",
        )
    }
    assert members == {"anon", "guest", "host", "admin", "api_internal"}


def test_analyst_is_read_only_and_bounded(owner: psycopg.Connection[Any]) -> None:
    (config,) = rows(owner, "select rolconfig from pg_roles where rolname = 'analyst'")[0]
    assert "default_transaction_read_only=on" in config
    assert any(c.startswith("statement_timeout=") for c in config)


# How many SECURITY DEFINER functions the project has. A function is SECURITY INVOKER unless it
# must act past the calling role's grants or policies; a new definer is a conscious choice:
# give its reason in its comment ("Security definer: ...") and change this number.
# 78 = 64 + calendar sync's seven (the export, its URL and rotation, three feed operations, the token
# trigger) + the map's three (the public point's trigger, the amenity slugs' trigger, the facets)
# + reconciliation's four (its list, its runs, a run on demand, resolving a difference).
SECURITY_DEFINER_COUNT = 78


def test_security_definer_functions_say_why_and_pin_search_path(owner: psycopg.Connection[Any]) -> None:
    """Every SECURITY DEFINER function says why in its comment and pins search_path (pg_temp last, so no
    temporary object shadows a name); their number is pinned, and a failure lists them all."""
    definers = rows(
        owner,
        """select p.oid::regprocedure::text, coalesce(obj_description(p.oid, 'pg_proc'), ''),
                  exists (select from unnest(coalesce(p.proconfig, '{}')) c where c like 'search_path=%, pg_temp')
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('api', 'app', 'app_private', 'analytics') and p.prosecdef
             and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')
           order by 1""",
    )
    unexplained = [name for name, comment, _ in definers if "Security definer: " not in comment]
    unpinned = [name for name, _, pinned in definers if not pinned]
    assert unexplained == [], "a SECURITY DEFINER function's comment must say why: 'Security definer: <reason>'"
    assert unpinned == [], "a SECURITY DEFINER function must pin search_path, pg_temp last"
    names = "\n".join(name for name, _, _ in definers)
    assert len(definers) == SECURITY_DEFINER_COUNT, f"{len(definers)} SECURITY DEFINER functions:\n{names}"


def test_security_definer_only_where_a_client_role_calls_in(owner: psycopg.Connection[Any]) -> None:
    """A definer that only the owner ever runs adds nothing: a function no other role may execute,
    or a trigger function on tables no other role may write (triggers fire as the writer)."""
    redundant = rows(
        owner,
        """select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('api', 'app', 'app_private', 'analytics') and p.prosecdef
             and case when p.prorettype = 'trigger'::regtype
                 then not exists (
                   select from pg_trigger t, pg_roles r
                   where t.tgfoid = p.oid and not t.tgisinternal and r.oid <> p.proowner
                     and not r.rolsuper and r.rolname !~ '^pg_'
                     and (has_table_privilege(r.oid, t.tgrelid, 'insert, update, delete, truncate')
                          or has_any_column_privilege(r.oid, t.tgrelid, 'insert, update')))
                 else not exists (select from aclexplode(p.proacl) a where a.grantee <> p.proowner) end
           order by 1""",
    )
    assert redundant == []


def test_nothing_executable_by_public(owner: psycopg.Connection[Any]) -> None:
    bad = rows(
        owner,
        """select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('api', 'app', 'app_private', 'analytics')
             and (p.proacl is null or exists (select from aclexplode(p.proacl) a where a.grantee = 0 and a.privilege_type = 'EXECUTE'))""",
    )
    assert bad == []


def test_app_private_is_out_of_reach_of_clients(owner: psycopg.Connection[Any]) -> None:
    for role in CLIENT_ROLES:
        (usage,) = rows(owner, f"select has_schema_privilege('{role}', 'app_private', 'usage')")[0]
        assert usage is False, role


def test_analyst_reads_only_analytics(owner: psycopg.Connection[Any]) -> None:
    bad = rows(
        owner,
        """select table_schema || '.' || table_name || ':' || privilege_type from information_schema.role_table_grants
           where grantee = 'analyst' and (table_schema <> 'analytics' or privilege_type <> 'SELECT')""",
    )
    assert bad == []
    for schema in ("app", "app_private", "api"):
        (usage,) = rows(owner, f"select has_schema_privilege('analyst', '{schema}', 'usage')")[0]
        assert usage is False, schema


def test_public_schema_grants_nothing(owner: psycopg.Connection[Any]) -> None:
    (create, usage) = rows(
        owner,
        "select has_schema_privilege('anon', 'public', 'create'), has_schema_privilege('anon', 'public', 'usage')",
    )[0]
    assert (create, usage) == (False, False)


def test_pg_stat_statements_is_the_owners_alone(owner: psycopg.Connection[Any], as_role: Any) -> None:
    """The DBA's view of every role's statements (created as in the local cluster); no client role reaches it."""
    if rows(owner, "select to_regclass('extensions.pg_stat_statements')") == [(None,)]:
        pytest.skip("pg_stat_statements is not in this database (NEXUS_TEST_DATABASE_URL without it)")
    as_role("anon").execute("select api.category_list()")
    counted = rows(
        owner,
        """select calls > 0 from extensions.pg_stat_statements
           where query = 'select api.category_list()' and userid = 'anon'::regrole""",
    )
    assert counted == [(True,)]  # another role's statement, its text too (pg_read_all_stats)
    for role in CLIENT_ROLES:
        (usage,) = rows(owner, f"select has_schema_privilege('{role}', 'extensions', 'usage')")[0]
        assert usage is False, role


def test_every_table_column_function_view_and_role_has_a_comment(owner: psycopg.Connection[Any]) -> None:
    missing = rows(
        owner,
        """select 'table ' || c.oid::regclass from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname in ('app', 'app_private', 'analytics') and c.relkind in ('r', 'p', 'v', 'm')
             and obj_description(c.oid, 'pg_class') is null
           union all
           select 'column ' || a.attrelid::regclass || '.' || a.attname from pg_attribute a
           join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
           where n.nspname in ('app', 'app_private', 'analytics') and c.relkind in ('r', 'p', 'v', 'm')
             and a.attnum > 0 and not a.attisdropped and col_description(a.attrelid, a.attnum) is null
           union all
           select 'function ' || p.oid::regprocedure from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('api', 'app', 'app_private', 'analytics')
             and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')
             and obj_description(p.oid, 'pg_proc') is null
           union all
           select 'role ' || rolname from pg_roles
           where rolname = any(array['anon', 'guest', 'host', 'admin', 'analyst', 'authenticator', 'api_internal'])
             and shobj_description(oid, 'pg_authid') is null""",
    )
    assert missing == []


def test_tables_never_depend_on_project_functions(owner: psycopg.Connection[Any]) -> None:
    """Defaults, generated columns and checks use built-ins only: re-applying functions must never touch a table."""
    bad = rows(
        owner,
        """select d.classid::regclass || ' ' || d.objid || ' -> ' || p.oid::regprocedure
           from pg_depend d join pg_proc p on p.oid = d.refobjid join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('api', 'app', 'app_private', 'analytics')
             and d.classid in ('pg_attrdef'::regclass, 'pg_constraint'::regclass)""",
    )
    assert bad == []


def test_migrating_twice_changes_nothing(owner_url: str, owner: psycopg.Connection[Any]) -> None:
    from api.migrate import migrate

    snapshot = """select md5(string_agg(x, ',' order by x)) from (
        select p.oid::regprocedure::text || md5(p.prosrc) || coalesce(p.proacl::text, '') as x
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('api', 'app', 'app_private')
        union all select schemaname || tablename || policyname || coalesce(qual, '') || coalesce(with_check, '') from pg_policies
        union all select c.relname || coalesce(c.relacl::text, '') from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('app', 'app_private', 'analytics')) s"""
    before = rows(owner, snapshot)
    assert migrate(owner_url) == []
    assert rows(owner, snapshot) == before


def test_every_list_returns_the_one_page_type(owner: psycopg.Connection[Any]) -> None:
    """Paginated routes call functions that return app.page (built by app.page_window and app.page)."""
    from api.routes import ROUTES

    listed = sorted({r.function for r in ROUTES if r.page})
    returning = dict(
        owner.execute(
            """select n.nspname || '.' || p.proname, p.prorettype = 'app.page'::regtype
               from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'api'"""
        ).fetchall()
    )
    assert listed and {f: returning.get(f) for f in listed} == dict.fromkeys(listed, True)
    assert {f for f, is_page in returning.items() if is_page} == set(listed)


def test_the_route_table_repeats_nothing_the_database_says(owner: psycopg.Connection[Any]) -> None:
    """A route row is method, path, function and how to call it: who may call it is its function's
    EXECUTE grants (sql/policies/), its rate class the contract's (app.api_operation), both read at startup."""
    import dataclasses

    from api.routes import ROUTES, Route

    said_in_sql = {name for name in {f.name for f in dataclasses.fields(Route)} | set(dir(Route)) if "role" in name}
    said_in_sql |= {name for name in dir(Route) if name.startswith("rate")}
    granted = dict(
        owner.execute(
            """select n.nspname || '.' || p.proname, bool_or(has_function_privilege(r, p.oid, 'execute'))
               from pg_proc p join pg_namespace n on n.oid = p.pronamespace
               cross join unnest(array['anon', 'guest', 'host', 'admin', 'api_internal']) r
               where n.nspname = 'api' group by 1"""
        ).fetchall()
    )
    declared = {f for (f,) in owner.execute("select function from api.contract_operations").fetchall()}

    assert said_in_sql == set(), "say who may call a route with a grant, and its rate class with app.api_operation"
    assert [r.function for r in ROUTES if not granted.get(r.function)] == [], "no role may call these: grant them"
    assert [r.function for r in ROUTES if r.function not in declared] == [], "declare these with app.api_operation"


def test_platform_fee_percent_from_the_environment_lands_in_the_database(
    owner_url: str, owner: psycopg.Connection[Any]
) -> None:
    import os
    import subprocess
    import sys

    def migrate_with(fee: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PLATFORM_FEE_PERCENT": fee}
        return subprocess.run([sys.executable, "-m", "api.migrate", owner_url], env=env, capture_output=True, text=True)

    try:
        assert migrate_with("12.5").returncode == 0
        assert rows(owner, "select platform_fee_percent::text from app_private.payment_settings") == [("12.50",)]
        refused = migrate_with("80")
        assert refused.returncode != 0 and "platform_fee_percent" in refused.stderr
    finally:
        owner.execute("update app_private.payment_settings set platform_fee_percent = 10")


def test_each_file_number_is_used_once_per_folder() -> None:
    """sql/CONVENTIONS.md: a number is one domain; two files of one folder never share it."""
    sql = Path(__file__).resolve().parents[2] / "sql"
    numbers = [(path.parent.name, path.name.split("_", 1)[0]) for path in sql.glob("*/*.sql")]
    assert len(numbers) > 40
    assert sorted({n for n in numbers if numbers.count(n) > 1}) == []
