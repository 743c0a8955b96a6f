"""0004 bookings: see the block comment at the top of sql/schema/0004_bookings.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0004_bookings.sql")]
__depends__ = {"0003.catalog"}
