"""0021 analyst limits: see the block comment at the top of sql/schema/0021_analyst_limits.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0021_analyst_limits.sql")]
__depends__ = {"0019.live_sessions"}
