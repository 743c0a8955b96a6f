/*
 * 0001 foundation: schemas, roles, extensions, default-deny.
 *
 * Why: everything else stands on these. Clients never see a table: they call
 * functions in `api`, which run as the caller's role under row-level security
 * on the tables in `app`. Secrets live in `app_private`, which no client role
 * can reach. Analysts read curated views in `analytics` and nothing else.
 *
 * Guarantees after this file:
 *   - `public` grants nothing to anyone (no CREATE on schema public, no EXECUTE
 *     on new functions by default);
 *   - the login role `authenticator` can do nothing but switch to anon/guest/
 *     host/admin (NOINHERIT);
 *   - `analyst` logs in read-only with a bounded statement time.
 *
 * The migrating role (the owner of everything here) needs CREATEROLE and must
 * own the database (to create schemas and the trusted extensions below).
 */

revoke all on schema public from public;
alter default privileges revoke execute on functions from public;
alter default privileges revoke usage on types from public;

-- if not exists: sql/superuser.sql may have made it (for PostGIS, which only a superuser may create).
create schema if not exists extensions;
comment on schema extensions is 'Extensions (pgcrypto, btree_gist, pg_trgm), kept out of public; used by the owner''s functions and indexes.';
create extension if not exists pgcrypto with schema extensions;
create extension if not exists btree_gist with schema extensions;
create extension if not exists pg_trgm with schema extensions;

create schema app;
comment on schema app is 'Tables of the marketplace. Every table has row-level security enabled and forced; clients reach it only through api functions.';
create schema app_private;
comment on schema app_private is 'Secrets and bookkeeping (password hashes, refresh tokens, throttling, idempotency). Granted to no client role.';
create schema api;
comment on schema api is 'The functions clients may call, and nothing else. One function per HTTP route; see api/routes.py.';
create schema analytics;
comment on schema analytics is 'Curated read-only views for the analyst role: no secrets, no personal data.';

do $$
declare
  v_role text;
begin
  foreach v_role in array array['anon', 'guest', 'host', 'admin'] loop
    if not exists (select from pg_roles where rolname = v_role) then
      execute format('create role %I nologin noinherit', v_role);
    end if;
  end loop;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'analyst') then
    create role analyst login noinherit;
  end if;
end
$$;

grant anon, guest, host, admin to authenticator;
alter role analyst set default_transaction_read_only = on;
alter role analyst set statement_timeout = '15s';
alter role analyst set idle_in_transaction_session_timeout = '60s';
alter role authenticator set statement_timeout = '10s';

comment on role authenticator is 'The API''s login role. NOINHERIT: it has no privileges of its own and can only switch to anon, guest, host or admin for one transaction.';
comment on role anon is 'A request without a token: browses the public catalog, registers, logs in.';
comment on role guest is 'A signed-in guest: books, pays, reviews, messages hosts, manages own profile.';
comment on role host is 'A signed-in host: everything a guest can do, plus listing properties and managing their bookings.';
comment on role admin is 'A signed-in administrator: manages users, listings, bookings and payments.';
comment on role analyst is 'Read-only login for analysts: SELECT on the analytics views only, read-only transactions, bounded statement time.';

grant usage on schema api to anon, guest, host, admin;
grant usage on schema app to anon, guest, host, admin;
grant usage on schema analytics to analyst;
do $$
begin
  execute format('revoke all on database %I from public', current_database());
  execute format('grant connect, temporary on database %I to current_user', current_database());
  execute format('grant connect on database %I to authenticator, analyst', current_database());
end
$$;
