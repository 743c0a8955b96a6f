"""0032 ledger accounts: see the block comment at the top of sql/schema/0032_ledger_accounts.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0032_ledger_accounts.sql")]
__depends__ = {"0031.kept_payouts"}
