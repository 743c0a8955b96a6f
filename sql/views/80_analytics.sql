/*
 * Analytics: the analyst's whole world. Curated views, read-only, no personal data.
 *
 * The views run with the owner's rights (so they see every row through the owner's
 * all_as_owner policy) and expose only what analysis needs: no names, emails, phones,
 * guest or host ids, messages or anything from app_private. The analyst role has
 * USAGE on this schema and SELECT on these views, nothing else; its sessions are
 * read-only with a statement timeout (see sql/schema/0001_foundation.sql). The grants are
 * in sql/policies/80_analytics.sql. Views are re-created on every migrate, after the
 * functions and before the policies.
 */

create view analytics.listings as
select p.id as listing_id, c.slug as category, p.location, p.price_per_night, p.currency, p.max_guests,
       p.cancellation_policy, p.published, p.rating_avg, p.rating_count,
       (select count(*) from app.product_amenities a where a.product_id = p.id) as amenity_count,
       p.created_at
from app.products p
join app.categories c on c.id = p.category_id;
comment on view analytics.listings is 'One row per listing: category, place, price, capacity, policy, rating. No host identity.';
comment on column analytics.listings.listing_id is 'Listing id.';
comment on column analytics.listings.category is 'Category slug.';
comment on column analytics.listings.location is 'Free-text place of the listing.';
comment on column analytics.listings.price_per_night is 'Price per night in currency.';
comment on column analytics.listings.currency is 'ISO 4217 code.';
comment on column analytics.listings.max_guests is 'Capacity.';
comment on column analytics.listings.cancellation_policy is 'flexible, moderate or strict.';
comment on column analytics.listings.published is 'Whether the listing is public.';
comment on column analytics.listings.rating_avg is 'Average review rating (0 when none).';
comment on column analytics.listings.rating_count is 'Number of reviews.';
comment on column analytics.listings.amenity_count is 'How many amenities the listing offers.';
comment on column analytics.listings.created_at is 'When listed.';

create view analytics.bookings as
select b.id as booking_id, b.product_id as listing_id, c.slug as category, b.status, b.start_date, b.end_date,
       b.nights, b.guests, b.price_per_night, b.total_price, b.refund_amount, b.currency,
       b.cancellation_policy, b.created_at, b.confirmed_at, b.completed_at, b.canceled_at,
       (b.canceled_by = b.host_id) as canceled_by_host
from app.bookings b
join app.products p on p.id = b.product_id
join app.categories c on c.id = p.category_id;
comment on view analytics.bookings is 'One row per booking with its money and lifecycle. No guest or host identity, no cancellation reasons (free text).';
comment on column analytics.bookings.booking_id is 'Booking id.';
comment on column analytics.bookings.listing_id is 'Listing booked.';
comment on column analytics.bookings.category is 'Category slug of the listing.';
comment on column analytics.bookings.status is 'pending, confirmed, completed or canceled.';
comment on column analytics.bookings.start_date is 'Check-in date.';
comment on column analytics.bookings.end_date is 'Check-out date (not a night of the stay).';
comment on column analytics.bookings.nights is 'Nights booked.';
comment on column analytics.bookings.guests is 'Number of guests.';
comment on column analytics.bookings.price_per_night is 'Price per night at booking time.';
comment on column analytics.bookings.total_price is 'Total price.';
comment on column analytics.bookings.refund_amount is 'Refund owed on cancellation (null when not canceled).';
comment on column analytics.bookings.currency is 'ISO 4217 code of the amounts.';
comment on column analytics.bookings.cancellation_policy is 'Policy in force for this booking.';
comment on column analytics.bookings.created_at is 'When booked.';
comment on column analytics.bookings.confirmed_at is 'When confirmed.';
comment on column analytics.bookings.completed_at is 'When completed.';
comment on column analytics.bookings.canceled_at is 'When canceled.';
comment on column analytics.bookings.canceled_by_host is 'True when the host canceled, false when the guest (or an admin for them) did; null when not canceled.';

create view analytics.revenue_daily as
select (b.created_at at time zone 'UTC')::date as day, b.currency,
       count(*) as bookings,
       count(*) filter (where b.status in ('confirmed', 'completed')) as paid_bookings,
       coalesce(sum(b.total_price) filter (where b.status in ('confirmed', 'completed')), 0) as gross,
       coalesce(sum(b.total_price - b.refund_amount) filter (where b.status = 'canceled'), 0) as retained_on_cancellation,
       coalesce(sum(b.refund_amount) filter (where b.status = 'canceled'), 0) as refunds
from app.bookings b
group by 1, 2;
comment on view analytics.revenue_daily is 'Bookings and money per UTC day of booking and currency (amounts are never summed across currencies).';
comment on column analytics.revenue_daily.day is 'UTC day the bookings were made.';
comment on column analytics.revenue_daily.currency is 'ISO 4217 code.';
comment on column analytics.revenue_daily.bookings is 'Bookings made that day, any status.';
comment on column analytics.revenue_daily.paid_bookings is 'Of those, confirmed or completed.';
comment on column analytics.revenue_daily.gross is 'Total price of confirmed and completed bookings.';
comment on column analytics.revenue_daily.retained_on_cancellation is 'What canceled bookings keep after refunds, per policy.';
comment on column analytics.revenue_daily.refunds is 'Refunds owed on canceled bookings.';

create view analytics.occupancy_monthly as
select n.listing_id, n.month, n.nights_booked, m.nights_in_month,
       round(n.nights_booked::numeric / m.nights_in_month, 4) as occupancy
from (select b.product_id as listing_id, date_trunc('month', d)::date as month, count(*) as nights_booked
        from app.bookings b
        cross join lateral generate_series(b.start_date, b.end_date - 1, interval '1 day') d
       where b.status in ('confirmed', 'completed')
       group by 1, 2) n
cross join lateral (select ((n.month + interval '1 month')::date - n.month) as nights_in_month) m;
comment on view analytics.occupancy_monthly is 'Booked nights per listing and calendar month (confirmed and completed stays), and occupancy = nights booked / nights in the month.';
comment on column analytics.occupancy_monthly.listing_id is 'Listing.';
comment on column analytics.occupancy_monthly.month is 'First day of the month.';
comment on column analytics.occupancy_monthly.nights_booked is 'Nights of the month occupied by confirmed or completed stays.';
comment on column analytics.occupancy_monthly.nights_in_month is 'Nights in that month.';
comment on column analytics.occupancy_monthly.occupancy is 'nights_booked / nights_in_month (0 to 1).';
