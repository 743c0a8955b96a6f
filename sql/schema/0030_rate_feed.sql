/*
 * 0030 rate feed: exchange rates that stay fresh by themselves, and what the feed last said.
 *
 * Why: rates were posted by hand and went stale after rate_max_age_hours (24), after which a
 * guest paying in another currency was refused: multi-currency payment stopped a day after
 * the last manual post. A worker job (rates.fetch, hourly) now reads a public reference feed
 * (the European Central Bank's daily XML by default, EXCHANGE_RATES_URL) and records the
 * rates of its base currency against every currency we know; app.exchange_rate derives the
 * other pairs through that base. This table says how the feed is doing, for the admin System
 * page and the metrics: when it last answered well, and what went wrong since.
 *
 * Guarantees after this file: one row, app_private.rate_feed, updated by every attempt; a
 * failed attempt changes no rate (the last good ones stay until they are too old).
 */

create table app_private.rate_feed (
  id boolean primary key default true check (id),
  source text,
  attempted_at timestamptz,
  succeeded_at timestamptz,
  feed_date date,
  base char(3) references app.currencies (code),
  rates integer not null default 0,
  skipped jsonb not null default '[]',
  error text,
  failed_at timestamptz
);
insert into app_private.rate_feed default values;
alter table app_private.rate_feed enable row level security, force row level security;
comment on table app_private.rate_feed is
  'The exchange-rate feed''s state (one row): what the worker''s last attempt found. Rates themselves are in app.exchange_rates.';
comment on column app_private.rate_feed.id is 'Always true: the table has exactly one row.';
comment on column app_private.rate_feed.source is 'The feed read last (EXCHANGE_RATES_URL).';
comment on column app_private.rate_feed.attempted_at is 'When the worker last tried the feed.';
comment on column app_private.rate_feed.succeeded_at is 'When the feed last gave rates that were recorded.';
comment on column app_private.rate_feed.feed_date is 'The day the last recorded rates are for (the feed''s own date).';
comment on column app_private.rate_feed.base is 'The feed''s base currency (EUR for the ECB): its rates are 1 base in each quote.';
comment on column app_private.rate_feed.rates is 'How many rates the last good answer recorded.';
comment on column app_private.rate_feed.skipped is 'Currencies of ours the last good answer lacked (their last good rates stay until too old), and codes it had that we do not know.';
comment on column app_private.rate_feed.error is 'Why the last attempt recorded nothing (null once an attempt succeeds): unreachable, too slow, too large, not the expected XML, a zero or negative rate.';
comment on column app_private.rate_feed.failed_at is 'When the last failed attempt was.';
