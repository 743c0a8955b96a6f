"""0001 foundation: schemas, roles, extensions, default-deny (sql/schema/0001_foundation.sql)."""

from api.migrate import sql_step

steps = [sql_step("schema/0001_foundation.sql")]
