"""0001 foundation: see the block comment at the top of sql/schema/0001_foundation.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0001_foundation.sql")]
