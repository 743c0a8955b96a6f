"""0028 geo: see the block comment at the top of sql/schema/0028_geo.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0028_geo.sql")]
__depends__ = {"0027.server_errors"}
