"""Apply the database: versioned table changes, then functions and policies.

`sql/schema/NNNN_*.sql` are forward-only table changes, each applied once by the
yoyo migration of the same number in `migrations/`. The rest is the single source of
truth for code and access, dropped and re-created on every migrate in one transaction
(`migrations/post-apply.py`), in this order, each folder's files by number:

    sql/functions/   functions and triggers, one file per domain
    sql/views/       views (the analysts' schema)
    sql/policies/    row-level security policies and every grant
    sql/roles/       session settings of the login roles

so what a reviewer reads there is exactly what the database runs.

Usage: python -m api.migrate [DATABASE_URL]
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations, step
from yoyo.migrations import StepBase

ROOT = Path(__file__).resolve().parent.parent
SQL = ROOT / "sql"
MIGRATIONS = ROOT / "migrations"

# Drop every function, view and policy the project owns, and every grant on its
# tables, so that re-applying sql/functions and sql/policies leaves nothing stale.
# Tables, their data, constraints and indexes are untouched. Column defaults and
# generated columns never call project functions (a structure test pins this),
# so the cascade below cannot reach into a table.
RESET = """
do $$
declare
  v record;
begin
  -- The API contract is declared again by sql/functions (app.api_schema, app.api_operation).
  if to_regclass('api.contract_operations') is not null then
    delete from api.contract_operations;
    delete from api.contract_schemas;
  end if;
  for v in
    select format('drop policy %I on %I.%I', p.policyname, p.schemaname, p.tablename) as cmd
    from pg_policies p where p.schemaname in ('app', 'app_private')
  loop execute v.cmd; end loop;
  for v in
    select format('drop view if exists %I.%I cascade', schemaname, viewname) as cmd
    from pg_views where schemaname in ('analytics', 'api', 'app')
  loop execute v.cmd; end loop;
  for v in
    select format('drop %s if exists %s cascade',
                  case p.prokind when 'p' then 'procedure' else 'function' end,
                  p.oid::regprocedure) as cmd
    from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('api', 'app', 'app_private', 'analytics')
      and not exists (select from pg_depend d
                      where d.objid = p.oid and d.deptype = 'e')
  loop execute v.cmd; end loop;
  for v in
    select format('revoke all on all tables in schema %I from anon, guest, host, admin, analyst', s) as cmd
    from unnest(array['app', 'app_private', 'analytics', 'api']) s
    union all
    select format('revoke all on all sequences in schema %I from anon, guest, host, admin, analyst', s)
    from unnest(array['app', 'app_private']) s
  loop execute v.cmd; end loop;
end
$$;
"""


def sql_step(relative: str) -> StepBase:
    """A yoyo step that runs one file under sql/ as a whole (dollar quotes intact)."""
    text = (SQL / relative).read_text()

    def apply(conn: psycopg.Connection) -> None:
        conn.execute(text.encode())

    return step(apply)


CODE_FOLDERS = ("functions", "views", "policies", "roles")


def code_steps() -> list[StepBase]:
    """The post-apply steps: reset, then each of CODE_FOLDERS in order, its files by number."""
    files = [path for folder in CODE_FOLDERS for path in sorted((SQL / folder).glob("*.sql"))]

    def apply(conn: psycopg.Connection) -> None:
        conn.execute(RESET.encode())
        for path in files:
            try:
                conn.execute(path.read_bytes())
            except psycopg.Error as exc:
                raise RuntimeError(f"{path.relative_to(ROOT)}: {exc}") from exc
        # Derived tables, rebuilt once the policies exist (under forced row-level security the
        # owner sees no row before them) and in this transaction, which holds their triggers'
        # locks since the reset: no write can fall between the rebuild and the triggers.
        conn.execute(b"select app.catalog_counts_rebuild()")

    return [step(apply)]


def prepare(superuser_url: str) -> None:
    """What only a superuser may do in a database before its first migrate: sql/superuser.sql
    (PostGIS, not a trusted extension). `superuser_url` connects to that database as a superuser."""
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute((SQL / "superuser.sql").read_bytes())


def yoyo_url(url: str) -> str:
    """yoyo needs the psycopg 3 driver named in the scheme."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def migrate(url: str) -> list[str]:
    """Apply pending table changes, then re-create the code. Returns the applied ids."""
    backend = get_backend(yoyo_url(url))
    migrations = read_migrations(str(MIGRATIONS))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations_only(pending)
        backend.run_post_apply(migrations)
    return [m.id for m in pending]


def pending(url: str) -> list[str]:
    """Ids of versioned migrations not yet applied (for /readyz)."""
    backend = get_backend(yoyo_url(url))
    return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS)))]


def main() -> None:
    from api.settings import settings

    url = sys.argv[1] if len(sys.argv) > 1 else settings.database_url
    applied = migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        for role, password in (
            ("authenticator", settings.authenticator_password),
            ("analyst", settings.analyst_password),
        ):
            if password:
                conn.execute(
                    psycopg.sql.SQL("alter role {} password {}").format(
                        psycopg.sql.Identifier(role), psycopg.sql.Literal(password)
                    )
                )
        if settings.platform_fee_percent:
            # The fee lives in the database (app_private.payment_settings); this is how a deployment sets it.
            conn.execute(
                "update app_private.payment_settings set platform_fee_percent = %s", [settings.platform_fee_percent]
            )
    print(f"migrated: {len(applied)} new ({', '.join(applied) or 'none'}); functions and policies re-applied")


if __name__ == "__main__":
    main()
