/*
 * 0004 bookings: bookings, the availability calendar, booking settings, idempotency keys.
 *
 * Why: the seed's Booking (id, property -> product, user -> guest, start_date, end_date,
 * total_price, status, created_at) grown into the real thing. A stay is the half-open
 * range [start_date, end_date): the check-out day is free for the next guest.
 *
 * Guarantees after this file:
 *   - double bookings are impossible by construction, twice over:
 *       * app.calendar_entries holds every range that is currently taken on a listing
 *         (pending and confirmed bookings, and host blocks) under
 *         `exclude using gist (product_id with =, stay with &&)`;
 *       * app.bookings itself excludes overlapping pending/confirmed stays of one listing
 *         (a partial exclusion constraint), so even a DBA writing by hand cannot double-book;
 *   - the total is price_per_night x nights (no fees are charged; the price is a snapshot
 *     of the listing's price when booked), checked by a constraint;
 *   - status and its timestamps agree (a canceled booking has canceled_at, ...);
 *   - idempotency records live in app_private, out of every client's reach.
 * Transitions, prices and who may do what are enforced by sql/functions/30_bookings.sql.
 */

create type app.booking_status as enum ('pending', 'confirmed', 'completed', 'canceled');
comment on type app.booking_status is
  'pending (an unpaid hold that expires) -> confirmed (host confirmed or paid) -> completed (after the stay, by the scheduled job); pending|confirmed -> canceled (guest, host, admin, or hold expiry).';

create table app_private.booking_settings (
  id boolean primary key default true check (id),
  hold_minutes integer not null default 30 check (hold_minutes between 1 and 10080),
  max_pending integer not null default 3 check (max_pending between 1 and 1000),
  max_nights integer not null default 365 check (max_nights between 1 and 3650),
  max_advance_days integer not null default 730 check (max_advance_days between 1 and 3650),
  check_in_time time not null default '15:00',
  check_out_time time not null default '11:00',
  idempotency_hours integer not null default 24 check (idempotency_hours between 1 and 720)
);
insert into app_private.booking_settings default values;
comment on table app_private.booking_settings is
  'Booking settings (one row; a DBA changes them with UPDATE). Read through app.booking_settings().';
comment on column app_private.booking_settings.id is 'Always true: the table has exactly one row.';
comment on column app_private.booking_settings.hold_minutes is 'How long a pending (unpaid, unconfirmed) booking holds its dates before it expires. Default 30.';
comment on column app_private.booking_settings.max_pending is 'How many pending bookings one guest may hold at once. Default 3.';
comment on column app_private.booking_settings.max_nights is 'Longest stay, in nights. Default 365.';
comment on column app_private.booking_settings.max_advance_days is 'How far ahead a stay may start, in days. Default 730.';
comment on column app_private.booking_settings.check_in_time is 'Check-in time (UTC) on start_date; cancellation deadlines count back from it. Default 15:00.';
comment on column app_private.booking_settings.check_out_time is 'Check-out time (UTC) on end_date; the job completes a confirmed stay after it. Default 11:00.';
comment on column app_private.booking_settings.idempotency_hours is 'How long Idempotency-Key records are kept (the job purges older ones). Default 24.';

create table app.bookings (
  id uuid primary key default gen_random_uuid(),
  product_id uuid not null references app.products (id),
  guest_id uuid not null references app.users (id),
  host_id uuid not null references app.users (id),
  start_date date not null,
  end_date date not null,
  nights integer generated always as (end_date - start_date) stored,
  guests integer not null check (guests between 1 and 100),
  status app.booking_status not null default 'pending',
  price_per_night numeric(12, 2) not null check (price_per_night > 0),
  total_price numeric(12, 2) not null,
  currency char(3) not null references app.currencies (code),
  cancellation_policy app.cancellation_policy not null,
  expires_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  confirmed_at timestamptz,
  completed_at timestamptz,
  canceled_at timestamptz,
  canceled_by uuid references app.users (id),
  cancel_reason text check (length(cancel_reason) <= 1000),
  refund_amount numeric(12, 2) check (refund_amount >= 0 and refund_amount <= total_price),
  constraint bookings_end_date_check check (end_date > start_date),
  constraint bookings_total_price_check check (total_price = price_per_night * (end_date - start_date)),
  constraint bookings_guest_is_not_host_check check (guest_id <> host_id),
  constraint bookings_status_times_check check (
    (status = 'pending') = (expires_at is not null)
    and (status not in ('confirmed', 'completed') or confirmed_at is not null)
    and (status = 'completed') = (completed_at is not null)
    and (status = 'canceled') = (canceled_at is not null)
    and (status = 'canceled') = (refund_amount is not null)
  ),
  constraint bookings_stay_excl exclude using gist (
    product_id with =, daterange(start_date, end_date, '[)') with &&
  ) where (status in ('pending', 'confirmed'))
);
create index bookings_guest_idx on app.bookings (guest_id, created_at desc);
create index bookings_host_idx on app.bookings (host_id, created_at desc);
create index bookings_product_idx on app.bookings (product_id, start_date);
create index bookings_pending_expiry_idx on app.bookings (expires_at) where status = 'pending';
create index bookings_pending_guest_idx on app.bookings (guest_id) where status = 'pending';
create index bookings_confirmed_end_idx on app.bookings (end_date) where status = 'confirmed';
create index bookings_created_at_idx on app.bookings (created_at desc, id);

comment on table app.bookings is
  'Bookings (the seed''s Booking): a guest''s stay [start_date, end_date) at a listing. Guests see their own, hosts those of their listings, admins all; every write goes through the api.booking_* functions.';
comment on column app.bookings.id is 'Booking id.';
comment on column app.bookings.product_id is 'The listing booked (the seed''s property_id).';
comment on column app.bookings.guest_id is 'Who booked (the seed''s user_id); taken from the token, never from a request body.';
comment on column app.bookings.host_id is 'The listing''s host when booked (a snapshot, so the host''s row-level policy needs no join).';
comment on column app.bookings.start_date is 'Check-in day (first night).';
comment on column app.bookings.end_date is 'Check-out day; not a night of the stay, so the next stay may start on it.';
comment on column app.bookings.nights is 'Nights stayed: end_date - start_date (generated).';
comment on column app.bookings.guests is 'How many guests stay (at most the listing''s max_guests when booked).';
comment on column app.bookings.status is 'pending, confirmed, completed or canceled; changed only by the booking functions and the scheduled job.';
comment on column app.bookings.price_per_night is 'The listing''s price per night when booked (a snapshot).';
comment on column app.bookings.total_price is 'price_per_night x nights, computed by the database (no fees are charged). Exact decimal in currency.';
comment on column app.bookings.currency is 'ISO 4217 code of the prices (the listing''s currency when booked).';
comment on column app.bookings.cancellation_policy is 'The listing''s cancellation policy when booked (a snapshot: later policy changes do not affect this booking).';
comment on column app.bookings.expires_at is 'When a pending hold expires and frees its dates; null once it is no longer pending.';
comment on column app.bookings.created_at is 'When booked.';
comment on column app.bookings.updated_at is 'When the row last changed (maintained by trigger).';
comment on column app.bookings.confirmed_at is 'When confirmed.';
comment on column app.bookings.completed_at is 'When the scheduled job marked the stay completed.';
comment on column app.bookings.canceled_at is 'When canceled (or when the hold expired).';
comment on column app.bookings.canceled_by is 'Who canceled (guest, host or admin); null when the hold expired.';
comment on column app.bookings.cancel_reason is 'Why, as given by whoever canceled ("Hold expired." for expiry).';
comment on column app.bookings.refund_amount is 'The refund due under the cancellation policy, computed when canceled (for an unpaid pending booking it is the policy amount on total_price; payments refund at most what was paid).';

create table app.calendar_entries (
  id uuid primary key default gen_random_uuid(),
  product_id uuid not null references app.products (id) on delete cascade,
  stay daterange not null check (
    not isempty(stay) and lower_inc(stay) and not upper_inc(stay) and not lower_inf(stay) and not upper_inf(stay)
  ),
  booking_id uuid unique references app.bookings (id) on delete cascade,
  reason text check (length(reason) <= 500),
  created_by uuid references app.users (id) on delete set null,
  created_at timestamptz not null default now(),
  constraint calendar_entries_stay_excl exclude using gist (product_id with =, stay with &&)
);
comment on table app.calendar_entries is
  'Exactly the date ranges currently taken on each listing: one row per pending or confirmed booking (kept in sync by trigger) and one per host block (booking_id null). The exclusion constraint makes overlaps impossible. Everyone may read product_id and stay (the catalog''s free-dates filter); nothing else is public.';
comment on column app.calendar_entries.id is 'Entry id (the block id for host blocks).';
comment on column app.calendar_entries.product_id is 'The listing.';
comment on column app.calendar_entries.stay is 'The taken nights, half-open [first night, check-out day).';
comment on column app.calendar_entries.booking_id is 'The booking holding the dates; null for a host block.';
comment on column app.calendar_entries.reason is 'Why the host blocked the dates (maintenance, own use, ...); private to the host and admins.';
comment on column app.calendar_entries.created_by is 'Who created the entry (the guest for a booking, the host or admin for a block).';
comment on column app.calendar_entries.created_at is 'When created.';

create table app_private.idempotency_keys (
  user_id uuid not null references app.users (id) on delete cascade,
  key text not null check (length(key) between 1 and 255),
  endpoint text not null,
  request_hash bytea not null,
  response jsonb not null,
  created_at timestamptz not null default now(),
  primary key (user_id, key)
);
create index idempotency_keys_created_at_idx on app_private.idempotency_keys (created_at);
comment on table app_private.idempotency_keys is
  'Idempotency-Key records: a retried request with the same key and body gets the first response; the same key with another body is refused (422). Written in the same transaction as the effect, so a key exists only if the effect committed. Purged after booking_settings.idempotency_hours.';
comment on column app_private.idempotency_keys.user_id is 'Whose key (keys are per user).';
comment on column app_private.idempotency_keys.key is 'The Idempotency-Key header as sent.';
comment on column app_private.idempotency_keys.endpoint is 'Which operation used the key, e.g. booking_create.';
comment on column app_private.idempotency_keys.request_hash is 'sha256 of endpoint and the request body (jsonb text, so key order does not matter).';
comment on column app_private.idempotency_keys.response is 'The first response body, returned again to retries.';
comment on column app_private.idempotency_keys.created_at is 'When first used.';

alter table app.bookings enable row level security, force row level security;
alter table app.calendar_entries enable row level security, force row level security;
alter table app_private.booking_settings enable row level security, force row level security;
alter table app_private.idempotency_keys enable row level security, force row level security;
grant usage on type app.booking_status to anon, guest, host, admin;
