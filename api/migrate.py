"""Apply the database: versioned table changes, then functions and policies.

`sql/schema/NNNN_*.sql` are forward-only table changes, each applied once by the
yoyo migration of the same number in `migrations/`. The rest is the single source of
truth for code and access, dropped and re-created in one transaction by a migrate that finds
them changed (`migrations/post-apply.py`), in this order, each folder's files by number:

    sql/functions/   functions and triggers, one file per domain
    sql/views/       views (the analysts' schema)
    sql/policies/    row-level security policies and every grant
    sql/roles/       session settings of the login roles

so what a reviewer reads there is exactly what the database runs.

A deploy locks as little as it can. Re-creating the code locks every table for the length of its
transaction, so it runs only when a migration ran or the code differs from what was last applied
(app_private.code_state holds a fingerprint of those folders): a deploy that changes no SQL takes
no lock at all. The catalog counts are rebuilt only when their definition changed. Each lock is
waited for at most LOCK_TIMEOUT (the requests queued behind a waiting migrate wait no longer);
a migrate that could not get one tries again, up to LOCK_ATTEMPTS times.

Usage: python -m api.migrate [--force] [DATABASE_URL]   (--force: re-apply the code even if unchanged)
"""

from __future__ import annotations

import hashlib
import sys
import time
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
LOCK_TIMEOUT = "1s"  # the longest a migrate waits for one lock (and makes the requests behind it wait)
LOCK_ATTEMPTS = 10


def code_files() -> list[Path]:
    return [path for folder in CODE_FOLDERS for path in sorted((SQL / folder).glob("*.sql"))]


def code_fingerprint() -> str:
    """SHA-256 of the code a post-apply re-creates: each file's path and text, and the reset."""
    digest = hashlib.sha256(RESET.encode())
    for path in code_files():
        digest.update(b"\0" + path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def code_steps() -> list[StepBase]:
    """The post-apply steps: reset, then each of CODE_FOLDERS in order, its files by number."""
    files = code_files()
    fingerprint = code_fingerprint()

    def apply(conn: psycopg.Connection) -> None:
        conn.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'".encode())
        conn.execute(RESET.encode())
        for path in files:
            try:
                conn.execute(path.read_bytes())
            except psycopg.Error as exc:
                raise RuntimeError(f"{path.relative_to(ROOT)}: {exc}") from exc
        # Derived tables, rebuilt once the policies exist (under forced row-level security the
        # owner sees no row before them) and in this transaction, which holds their triggers'
        # locks since the reset: no write can fall between the rebuild and the triggers. Only
        # when what they count changed: otherwise the triggers, re-created before any write could
        # pass them, have kept the counts exact.
        conn.execute(
            b"""select app.catalog_counts_rebuild() from app_private.code_state s
                 where s.counts_definition is distinct from app.catalog_counts_definition()"""
        )
        conn.execute(
            b"""update app_private.code_state
                   set fingerprint = %s, counts_definition = app.catalog_counts_definition(), applied_at = now()""",
            [fingerprint],
        )

    return [step(apply)]


def code_applied(url: str) -> bool:
    """Whether the code in this checkout is what the database last applied (app_private.code_state)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select to_regclass('app_private.code_state') is not null"
            " and exists (select from pg_policies where schemaname = 'app_private' and tablename = 'code_state')"
        ).fetchone()
        if not (row and row[0]):
            return False
        found = conn.execute("select fingerprint from app_private.code_state").fetchone()
    return found is not None and found[0] == code_fingerprint()


def lock_refused(exc: BaseException | None) -> bool:
    """The post-apply failed only because a lock was not granted within LOCK_TIMEOUT."""
    while exc is not None:
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return True
        exc = exc.__cause__
    return False


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


def migrate(url: str, force: bool = False) -> list[str]:
    """Apply pending table changes, then re-create the code if a change ran, the code changed, or
    `force`. Returns the applied ids."""
    backend = get_backend(yoyo_url(url))
    migrations = read_migrations(str(MIGRATIONS))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations_only(pending)
        if pending or force or not code_applied(url):
            for attempt in range(1, LOCK_ATTEMPTS + 1):
                try:
                    backend.run_post_apply(migrations)
                    break
                except Exception as exc:
                    if attempt == LOCK_ATTEMPTS or not lock_refused(exc):
                        raise
                    time.sleep(0.5 * attempt)
    return [m.id for m in pending]


def pending(url: str) -> list[str]:
    """Ids of versioned migrations not yet applied (for /readyz)."""
    backend = get_backend(yoyo_url(url))
    return [m.id for m in backend.to_apply(read_migrations(str(MIGRATIONS)))]


def main() -> None:
    from api.settings import settings

    force = "--force" in sys.argv[1:]
    args = [a for a in sys.argv[1:] if a != "--force"]
    url = args[0] if args else settings.database_url
    unchanged = not force and code_applied(url)
    applied = migrate(url, force=force)
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
    code = "code unchanged, not re-applied" if unchanged and not applied else "functions and policies re-applied"
    print(f"migrated: {len(applied)} new ({', '.join(applied) or 'none'}); {code}")


if __name__ == "__main__":
    main()
