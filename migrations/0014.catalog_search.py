"""0014 catalog search: see the block comment at the top of sql/schema/0014_catalog_search.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0014_catalog_search.sql")]
__depends__ = {"0013.api_contract"}
