/*
 * Analytics: the analyst reads the curated views (sql/views/80_analytics.sql, 81_money.sql, 82_reviews.sql, 83_messages.sql) and nothing else.
 */

grant select on analytics.listings, analytics.bookings, analytics.revenue_daily, analytics.occupancy_monthly,
  analytics.payments, analytics.payouts, analytics.money_daily, analytics.reviews_monthly
  to analyst;
