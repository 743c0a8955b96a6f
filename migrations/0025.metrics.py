"""0025 metrics: see the block comment at the top of sql/schema/0025_metrics.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0025_metrics.sql")]
__depends__ = {"0024.media"}
