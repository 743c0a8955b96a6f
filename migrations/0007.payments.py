"""0007 payments: see the block comment at the top of sql/schema/0007_payments.sql.

The job queue's tables and functions are procrastinate's own schema (at the version pinned
in pyproject.toml), created inside schema `procrastinate`; a procrastinate upgrade that
changes its schema comes with a migration of ours that applies its migration files.
"""

import psycopg
from procrastinate.schema import SchemaManager
from yoyo import step

from api.migrate import sql_step


def apply_queue_schema(conn: psycopg.Connection) -> None:
    conn.execute("set local search_path = procrastinate")
    conn.execute(SchemaManager.get_schema().encode())
    conn.execute("set local search_path to default")


steps = [sql_step("schema/0007_payments.sql"), step(apply_queue_schema)]
__depends__ = {"0006.house_order"}
