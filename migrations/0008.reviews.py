"""0008 reviews: see the block comment at the top of sql/schema/0008_reviews.sql."""

from api.migrate import sql_step

steps = [sql_step("schema/0008_reviews.sql")]
__depends__ = {"0007.payments"}
