"""0005 hardening: see the block comment at the top of sql/schema/0005_hardening.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0005_hardening.sql")]
__depends__ = {"0004.bookings"}
