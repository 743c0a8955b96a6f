"""0012 rate limits: see the block comment at the top of sql/schema/0012_rate_limits.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0012_rate_limits.sql")]
__depends__ = {"0011.admin"}
