"""0016 page cursor: see the block comment at the top of sql/schema/0016_page_cursor.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0016_page_cursor.sql")]
__depends__ = {"0015.rate_lease"}
