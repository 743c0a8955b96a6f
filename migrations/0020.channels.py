"""0020 channels: see the block comment at the top of sql/schema/0020_channels.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0020_channels.sql")]
__depends__ = {"0019.live_sessions"}
