"""0018 catalog counts: see the block comment at the top of sql/schema/0018_catalog_counts.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0018_catalog_counts.sql")]
__depends__ = {"0017.rate_lease_fix"}
