"""0019 live sessions: see the block comment at the top of sql/schema/0019_live_sessions.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0019_live_sessions.sql")]
__depends__ = {"0018.catalog_counts"}
