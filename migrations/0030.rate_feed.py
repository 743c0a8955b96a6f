"""0030 rate feed: see the block comment at the top of sql/schema/0030_rate_feed.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0030_rate_feed.sql")]
__depends__ = {"0027.server_errors"}
