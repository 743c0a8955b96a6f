"""0017 rate lease fix: see the block comment at the top of sql/schema/0017_rate_lease_fix.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0017_rate_lease_fix.sql")]
__depends__ = {"0016.page_cursor"}
