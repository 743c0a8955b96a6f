"""Build the benchmark database `nexus_bench` (make bench-data).

Creates the database on the local cluster as the superuser `postgres` (over the Unix
socket in .pg/run, as scripts/pg-local does), owned by `nexus`; migrates it with
api.migrate; loads bench/data.sql as the owner in one transaction, timing each step;
writes the published listing ids to bench/out/product_ids.txt for the detail workload.

Idempotent: the database comment records a hash of data.sql and of the table schema
files. When it matches, the load is skipped (the migration still runs, so new functions
land). When it differs, or with --force, the database is dropped and rebuilt.

Usage: python -m bench.data [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
DBNAME = os.environ.get("BENCH_DB", "nexus_bench")
RUN = ROOT / ".pg" / "run"
PORT = os.environ.get("PGPORT_LOCAL", "5432")
IDS_FILE = OUT / "product_ids.txt"
PRODUCTS = 100_000


# Indexes of the loaded tables that back no constraint (primary keys and unique keys stay).
SECONDARY_INDEXES = """
select pg_get_indexdef(i.indexrelid)
from pg_index i
where i.indrelid in ('app.products'::regclass, 'app.product_amenities'::regclass, 'app.product_photos'::regclass)
  and not exists (select from pg_constraint c where c.conindid = i.indexrelid)
order by i.indexrelid
"""


def superuser_url(db: str = "postgres") -> str:
    return f"postgresql://postgres@/{db}?host={RUN}&port={PORT}"


def owner_url(db: str = DBNAME) -> str:
    """The bench database as the owner `nexus` (what api.migrate and make psql use)."""
    return f"postgresql://nexus@/{db}?host={RUN}&port={PORT}"


def data_version() -> str:
    """A hash of what the data depends on: data.sql and the table migrations."""
    h = hashlib.sha256((BENCH / "data.sql").read_bytes())
    for path in sorted((ROOT / "sql" / "schema").glob("*.sql")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return "nexus bench data " + h.hexdigest()[:16]


def steps() -> list[tuple[str, str]]:
    """data.sql split at its `-- step: name` lines."""
    text = (BENCH / "data.sql").read_text()
    parts = re.split(r"^-- step: (.+)$", text, flags=re.M)
    return [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts), 2)]


def current_version(admin: psycopg.Connection) -> str | None:
    row = admin.execute(
        "select shobj_description(oid, 'pg_database') from pg_database where datname = %s", (DBNAME,)
    ).fetchone()
    if row is None:
        return None
    return row[0] or ""


def migrate() -> None:
    t = time.perf_counter()
    from api.migrate import migrate as run_migrations
    from api.migrate import prepare

    prepare(superuser_url(DBNAME))  # what only a superuser may do (PostGIS): sql/superuser.sql
    applied = run_migrations(owner_url())
    print(f"  migrate            {time.perf_counter() - t:6.1f} s  ({len(applied)} new migrations)")


def write_ids() -> None:
    """Every published listing id, in row-number order (published iff i % 20 <> 0)."""
    OUT.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(owner_url()) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "select md5('product:' || i)::uuid::text from generate_series(1, %s) i where i %% 20 <> 0 order by i",
                (PRODUCTS,),
            )
        ]
        (found,) = conn.execute(
            "select count(*) from app.products where published and id = any(%s::uuid[])", (ids,)
        ).fetchone() or (0,)
    if found != len(ids):
        sys.exit(f"bench-data: {len(ids) - found} expected published listings are missing; run with --force")
    IDS_FILE.write_text("\n".join(ids) + "\n")


def build(force: bool) -> None:
    started = time.perf_counter()
    version = data_version()
    with psycopg.connect(superuser_url(), autocommit=True) as admin:
        have = current_version(admin)
        if have == version and not force:
            print(f"bench-data: {DBNAME} already holds this data set ({version}); migrating only")
            migrate()
            write_ids()
            return
        if have is not None:
            print(f"bench-data: dropping {DBNAME} ({'forced' if force else 'data set changed'})")
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(DBNAME)))
        admin.execute(sql.SQL("create database {} owner nexus").format(sql.Identifier(DBNAME)))
    print(f"bench-data: building {DBNAME}")
    migrate()
    with psycopg.connect(owner_url()) as conn:
        conn.execute("set maintenance_work_mem = '256MB'")
        conn.execute("set work_mem = '64MB'")
        conn.execute("set jit = off")
        # Secondary indexes are built once after the load rather than row by row during
        # it (much faster for the GIN ones); the definitions are the schema's own.
        indexes = [r[0] for r in conn.execute(SECONDARY_INDEXES)]
        for (ddl,) in conn.execute(
            SECONDARY_INDEXES.replace("pg_get_indexdef(i.indexrelid)", "'drop index ' || i.indexrelid::regclass")
        ).fetchall():
            conn.execute(ddl)
        for name, text in steps():
            t = time.perf_counter()
            if name == "analyze":
                for ddl in indexes:
                    conn.execute(ddl)
                print(f"  {'indexes':<18} {time.perf_counter() - t:6.1f} s")
                t = time.perf_counter()
            conn.execute(text.encode())
            print(f"  {name:<18} {time.perf_counter() - t:6.1f} s")
        conn.commit()
    # As autovacuum would leave a live table: hint bits set and the visibility map filled, so the
    # first benchmark after a build does not pay for them (VACUUM runs outside a transaction).
    with psycopg.connect(owner_url(), autocommit=True) as conn:
        t = time.perf_counter()
        conn.execute(
            "vacuum (analyze) app.users, app.products, app.product_amenities, app.product_photos, app.product_addresses"
        )
        print(f"  {'vacuum':<18} {time.perf_counter() - t:6.1f} s")
    with psycopg.connect(owner_url()) as conn:
        counts = conn.execute(
            "select (select count(*) from app.users), (select count(*) from app.categories),"
            " (select count(*) from app.products), (select count(*) from app.products where published),"
            " (select count(*) from app.product_amenities), (select count(*) from app.product_photos)"
        ).fetchone()
    with psycopg.connect(superuser_url(), autocommit=True) as admin:
        admin.execute(sql.SQL("comment on database {} is {}").format(sql.Identifier(DBNAME), sql.Literal(version)))
    write_ids()
    assert counts is not None
    print(
        "bench-data: {} users, {} categories, {} listings ({} published), {} amenity links, {} photos".format(*counts)
    )
    print(f"bench-data: done in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="drop and rebuild even when already loaded")
    args = parser.parse_args()
    if not RUN.exists():
        sys.exit("bench-data: the local cluster is not running (scripts/pg-local start)")
    build(args.force)


if __name__ == "__main__":
    main()
