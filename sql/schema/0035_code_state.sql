/*
 * 0035 code state: what the last migrate applied, so that a deploy that changes no SQL takes no lock.
 *
 * Why: every migrate dropped and re-created every function, view, policy and trigger and rebuilt
 * the catalog counts, in one transaction that locks every table. On the 100,000-listing data
 * that took 7 s, during which reads waited up to 3 s and writes up to 5 s (the soak's deploy
 * fault) — and a marketplace deploys many times a day, mostly without touching SQL. Now
 * api.migrate re-applies the code only when a migration ran or the code differs from what this
 * row says was applied (a fingerprint of sql/functions, views, policies, roles and the reset),
 * and rebuilds the counts only when their definition changed (app.catalog_counts_definition()).
 *
 * Guarantees after this file: one row, written by the post-apply step in its own transaction.
 */

create table app_private.code_state (
  id boolean primary key default true check (id),
  fingerprint text,
  counts_definition text,
  applied_at timestamptz
);
insert into app_private.code_state default values;
alter table app_private.code_state enable row level security, force row level security;
comment on table app_private.code_state is
  'What the last migrate applied (one row): api.migrate skips re-creating the code when nothing changed. Owner only.';
comment on column app_private.code_state.id is 'Always true: the table has exactly one row.';
comment on column app_private.code_state.fingerprint is 'SHA-256 of the code as last applied: sql/functions, sql/views, sql/policies, sql/roles (each file''s path and text) and api/migrate.py''s reset. Null: apply it next time.';
comment on column app_private.code_state.counts_definition is 'app.catalog_counts_definition() when app_private.catalog_counts was last rebuilt: a migrate rebuilds the counts only when it changed.';
comment on column app_private.code_state.applied_at is 'When the code was last applied.';
