/*
 * 0027 server errors: the API's recent 5xx, where an admin can see them.
 *
 * Why: a 5xx is a bug or an outage; its request id ties a user's report to the log lines and the
 * trace. The admin dashboard's System page (api.admin_system) lists the recent ones, so an
 * operator sees them without a log search. The API writes one row per 5xx answer, after it,
 * outside the request's transaction (which has usually failed), as api_internal.
 *
 * Guarantees after this file: app_private.server_errors holds the 5xx answers of the last
 * seven days (older ones are trimmed as new ones arrive): when, request id, method, path
 * (no query string, no body, no header), status. Owner only, like all of app_private.
 */

create table app_private.server_errors (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  request_id text not null check (length(request_id) between 1 and 64),
  method text not null check (length(method) between 1 and 16),
  path text not null check (length(path) between 1 and 512),
  status integer not null check (status between 500 and 599)
);
create index server_errors_at_idx on app_private.server_errors (at desc);
alter table app_private.server_errors enable row level security, force row level security;
comment on table app_private.server_errors is
  'The API''s 5xx answers of the last seven days (api.server_error_record writes them; the admin System page lists them).';
comment on column app_private.server_errors.id is 'Order of arrival.';
comment on column app_private.server_errors.at is 'When the answer was sent.';
comment on column app_private.server_errors.request_id is 'The request''s X-Request-ID (in the access log, the problem body and the trace).';
comment on column app_private.server_errors.method is 'HTTP method.';
comment on column app_private.server_errors.path is 'The request path, without its query string.';
comment on column app_private.server_errors.status is 'The status answered (500-599).';
