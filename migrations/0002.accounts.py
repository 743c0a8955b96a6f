"""0002 accounts: see the block comment at the top of sql/schema/0002_accounts.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0002_accounts.sql")]
__depends__ = {"0001.foundation"}
