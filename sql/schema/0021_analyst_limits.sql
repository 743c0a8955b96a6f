/*
 * 0021 analyst limits: the read-only analyst's time limits are enforced, not suggested.
 *
 * Why: the analyst's statement_timeout and idle_in_transaction_session_timeout were role
 * defaults, and PostgreSQL lets any role SET them for its session and even ALTER ROLE itself
 * SET them for good (a probe ran `set statement_timeout = 0` and a 16.5 s query, then made
 * '16s' its persistent default). No privilege forbids either in PostgreSQL 15. So the limits
 * live here, one row a DBA tunes, and the worker enforces them from outside the analyst's
 * session every few seconds (app_private.enforce_analyst_limits): it cancels a statement past
 * its limit, ends a transaction left open past its limit, and puts the role's defaults back.
 * The owner is made a member of analyst so that it may signal the analyst's backends
 * (pg_cancel_backend, pg_terminate_backend) without being a superuser.
 *
 * Guarantees after this file: exactly one settings row, each value in a sane range; the
 * owner has the analyst's privileges (which are only SELECT on the analytics views).
 */

create table app_private.analyst_settings (
  id boolean primary key default true check (id),
  statement_seconds integer not null default 15 check (statement_seconds between 1 and 3600),
  idle_in_transaction_seconds integer not null default 60 check (idle_in_transaction_seconds between 1 and 86400)
);
insert into app_private.analyst_settings default values;
alter table app_private.analyst_settings enable row level security, force row level security;
comment on table app_private.analyst_settings is
  'The analyst role''s limits (one row; a DBA changes them with UPDATE): applied as the role''s defaults by every migrate (sql/roles/20_analyst.sql) and enforced every few seconds by the worker (app_private.enforce_analyst_limits), whatever the analyst sets for itself.';
comment on column app_private.analyst_settings.id is 'Always true: the table has exactly one row.';
comment on column app_private.analyst_settings.statement_seconds is 'Longest an analyst''s statement may run before it is cancelled. Default 15.';
comment on column app_private.analyst_settings.idle_in_transaction_seconds is 'Longest an analyst''s transaction may sit idle (holding its snapshot and locks) before its session is ended. Default 60.';

grant analyst to current_user;
