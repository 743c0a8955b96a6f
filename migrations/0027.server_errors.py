"""0027 server errors: see the block comment at the top of sql/schema/0027_server_errors.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0027_server_errors.sql")]
__depends__ = {"0024.media"}
