/*
 * 0034 reconciliation: our payments, refunds and payouts compared every day with the providers'
 * own lists, and every difference kept for an admin to see.
 *
 * Why: webhooks get lost, a refund is made by hand in a provider's dashboard, a payout the
 * provider accepted is reversed days later, a response is lost after the provider acted. Each
 * leaves our books and the provider's disagreeing, and nothing in the money flow would notice.
 * A worker job (payments.reconcile, daily, or on demand by an admin) lists the provider's objects
 * of the last days and hands them to app_private.reconciliation_record, which compares them with
 * ours and records what differs here. Nothing is ever changed in payments, refunds or payouts:
 * a difference is a question for a person, not a fix.
 *
 * Guarantees after this file:
 *   - one settings row (reconciliation_settings): how many days back a run looks, and how recent
 *     an object may be and still be in flight (not compared);
 *   - every run is a row, started, then succeeded (with what it compared) or failed (with why);
 *   - a difference is open, gone (a later run that looked at the object found both sides agreeing:
 *     kept, with the run that saw it go), or resolved (by an admin, with a note); the same open
 *     difference is one row however many runs see it (unique index).
 */

create table app_private.reconciliation_settings (
  id boolean primary key default true check (id),
  days integer not null default 3 check (days between 1 and 31),
  stripe_grace_minutes integer not null default 15 check (stripe_grace_minutes between 0 and 1440),
  paypal_grace_minutes integer not null default 240 check (paypal_grace_minutes between 0 and 1440)
);
insert into app_private.reconciliation_settings default values;
alter table app_private.reconciliation_settings enable row level security, force row level security;
comment on table app_private.reconciliation_settings is
  'Reconciliation settings (one row; a DBA changes them with UPDATE). Read by app_private.reconciliation_start.';
comment on column app_private.reconciliation_settings.id is 'Always true: the table has exactly one row.';
comment on column app_private.reconciliation_settings.days is 'How many days back a daily run looks (objects created since then, ours and the provider''s). At most 31: PayPal''s transaction search spans no more. Default 3.';
comment on column app_private.reconciliation_settings.stripe_grace_minutes is 'Stripe objects (and ours) younger than this at the run''s start may be in flight (a webhook on its way): not compared. Default 15.';
comment on column app_private.reconciliation_settings.paypal_grace_minutes is 'The same for PayPal, whose transaction search shows a transaction up to three hours late. Default 240.';

create table app_private.reconciliation_runs (
  id bigint generated always as identity primary key,
  provider app.payment_provider not null,
  requested_by uuid references app.users (id),
  since timestamptz not null,
  until timestamptz not null,
  settled_before timestamptz not null,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  status text not null default 'running' check (status in ('running', 'succeeded', 'failed')),
  compared jsonb not null default '{}',
  differences integer not null default 0,
  new_differences integer not null default 0,
  gone_differences integer not null default 0,
  error text check (length(error) <= 2000),
  check (since < until and settled_before <= until),
  check ((status = 'running') = (finished_at is null)),
  check (status <> 'failed' or error is not null)
);
create index reconciliation_runs_provider_idx on app_private.reconciliation_runs (provider, id);
alter table app_private.reconciliation_runs enable row level security, force row level security;
comment on table app_private.reconciliation_runs is
  'One reconciliation of one provider: the window it compared, when, and how it ended. Written by app_private.reconciliation_start, _record and _failed.';
comment on column app_private.reconciliation_runs.id is 'Run id, in order.';
comment on column app_private.reconciliation_runs.provider is 'Whose lists were compared with ours.';
comment on column app_private.reconciliation_runs.requested_by is 'The admin who asked for the run; null for the daily one.';
comment on column app_private.reconciliation_runs.since is 'The window''s start: objects created (ours, or sent for payouts) since then are compared.';
comment on column app_private.reconciliation_runs.until is 'The window''s end: when the run started.';
comment on column app_private.reconciliation_runs.settled_before is 'until minus the provider''s grace: younger objects may be in flight and are not compared.';
comment on column app_private.reconciliation_runs.started_at is 'When the run started.';
comment on column app_private.reconciliation_runs.finished_at is 'When it succeeded or failed; null while running.';
comment on column app_private.reconciliation_runs.status is 'running, succeeded (compared) or failed (the provider could not be listed: nothing was compared).';
comment on column app_private.reconciliation_runs.compared is 'How many objects were compared, per kind: {"payment": {"ours": n, "theirs": n}, ...}.';
comment on column app_private.reconciliation_runs.differences is 'Differences this run saw (new or still open).';
comment on column app_private.reconciliation_runs.new_differences is 'Of those, how many no open difference had said before (admins were notified of them).';
comment on column app_private.reconciliation_runs.gone_differences is 'Open differences this run looked at and no longer saw (marked gone).';
comment on column app_private.reconciliation_runs.error is 'Why the run failed (the provider unreachable, refused, or an answer not understood).';

create table app_private.reconciliation_differences (
  id uuid primary key default gen_random_uuid(),
  provider app.payment_provider not null,
  kind text not null check (kind in ('payment', 'refund', 'payout')),
  issue text not null check (issue in ('missing_at_provider', 'unknown_to_us', 'amount', 'currency', 'status', 'duplicate')),
  our_id uuid,
  provider_id text check (length(provider_id) between 1 and 255),
  ours jsonb,
  theirs jsonb,
  detail text not null check (length(detail) between 1 and 1000),
  object_at timestamptz not null,
  state text not null default 'open' check (state in ('open', 'gone', 'resolved')),
  first_run bigint not null references app_private.reconciliation_runs (id),
  last_run bigint not null references app_private.reconciliation_runs (id),
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  gone_run bigint references app_private.reconciliation_runs (id),
  gone_at timestamptz,
  resolved_by uuid references app.users (id),
  resolved_at timestamptz,
  note text check (length(note) between 1 and 2000),
  check (our_id is not null or provider_id is not null),
  check ((state = 'gone') = (gone_at is not null) or state = 'resolved'),
  check ((state = 'resolved') = (resolved_at is not null and note is not null))
);
create unique index reconciliation_differences_open_key on app_private.reconciliation_differences
  (provider, kind, issue, coalesce(our_id::text, ''), coalesce(provider_id, '')) where state = 'open';
create index reconciliation_differences_state_idx on app_private.reconciliation_differences (state, first_seen_at);
alter table app_private.reconciliation_differences enable row level security, force row level security;
comment on table app_private.reconciliation_differences is
  'What a reconciliation found to differ between our books and a provider''s. Never acted on by the system: an admin looks, acts through the usual functions (a refund, a payout retry, the provider''s dashboard) and resolves it with a note. One open row per difference; later runs that see it again update last_run.';
comment on column app_private.reconciliation_differences.id is 'Difference id (POST /api/admin/reconciliation/{id}/resolve/).';
comment on column app_private.reconciliation_differences.provider is 'Whose list it was found in (or missing from).';
comment on column app_private.reconciliation_differences.kind is 'payment, refund or payout.';
comment on column app_private.reconciliation_differences.issue is 'missing_at_provider (ours, not in their list), unknown_to_us (theirs, no row of ours), amount, currency, status (both have it, they disagree), duplicate (a second provider object for one of ours that moved money, e.g. a payout attempt paid besides the current one).';
comment on column app_private.reconciliation_differences.our_id is 'Our payment, refund or payout id, when we have one.';
comment on column app_private.reconciliation_differences.provider_id is 'The provider''s id (pi_..., re_..., tr_..., a PayPal capture, refund or payout batch id), when they have one.';
comment on column app_private.reconciliation_differences.ours is 'What we have, when the run saw it: {status, amount, currency, provider_id}.';
comment on column app_private.reconciliation_differences.theirs is 'What the provider listed: {id, status, provider_status, amount_minor, currency, created}.';
comment on column app_private.reconciliation_differences.detail is 'The difference in one sentence, for the admin.';
comment on column app_private.reconciliation_differences.object_at is 'When the object was made (ours, or theirs when unknown to us): a later run marks the difference gone only when its window covers this.';
comment on column app_private.reconciliation_differences.state is 'open, gone (a later run covering the object saw both sides agree; kept) or resolved (an admin, with a note).';
comment on column app_private.reconciliation_differences.first_run is 'The run that first saw it.';
comment on column app_private.reconciliation_differences.last_run is 'The last run that saw it.';
comment on column app_private.reconciliation_differences.first_seen_at is 'When first seen.';
comment on column app_private.reconciliation_differences.last_seen_at is 'When last seen.';
comment on column app_private.reconciliation_differences.gone_run is 'The run that no longer saw it.';
comment on column app_private.reconciliation_differences.gone_at is 'When it was marked gone.';
comment on column app_private.reconciliation_differences.resolved_by is 'The admin who resolved it.';
comment on column app_private.reconciliation_differences.resolved_at is 'When it was resolved.';
comment on column app_private.reconciliation_differences.note is 'What the admin found and did.';

-- Admins hear of new differences. The types' table forces RLS on its owner too (no policy admits
-- a write): lifted for this one insert, and forced again.
alter table app_private.notification_types no force row level security;
insert into app_private.notification_types (type, description, mandatory, email_default, in_app_default, subject, text_body, html_body) values
('reconciliation_differences', 'Admins: a reconciliation found new differences between our books and a payment provider''s.', false, true, true,
 '{{new}} new differences with {{provider}}',
 E'Hi {{first_name}},\n\nThe reconciliation with {{provider}} (run {{run_id}}) found {{new}} new differences; {{open}} are open in all. Nothing was changed: look at them on the admin dashboard''s Reconciliation page (/admin/reconciliation) and resolve each with a note.\n',
 '<p>Hi {{first_name}},</p><p>The reconciliation with {{provider}} (run {{run_id}}) found <strong>{{new}}</strong> new differences; {{open}} are open in all. Nothing was changed: look at them on the admin dashboard''s Reconciliation page (/admin/reconciliation) and resolve each with a note.</p>');
alter table app_private.notification_types force row level security;
