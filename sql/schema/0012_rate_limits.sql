/*
 * 0012 rate limits: token buckets per route class and per caller, shared by every worker
 * and every instance because they live in PostgreSQL.
 *
 * Why: anything but sign-in could be hammered. Each request takes a token from the bucket
 * of its route class (read, write, signup, upload, payment, message) and its caller (the
 * signed-in user, else the client address), in the request's own round trip
 * (app.rate_take, first in api/db.py's SET_CONTEXT); an empty bucket is a 429 with
 * Retry-After and RateLimit-* headers, and the refused request changes nothing.
 *
 * Guarantees after this file:
 *   - limits are rows a DBA changes (app_private.rate_limits: capacity, refill per minute,
 *     enabled); a class without a row, or disabled, is not limited;
 *   - buckets are an UNLOGGED table: no WAL per request, lost on a crash (every bucket
 *     starts full again, which only forgives), never replicated.
 */

create table app_private.rate_limits (
  class text primary key check (class in ('read', 'write', 'signup', 'upload', 'payment', 'message')),
  capacity integer not null check (capacity between 1 and 100000),
  per_minute numeric(10, 3) not null check (per_minute > 0),
  enabled boolean not null default true
);
insert into app_private.rate_limits (class, capacity, per_minute) values
  ('read', 300, 600),      -- a burst of 300, then 10 a second
  ('write', 60, 120),
  ('signup', 5, 0.2),      -- 5 at once, then one every 5 minutes per address
  ('upload', 20, 10),
  ('payment', 20, 10),
  ('message', 60, 60);
comment on table app_private.rate_limits is
  'How fast each route class may be called by one caller (a signed-in user, else a client address): a token bucket of capacity tokens refilled at per_minute. A DBA tunes them with UPDATE; enabled = false lifts a class''s limit.';
comment on column app_private.rate_limits.class is 'read (GET), write (other methods), signup (POST /api/register/), upload (files), payment (the payments routes), message (the conversations routes).';
comment on column app_private.rate_limits.capacity is 'The burst: requests allowed at once from a full bucket.';
comment on column app_private.rate_limits.per_minute is 'Tokens added back per minute.';
comment on column app_private.rate_limits.enabled is 'Whether the class is limited.';

create unlogged table app_private.rate_buckets (
  key text primary key check (length(key) <= 200),
  tokens double precision not null,
  updated_at timestamptz not null
);
comment on table app_private.rate_buckets is
  'One token bucket per (class, caller): tokens left as of updated_at. Unlogged: fast, and on a crash every bucket starts full. Old rows are harmless (a bucket idle long enough is full again); the minute job deletes those idle for a day.';
comment on column app_private.rate_buckets.key is 'class:u:<user id> or class:a:<client address>.';
comment on column app_private.rate_buckets.tokens is 'Tokens left after the last request (fractional: refill is continuous).';
comment on column app_private.rate_buckets.updated_at is 'When the bucket was last taken from.';

alter table app_private.rate_limits enable row level security, force row level security;
alter table app_private.rate_buckets enable row level security, force row level security;
