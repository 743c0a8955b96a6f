/*
 * 0006 house order: the page types every list returns, and the account settings as a row.
 *
 * Why: every list answers the same envelope; a named type (app.page) makes that a fact the
 * catalog can check, and app.page_window names which rows a request asks for. Account
 * settings (bcrypt cost, refresh-token lifetime, sign-in throttling, the OAuth flow's
 * lifetime) were constants in a function and, for two of them, copies in Python; like
 * app_private.booking_settings they are now one row a DBA can read and change, and the
 * only place each one lives.
 *
 * Guarantees after this file:
 *   - app.page and app.page_window exist (the functions in sql/functions/02_pages.sql use them);
 *   - app_private.auth_settings has exactly one row, each value within a sane range.
 */

create type app.page as (count bigint, page int, page_size int, results json);
comment on type app.page is
  'One page of a list: count (matching rows in all), page (from 1), page_size, results (a JSON array). The API wraps it in the DRF envelope {count, next, previous, results}.';

create type app.page_window as (page int, page_size int, skip bigint);
comment on type app.page_window is
  'The rows a list request asks for: page (from 1), page_size (1-100), skip (rows before the page, the OFFSET).';

create table app_private.auth_settings (
  id boolean primary key default true check (id),
  bcrypt_cost integer not null default 10 check (bcrypt_cost between 4 and 16),
  refresh_ttl_seconds integer not null default 1209600 check (refresh_ttl_seconds between 300 and 31536000),
  throttle_window_seconds integer not null default 900 check (throttle_window_seconds between 1 and 86400),
  throttle_max_failures_per_email integer not null default 5 check (throttle_max_failures_per_email between 1 and 1000),
  throttle_max_failures_per_address integer not null default 20 check (throttle_max_failures_per_address between 1 and 100000),
  oauth_flow_seconds integer not null default 600 check (oauth_flow_seconds between 60 and 3600)
);
insert into app_private.auth_settings default values;
alter table app_private.auth_settings enable row level security, force row level security;
comment on table app_private.auth_settings is
  'Account settings (one row; a DBA changes them with UPDATE, effective at once). Read by the functions in sql/functions/10_accounts.sql and 11_oauth.sql through app_private.auth_config().';
comment on column app_private.auth_settings.id is 'Always true: the table has exactly one row.';
comment on column app_private.auth_settings.bcrypt_cost is 'bcrypt work factor for new password hashes (existing hashes keep theirs). Default 10.';
comment on column app_private.auth_settings.refresh_ttl_seconds is 'How long a refresh token lives. Default 1209600 (14 days).';
comment on column app_private.auth_settings.throttle_window_seconds is 'The sign-in throttling window. Default 900 (15 minutes).';
comment on column app_private.auth_settings.throttle_max_failures_per_email is 'Failed sign-ins for one email within the window (since its last success) before 429. Default 5.';
comment on column app_private.auth_settings.throttle_max_failures_per_address is 'Failed sign-ins from one client address within the window before 429. Default 20.';
comment on column app_private.auth_settings.oauth_flow_seconds is 'How long an OAuth sign-in (its state and PKCE verifier, and the browser cookie) stays valid. Default 600.';

comment on table app_private.credentials is
  'Password hashes (bcrypt via pgcrypto, cost from app_private.auth_settings). Null hash: the account signs in only through OAuth.';

comment on table app_private.booking_settings is
  'Booking settings (one row; a DBA changes them with UPDATE). Read by the booking functions through app_private.booking_config().';
