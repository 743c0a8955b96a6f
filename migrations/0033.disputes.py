"""0033 disputes: see the block comment at the top of sql/schema/0033_disputes.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0033_disputes.sql")]
__depends__ = {"0032.ledger_accounts"}
