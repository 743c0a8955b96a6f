"""0022 operation rate: see the block comment at the top of sql/schema/0022_operation_rate.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0022_operation_rate.sql")]
__depends__ = {"0021.analyst_limits"}
