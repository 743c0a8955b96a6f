"""0010 notifications: see the block comment at the top of sql/schema/0010_notifications.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0010_notifications.sql")]
__depends__ = {"0009.messages"}
