/*
 * 0029 calendar sync: a listing's calendar in step with the other platforms it is listed on (iCal).
 *
 * Why: a host lists the same flat on Airbnb, Booking.com or VRBO too, and a night sold there must
 * not be sold here (the usual cause of double bookings across platforms). Every platform speaks
 * iCalendar (RFC 5545) URLs: each publishes a listing's taken dates at a secret URL and reads
 * other platforms' URLs periodically. So does Nexus now:
 *   - export: each listing has a secret URL (/api/calendars/<token>.ics) giving its booked and
 *     blocked dates; the token is an unguessable random string, kept here out of every client
 *     role's reach, shown only to the listing's host and admins, and replaced on request (the old
 *     URL then answers 404);
 *   - import: the host adds the other platforms' URLs (feeds); the worker fetches each one every
 *     fetch_interval_minutes and keeps the listing's blocks from that feed equal to its events
 *     (sql/functions/32_calendar_sync.sql). Imported blocks are app.calendar_entries rows with
 *     feed_id set, under the same exclusion constraint as bookings and host blocks, so a booking
 *     over an imported block is refused like any overlap.
 *
 * Guarantees after this file:
 *   - every listing has exactly one export token (this file gives existing listings theirs; a
 *     trigger gives new ones theirs); tokens are unique, 32 characters of base64url (192 bits);
 *   - a feed belongs to one listing, is unique per listing by URL, and goes with its listing; its
 *     blocks go with it (on delete cascade), so deleting a feed frees its dates;
 *   - a calendar entry is a booking's, a feed's or a host's own block, never two of them;
 *   - feed URLs (which carry the other platform's secret) and export tokens live in app_private:
 *     no client role reads them; the api functions show them to the listing's host and admins.
 */

create table app_private.calendar_settings (
  id boolean primary key default true check (id),
  max_feeds_per_listing integer not null default 5 check (max_feeds_per_listing between 1 and 50),
  fetch_interval_minutes integer not null default 15 check (fetch_interval_minutes between 5 and 1440),
  https_only boolean not null default true
);
insert into app_private.calendar_settings default values;
comment on table app_private.calendar_settings is
  'Calendar sync settings (one row; a DBA changes them with UPDATE). The worker''s network limits (timeouts, size, private addresses) are process settings: ICAL_* in .env.example.';
comment on column app_private.calendar_settings.id is 'Always true: the table has exactly one row.';
comment on column app_private.calendar_settings.max_feeds_per_listing is 'How many external calendars (feeds) one listing may import. Default 5.';
comment on column app_private.calendar_settings.fetch_interval_minutes is 'How often the worker fetches each feed, in minutes. Default 15.';
comment on column app_private.calendar_settings.https_only is 'Only https:// (and webcal://, read as https) feed URLs are accepted and followed. Default true; false only for a local test server.';

create table app_private.calendar_exports (
  product_id uuid primary key references app.products (id) on delete cascade,
  token text not null unique
    default rtrim(translate(encode(extensions.gen_random_bytes(24), 'base64'), '+/', '-_'), '=')
    check (token ~ '^[A-Za-z0-9_-]{32}$'),
  created_at timestamptz not null default now()
);
insert into app_private.calendar_exports (product_id) select p.id from app.products p;
comment on table app_private.calendar_exports is
  'The secret of each listing''s iCal export URL (GET /api/calendars/<token>.ics). One row per listing, made with it; rotating replaces the token, so the old URL stops working.';
comment on column app_private.calendar_exports.product_id is 'The listing.';
comment on column app_private.calendar_exports.token is 'The URL''s secret: 24 random bytes as base64url. Shown only to the listing''s host and admins.';
comment on column app_private.calendar_exports.created_at is 'When this token was made (the listing''s creation or the last rotation).';

create table app_private.calendar_feeds (
  id uuid primary key default gen_random_uuid(),
  product_id uuid not null references app.products (id) on delete cascade,
  url text not null check (length(url) between 12 and 2048),
  name text not null check (length(name) between 1 and 100),
  created_by uuid references app.users (id) on delete set null,
  created_at timestamptz not null default now(),
  next_fetch_at timestamptz not null default now(),
  etag text check (length(etag) <= 1024),
  last_modified text check (length(last_modified) <= 128),
  digest text check (digest ~ '^[0-9a-f]{64}$'),
  wanted datemultirange not null default '{}',
  last_attempt_at timestamptz,
  last_success_at timestamptz,
  last_changed_at timestamptz,
  last_error text check (length(last_error) <= 1000),
  events_imported integer not null default 0 check (events_imported >= 0),
  events_skipped integer not null default 0 check (events_skipped >= 0),
  skipped jsonb not null default '{}' check (jsonb_typeof(skipped) = 'object'),
  overlapping jsonb not null default '[]' check (jsonb_typeof(overlapping) = 'array'),
  constraint calendar_feeds_url_key unique (product_id, url)
);
create index calendar_feeds_next_fetch_idx on app_private.calendar_feeds (next_fetch_at);
comment on table app_private.calendar_feeds is
  'External iCal calendars a listing imports (another platform''s export URL): the worker fetches each every calendar_settings.fetch_interval_minutes and keeps the listing''s blocks from it equal to its events. The status columns are what the host sees of the last fetch.';
comment on column app_private.calendar_feeds.id is 'Feed id.';
comment on column app_private.calendar_feeds.product_id is 'The listing whose dates the feed blocks.';
comment on column app_private.calendar_feeds.url is 'The calendar''s URL (https; webcal:// is stored as https://). It usually carries the other platform''s secret: shown only to the listing''s host and admins.';
comment on column app_private.calendar_feeds.name is 'What the host calls it (default: the URL''s host name), e.g. Airbnb.';
comment on column app_private.calendar_feeds.created_by is 'Who added it.';
comment on column app_private.calendar_feeds.created_at is 'When it was added.';
comment on column app_private.calendar_feeds.next_fetch_at is 'When the worker fetches it next (app_private.calendar_schedule defers the job then).';
comment on column app_private.calendar_feeds.etag is 'The ETag of the last body imported, sent back as If-None-Match (a 304 keeps the blocks).';
comment on column app_private.calendar_feeds.last_modified is 'The Last-Modified of the last body imported, sent back as If-Modified-Since.';
comment on column app_private.calendar_feeds.digest is 'SHA-256 of the last body imported, its DTSTAMP lines left out (api/calendars.py): a body that differs only by when it was written is not read again, for servers that answer every GET in full.';
comment on column app_private.calendar_feeds.wanted is 'Every night the last imported body''s events take (before what others hold here is taken out): each fetch, a 304 included, blocks what of it has become free since (a booking canceled, a block deleted).';
comment on column app_private.calendar_feeds.last_attempt_at is 'When the worker last tried to fetch it (success or not).';
comment on column app_private.calendar_feeds.last_success_at is 'When a fetch last succeeded (an import, or a 304: nothing changed).';
comment on column app_private.calendar_feeds.last_changed_at is 'When a body was last imported (a 200 that parsed).';
comment on column app_private.calendar_feeds.last_error is 'Why the last fetch failed (not iCal, too large, no answer, refused address, ...); null after a success. The blocks of the last success stay while it fails.';
comment on column app_private.calendar_feeds.events_imported is 'Events of the last imported body that block dates (each blocks the nights still free).';
comment on column app_private.calendar_feeds.events_skipped is 'Events of the last imported body that block nothing: the sum of skipped.';
comment on column app_private.calendar_feeds.skipped is 'Skipped events of the last imported body by reason: past, no_end, invalid, out_of_range, recurring, cancelled.';
comment on column app_private.calendar_feeds.overlapping is 'Events of the last imported body that overlap a booking or another block here, [{start_date, end_date, with: booking|block}] (at most 50): their taken nights stay as they are, the rest are blocked.';

alter table app.calendar_entries
  add column feed_id uuid references app_private.calendar_feeds (id) on delete cascade,
  add constraint calendar_entries_one_source_check check (feed_id is null or booking_id is null);
create index calendar_entries_feed_idx on app.calendar_entries (feed_id) where feed_id is not null;
comment on column app.calendar_entries.feed_id is
  'The external calendar (app_private.calendar_feeds) this block was imported from; null for bookings and the host''s own blocks. Imported blocks are replaced by each import and go with their feed.';
comment on table app.calendar_entries is
  'Exactly the date ranges currently taken on each listing: one row per pending or confirmed booking (kept in sync by trigger), one per host block (booking_id null) and one per range imported from an external calendar (feed_id set). The exclusion constraint makes overlaps impossible. Everyone may read product_id and stay (the catalog''s free-dates filter); nothing else is public.';

alter table app_private.calendar_settings enable row level security, force row level security;
alter table app_private.calendar_exports enable row level security, force row level security;
alter table app_private.calendar_feeds enable row level security, force row level security;
