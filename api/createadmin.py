"""`make createadmin EMAIL=... PASSWORD=...`: app_private.create_admin(), as the owner."""

from __future__ import annotations

import sys

import psycopg

from api.settings import settings


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: python -m api.createadmin EMAIL PASSWORD")
    email, password = sys.argv[1], sys.argv[2]
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            row = conn.execute("select app_private.create_admin(%s, %s)", (email, password)).fetchone()
    except psycopg.Error as exc:
        sys.exit(f"createadmin: {exc.diag.message_primary}")
    print(f"admin {email} ready (id {row[0] if row else '?'})")


if __name__ == "__main__":
    main()
