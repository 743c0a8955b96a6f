"""0006 house order: see the block comment at the top of sql/schema/0006_house_order.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0006_house_order.sql")]
__depends__ = {"0005.hardening"}
