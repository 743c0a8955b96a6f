/*
 * 0020 channels: the product's NOTIFY channels get secret names.
 *
 * Why: NOTIFY and LISTEN take no privilege in PostgreSQL: any role that can connect may send
 * on, or listen to, any channel it can name. The analyst (a login role in psql) ran
 * `select pg_notify('nexus_notifications', 'not json')` and every API process's notification
 * listener dropped its connection; a `notify nexus_catalog, '*'` emptied every process's
 * catalog cache, and a LISTEN on nexus_notifications would tell who gets notified when. So the
 * names are no longer constants: each is 'nexus_<name>_<suffix>', the suffix random per
 * database and kept here, where no client role reads it. The triggers and app_private.notify
 * send on app_private.channel(<name>); the API's listeners learn the names once per listening
 * connection through app.listen_channels(), which only the login role `authenticator` may call.
 *
 * Guarantees after this file: app_private.channels has exactly one row, its suffix 24 random
 * hex digits (96 bits, from pgcrypto); row-level security is on and forced (the owner policy
 * of sql/policies/99_owner.sql covers it; no client role has a privilege on it).
 */

create table app_private.channels (
  id boolean primary key default true check (id),
  suffix text not null default encode(extensions.gen_random_bytes(12), 'hex') check (suffix ~ '^[0-9a-f]{24}$')
);
-- Before row-level security is forced: no policy exists yet, and the owner would insert nothing.
insert into app_private.channels default values;
comment on table app_private.channels is
  'The secret part of the NOTIFY channel names (one row): a channel is ''nexus_<name>_<suffix>'' (app_private.channel), so a role that cannot read this row cannot send on or listen to the product''s channels. To change it: update app_private.channels set suffix = default; then restart the API processes (their listeners learn the names when they connect).';
comment on column app_private.channels.id is 'Always true: the table has exactly one row.';
comment on column app_private.channels.suffix is 'What ends every channel name: 24 random hex digits, made when the database was migrated.';

alter table app_private.channels enable row level security, force row level security;
