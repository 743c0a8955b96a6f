"""0011 admin: see the block comment at the top of sql/schema/0011_admin.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0011_admin.sql")]
__depends__ = {"0010.notifications"}
