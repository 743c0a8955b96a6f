"""0029 calendar sync: see the block comment at the top of sql/schema/0029_calendar_sync.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0029_calendar_sync.sql")]
__depends__ = {"0027.server_errors"}
