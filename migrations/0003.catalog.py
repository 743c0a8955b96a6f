"""0003 catalog: see the block comment at the top of sql/schema/0003_catalog.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0003_catalog.sql")]
__depends__ = {"0002.accounts"}
