"""0009 messages: see the block comment at the top of sql/schema/0009_messages.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0009_messages.sql")]
__depends__ = {"0008.reviews"}
