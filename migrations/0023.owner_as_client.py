"""0023 owner as client: see the block comment at the top of sql/schema/0023_owner_as_client.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0023_owner_as_client.sql")]
__depends__ = {"0021.analyst_limits"}
