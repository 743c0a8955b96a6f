"""0013 the API contract: see the block comment at the top of sql/schema/0013_api_contract.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0013_api_contract.sql")]
__depends__ = {"0012.rate_limits"}
