/*
 * 0033 disputes: chargebacks and PayPal disputes, refunds after a payout, and what a host owes.
 *
 * Why: a guest may dispute a charge with their bank or PayPal weeks after paying, and an admin
 * may refund a guest after the host's payout was computed. Both took money from the platform's
 * cash and nothing said where it would come back from. Now:
 *   - a dispute is recorded from the provider's webhook (the worker reads the dispute back from
 *     the provider): while it is open the host's payout of that booking is held, admins and the
 *     host are told, and the ledger moves the disputed money to the dispute account; won, it
 *     comes back to the platform's cash; lost, it goes to the guest;
 *   - money that goes back to a guest after the host's payout was computed (a refund, a lost
 *     dispute) is charged to the host in proportion (their share: the amount less the platform's
 *     fee on it, which the platform gives back) and recorded as owed by the host
 *     (host_receivable); it is withheld from the host's next payout in that currency.
 *
 * Guarantees after this file:
 *   - one row per provider dispute (unique provider + provider id), of one payment, never for
 *     more than the payment's amount less what was refunded; status moves open -> won | lost;
 *   - a payout's amount = gross - fee - withheld: what is sent; withheld (what the host owed,
 *     settled) only grows, and only when the payout is scheduled;
 *   - ledger entries name the dispute they are about.
 */

create type app.dispute_status as enum ('open', 'won', 'lost');
comment on type app.dispute_status is
  'open (the guest''s bank or PayPal is deciding; the money is held) -> won (it comes back to the platform) | lost (it goes to the guest). Won and lost are final.';

create table app.disputes (
  id uuid primary key default gen_random_uuid(),
  payment_id uuid not null references app.payments (id),
  booking_id uuid not null references app.bookings (id),
  guest_id uuid not null references app.users (id),
  host_id uuid not null references app.users (id),
  provider app.payment_provider not null,
  provider_dispute_id text not null check (length(provider_dispute_id) between 1 and 255),
  status app.dispute_status not null default 'open',
  amount numeric not null check (amount > 0 and amount < 1e16),
  currency char(3) not null references app.currencies (code),
  reason text check (length(reason) <= 1000),
  provider_status text check (length(provider_status) <= 100),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  closed_at timestamptz,
  constraint disputes_closed_check check ((status = 'open') = (closed_at is null))
);
create unique index disputes_provider_id_key on app.disputes (provider, provider_dispute_id);
create index disputes_payment_idx on app.disputes (payment_id);
create index disputes_booking_idx on app.disputes (booking_id);
create index disputes_host_idx on app.disputes (host_id, created_at);
create index disputes_open_idx on app.disputes (created_at) where status = 'open';
comment on table app.disputes is
  'A guest''s dispute (chargeback) of a payment, as the provider reports it (Stripe charge.dispute.*, PayPal CUSTOMER.DISPUTE.*; the worker reads each back from the provider). Written only by app_private.dispute_apply; guests read their own, hosts those of their listings, admins all.';
comment on column app.disputes.id is 'Dispute id.';
comment on column app.disputes.payment_id is 'The payment disputed.';
comment on column app.disputes.booking_id is 'The payment''s booking (its payout is held while the dispute is open).';
comment on column app.disputes.guest_id is 'Who disputes (the payment''s guest).';
comment on column app.disputes.host_id is 'Whose listing it was.';
comment on column app.disputes.provider is 'stripe or paypal: who reported it.';
comment on column app.disputes.provider_dispute_id is 'The provider''s id (Stripe dp_..., PayPal PP-D-...).';
comment on column app.disputes.status is 'open, won or lost (see app.dispute_status).';
comment on column app.disputes.amount is 'How much is disputed, in the payment''s currency at its minor units.';
comment on column app.disputes.currency is 'The payment''s currency.';
comment on column app.disputes.reason is 'Why, as the provider says (fraudulent, product_not_received, ...).';
comment on column app.disputes.provider_status is 'The provider''s own status, as last read (needs_response, under_review, WAITING_FOR_SELLER_RESPONSE, ...).';
comment on column app.disputes.created_at is 'When we learned of it.';
comment on column app.disputes.updated_at is 'When last changed.';
comment on column app.disputes.closed_at is 'When it was won or lost.';

alter table app.disputes enable row level security, force row level security;

alter table app.refunds add column charge_host boolean not null default false;
comment on column app.refunds.charge_host is
  'Whether the host''s payout of this booking counted this money as theirs (the refund was asked for after the payout was computed): when the refund succeeds, the host''s share of it is charged to the host (host_receivable) and the platform gives back its fee on it.';

alter table app.payouts add column withheld numeric not null default 0 check (withheld >= 0);
alter table app.payouts drop constraint payouts_net_check;
alter table app.payouts add constraint payouts_net_check check (amount = gross - fee - withheld);
comment on column app.payouts.withheld is
  'What the host owed in this currency (their share of refunds and lost disputes after earlier payouts) and was kept from this payout when it was scheduled; never more than gross - fee.';
comment on column app.payouts.amount is 'Paid to the host: gross - fee - withheld.';

alter table app.ledger_entries add column dispute_id uuid references app.disputes (id);
comment on column app.ledger_entries.dispute_id is 'The dispute involved, if any.';
create index ledger_entries_host_receivable_idx on app.ledger_entries (booking_id) where account = 'host_receivable';

alter table app_private.webhook_events drop constraint webhook_events_kind_check;
alter table app_private.webhook_events add constraint webhook_events_kind_check
  check (kind in ('payment', 'refunds', 'refund', 'payout', 'account', 'dispute'));
comment on column app_private.webhook_events.kind is
  'What the event is about: payment, refunds (all of a payment''s), refund, payout, account or dispute (null: nothing Nexus acts on).';

-- Row-level security is forced on the templates and their policies are re-created after the
-- migrations (post-apply): the owner adds its rows with it lifted for this statement.
alter table app_private.notification_types no force row level security;
insert into app_private.notification_types (type, description, mandatory, email_default, subject, text_body, html_body) values
('dispute_opened', 'Admins and the host: a guest disputed a payment with their bank or PayPal; the host''s payout of the booking is held.', false, true,
 'A payment for {{listing}} is disputed',
 E'Hi {{first_name}},\n\nA guest disputed {{amount}} {{currency}} paid for {{listing}} ({{reason}}). The payout of this booking is held until the dispute is decided.\n\n{{frontend_url}}/bookings/{{booking_id}}\n',
 '<p>Hi {{first_name}},</p><p>A guest disputed {{amount}} {{currency}} paid for <b>{{listing}}</b> ({{reason}}). The payout of this booking is held until the dispute is decided.</p><p><a href="{{frontend_url}}/bookings/{{booking_id}}">See the booking</a></p>'),
('dispute_closed', 'Admins and the host: a dispute was decided (won: the payout is released; lost: the money went back to the guest).', false, true,
 'The dispute over {{listing}} was {{status}}',
 E'Hi {{first_name}},\n\nThe dispute over {{amount}} {{currency}} paid for {{listing}} was {{status}}.\n\n{{frontend_url}}/bookings/{{booking_id}}\n',
 '<p>Hi {{first_name}},</p><p>The dispute over {{amount}} {{currency}} paid for <b>{{listing}}</b> was {{status}}.</p><p><a href="{{frontend_url}}/bookings/{{booking_id}}">See the booking</a></p>');
alter table app_private.notification_types force row level security;
