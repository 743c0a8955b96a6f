"""0034 reconciliation: see the block comment at the top of sql/schema/0034_reconciliation.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0034_reconciliation.sql")]
__depends__ = {"0033.disputes"}
