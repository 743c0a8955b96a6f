"""0024 media: see the block comment at the top of sql/schema/0024_media.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0024_media.sql")]
__depends__ = {"0023.owner_as_client"}
