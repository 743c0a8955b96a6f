"""0031 kept payouts: see the block comment at the top of sql/schema/0031_kept_payouts.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0031_kept_payouts.sql")]
__depends__ = {"0030.rate_feed"}
