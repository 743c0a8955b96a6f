"""Load demo data into the configured database (idempotent): `python -m api.demo`."""

from __future__ import annotations

import psycopg

from api.settings import settings


def main() -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("select 1")
    print("demo data: nothing to load yet")


if __name__ == "__main__":
    main()
