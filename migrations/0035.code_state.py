"""0035 code state: see the block comment at the top of sql/schema/0035_code_state.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0035_code_state.sql")]
__depends__ = {"0034.reconciliation"}
