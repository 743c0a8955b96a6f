/*
 * 0011 admin: the audit log of every admin action.
 *
 * Why: admins change other people's accounts, listings, bookings and money (the dashboard
 * at /admin/ and the API alike); each such change must be answerable: who, what, when,
 * and the row before and after.
 *
 * Guarantees after this file:
 *   - a row of app_private.audit_log for every insert, update or delete an admin's request
 *     makes to users, listings (with their photos and amenities), categories, bookings,
 *     payments, refunds, payouts, reviews, message reports, exchange rates and notifications,
 *     written by a trigger in the same transaction (sql/functions/70_admin.sql);
 *   - secrets never enter it (password hashes live elsewhere; client secrets are removed);
 *   - append-only: no role updates or deletes it (a trigger refuses, even for the owner).
 */

create table app_private.audit_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor_id uuid references app.users (id) on delete set null,
  action text not null check (action in ('insert', 'update', 'delete')),
  table_name text not null check (length(table_name) between 1 and 100),
  row_id text not null check (length(row_id) between 1 and 100),
  before jsonb,
  after jsonb,
  constraint audit_log_rows_check check (
    (action = 'insert' and before is null and after is not null)
    or (action = 'update' and before is not null and after is not null)
    or (action = 'delete' and before is not null and after is null))
);
create index audit_log_at_idx on app_private.audit_log (at desc, id desc);
create index audit_log_actor_idx on app_private.audit_log (actor_id, at desc);
create index audit_log_row_idx on app_private.audit_log (table_name, row_id);
comment on table app_private.audit_log is
  'Every change an admin''s request made (who, what, when, the row before and after), written by app.tg__audit in the same transaction; append-only. Read by admins through api.audit_list.';
comment on column app_private.audit_log.id is 'Entry id, in order.';
comment on column app_private.audit_log.at is 'When (the transaction''s time).';
comment on column app_private.audit_log.actor_id is 'The admin whose request made the change.';
comment on column app_private.audit_log.action is 'insert, update or delete.';
comment on column app_private.audit_log.table_name is 'The table changed, e.g. app.bookings.';
comment on column app_private.audit_log.row_id is 'The changed row''s id.';
comment on column app_private.audit_log.before is 'The row before (update, delete), without secrets.';
comment on column app_private.audit_log.after is 'The row after (insert, update), without secrets.';

alter table app_private.audit_log enable row level security, force row level security;
