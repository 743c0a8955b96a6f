/*
 * Analytics: the analyst reads the curated views (sql/views/40_analytics.sql, 41_money.sql, 50_reviews.sql) and nothing else.
 */

grant select on analytics.listings, analytics.bookings, analytics.revenue_daily, analytics.occupancy_monthly,
  analytics.payments, analytics.payouts, analytics.money_daily, analytics.reviews_monthly
  to analyst;
