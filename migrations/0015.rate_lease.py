"""0015 rate-limit leases: see the block comment at the top of sql/schema/0015_rate_lease.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0015_rate_lease.sql")]
__depends__ = {"0013.api_contract"}
