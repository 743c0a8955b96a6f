/*
 * 0007 payments: exchange rates, payment settings, payments, provider webhook events, and
 * refunds, host payout accounts, payouts, the ledger, and the job queue (procrastinate) that
 * carries every side effect on a payment provider.
 *
 * Why: the seed's Payment (id, booking, amount DECIMAL, payment_date, payment_method
 * credit_card | paypal | stripe) grown into the money flow of a marketplace: a guest pays
 * a pending booking upfront through Stripe or PayPal, possibly in another currency than the
 * listing's, and a successful payment confirms the booking.
 *
 * Guarantees after this file:
 *   - money is numeric, never float; an amount has at most its currency's minor units
 *     (JPY 0, USD 2, KWD 3), checked on every write by the trigger in 40_payments.sql;
 *     minor units (integers) exist only at the provider boundary, in Python;
 *   - a payment in another currency records the rate it used (booking amount x rate,
 *     rounded to the payment currency's minor units = amount);
 *   - at most one open (requires_payment or processing) payment per booking; a second payment
 *     that the provider reports paid (a late success of one we had closed) is refunded in full;
 *   - a provider id identifies one payment (unique per provider); card data is never stored:
 *     only the provider's ids and the client secret the frontend needs to confirm;
 *   - a provider event is recorded once (primary key provider + event id), so a redelivered
 *     webhook changes nothing;
 *   - a payment's non-failed refunds never exceed it; one payout per booking, amount = gross - fee;
 *   - the ledger is double entry and append-only: each posting balances per currency, so each
 *     booking's entries sum to zero per currency;
 *   - jobs live in schema procrastinate (the library's own schema, applied here at the
 *     version pinned in pyproject.toml); SQL functions defer them in the same transaction
 *     as the change that causes them, so a side effect exists exactly when its cause committed.
 */

-- The job queue: procrastinate's schema, in a schema of its own that no client role can use.
create schema procrastinate;
comment on schema procrastinate is
  'The job queue (procrastinate): jobs deferred by SQL functions in the same transaction as their cause, run by the worker (python -m api.worker). Owner only.';

create type app.payment_provider as enum ('stripe', 'paypal');
comment on type app.payment_provider is 'Who moves the money: stripe (cards, Connect) or paypal (Orders v2, Payouts).';

create type app.payment_method as enum ('credit_card', 'paypal', 'stripe');
comment on type app.payment_method is 'The seed''s payment_method: credit_card (a card through Stripe), paypal.';

create type app.payment_status as enum
  ('requires_payment', 'processing', 'succeeded', 'failed', 'canceled', 'partially_refunded', 'refunded');
comment on type app.payment_status is
  'requires_payment -> processing | succeeded | failed | canceled; processing -> succeeded | failed | canceled; succeeded -> partially_refunded | refunded; partially_refunded -> refunded. failed, canceled and refunded are final.';

create table app_private.payment_settings (
  id boolean primary key default true check (id),
  platform_fee_percent numeric(5, 2) not null default 10 check (platform_fee_percent between 0 and 50),
  rate_max_age_hours integer not null default 24 check (rate_max_age_hours between 1 and 720)
);
insert into app_private.payment_settings default values;
comment on table app_private.payment_settings is
  'Payment settings (one row; a DBA changes them with UPDATE). Read through app_private.payment_config().';
comment on column app_private.payment_settings.id is 'Always true: the table has exactly one row.';
comment on column app_private.payment_settings.platform_fee_percent is 'The platform''s fee on a completed stay, in percent of what the guest paid net of refunds; the rest is paid out to the host. Default 10.';
comment on column app_private.payment_settings.rate_max_age_hours is 'How old the newest exchange rate may be for a payment in another currency than the listing''s. Default 24.';

create table app.exchange_rates (
  base char(3) not null references app.currencies (code),
  quote char(3) not null references app.currencies (code),
  rate numeric(20, 10) not null check (rate > 0),
  source text not null check (length(source) between 1 and 200),
  fetched_at timestamptz not null default now(),
  primary key (base, quote, fetched_at),
  check (base <> quote)
);
comment on table app.exchange_rates is
  'Exchange rates, newest per pair wins: 1 base = rate quote. Loaded by a job or set by a DBA or admin; kept as history (payments record the rate they used).';
comment on column app.exchange_rates.base is 'The currency converted from (a listing''s currency).';
comment on column app.exchange_rates.quote is 'The currency converted to (what the guest pays in).';
comment on column app.exchange_rates.rate is 'How many quote units one base unit buys.';
comment on column app.exchange_rates.source is 'Where the rate came from (a provider''s name, or "admin").';
comment on column app.exchange_rates.fetched_at is 'When the rate was observed.';

create table app.payments (
  id uuid primary key default gen_random_uuid(),
  booking_id uuid not null references app.bookings (id),
  guest_id uuid not null references app.users (id),
  host_id uuid not null references app.users (id),
  provider app.payment_provider not null,
  payment_method app.payment_method not null,
  status app.payment_status not null default 'requires_payment',
  amount numeric not null check (amount > 0 and amount < 1e16),
  currency char(3) not null references app.currencies (code),
  booking_amount numeric(12, 2) not null check (booking_amount > 0),
  booking_currency char(3) not null references app.currencies (code),
  rate numeric(20, 10) check (rate > 0),
  amount_refunded numeric not null default 0 check (amount_refunded >= 0 and amount_refunded <= amount),
  provider_payment_id text check (length(provider_payment_id) between 1 and 255),
  client_secret text check (length(client_secret) between 1 and 500),
  approve_url text check (length(approve_url) between 1 and 2000),
  failure_reason text check (length(failure_reason) <= 1000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  succeeded_at timestamptz,
  failed_at timestamptz,
  canceled_at timestamptz,
  constraint payments_rate_recorded_check check ((rate is null) = (currency = booking_currency)),
  constraint payments_status_times_check check (
    (status not in ('succeeded', 'partially_refunded', 'refunded') or succeeded_at is not null)
    and (status <> 'failed' or failed_at is not null)
    and (status <> 'canceled' or canceled_at is not null)
    and (status <> 'refunded' or amount_refunded = amount)
    and (status <> 'partially_refunded' or amount_refunded between 0 and amount)
  )
);
create unique index payments_provider_id_key on app.payments (provider, provider_payment_id);
create unique index payments_one_open_per_booking on app.payments (booking_id)
  where status in ('requires_payment', 'processing');
create index payments_guest_idx on app.payments (guest_id, created_at);
create index payments_host_idx on app.payments (host_id, created_at);
create index payments_created_idx on app.payments (created_at, id);
comment on table app.payments is
  'A guest''s upfront payment of a booking, through one provider. Written only by the functions in sql/functions/40_payments.sql; guests read their own, hosts those of their listings, admins all.';
comment on column app.payments.id is 'Payment id.';
comment on column app.payments.booking_id is 'The booking paid for.';
comment on column app.payments.guest_id is 'Who pays (the booking''s guest).';
comment on column app.payments.host_id is 'Whose listing it is (for the host''s view).';
comment on column app.payments.provider is 'stripe or paypal.';
comment on column app.payments.payment_method is 'The seed''s method: credit_card (Stripe) or paypal.';
comment on column app.payments.status is 'See type app.payment_status; moves only by the transitions the trigger allows (409 otherwise).';
comment on column app.payments.amount is 'What the guest pays, in currency, written with exactly that currency''s minor units as its scale (120.00 USD, 18000 JPY).';
comment on column app.payments.currency is 'ISO 4217 code the guest pays in.';
comment on column app.payments.booking_amount is 'The booking''s total_price when the payment was made, in booking_currency.';
comment on column app.payments.booking_currency is 'The listing''s currency (the host is paid in it).';
comment on column app.payments.rate is 'The exchange rate used (1 booking_currency = rate currency); null when both are the same.';
comment on column app.payments.amount_refunded is 'How much of amount the provider has refunded (succeeded refunds; pending ones are in app.refunds).';
comment on column app.payments.provider_payment_id is 'The provider''s id (Stripe PaymentIntent pi_..., PayPal order id), once created there.';
comment on column app.payments.client_secret is 'Stripe: the PaymentIntent''s client secret the guest''s browser confirms with (never a card number). Shown to the guest only.';
comment on column app.payments.approve_url is 'PayPal: where the guest approves the order.';
comment on column app.payments.failure_reason is 'Why the payment failed or was canceled, as the provider or the platform said.';
comment on column app.payments.created_at is 'When the guest started paying.';
comment on column app.payments.updated_at is 'When last changed.';
comment on column app.payments.succeeded_at is 'When the provider confirmed the money.';
comment on column app.payments.failed_at is 'When the payment failed.';
comment on column app.payments.canceled_at is 'When the open payment was canceled (hold expired, booking canceled).';

create table app_private.webhook_events (
  provider app.payment_provider not null,
  event_id text not null check (length(event_id) between 1 and 255),
  type text not null check (length(type) between 1 and 255),
  kind text check (kind in ('payment', 'refunds', 'refund', 'payout', 'account')),
  object_id text check (length(object_id) between 1 and 255),
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  outcome text check (length(outcome) <= 1000),
  primary key (provider, event_id)
);
comment on table app_private.webhook_events is
  'Provider webhook events whose signature verified, each recorded once (a redelivery is a no-op). Only the event''s id, type and object id are kept: the worker asks the provider for the object itself, never trusting the payload.';
comment on column app_private.webhook_events.provider is 'Who sent it.';
comment on column app_private.webhook_events.event_id is 'The provider''s event id (Stripe evt_..., PayPal WH-...).';
comment on column app_private.webhook_events.type is 'The event type, e.g. payment_intent.succeeded.';
comment on column app_private.webhook_events.kind is 'What the event is about: payment, refunds (all of a payment''s), refund, payout or account (null: nothing Nexus acts on).';
comment on column app_private.webhook_events.object_id is 'The id of the object the event is about (e.g. the PaymentIntent).';
comment on column app_private.webhook_events.received_at is 'When first received.';
comment on column app_private.webhook_events.processed_at is 'When the worker applied it.';
comment on column app_private.webhook_events.outcome is 'What processing did (or why it did nothing).';

create type app.refund_kind as enum ('cancellation', 'goodwill');
comment on type app.refund_kind is 'Why money went back: cancellation (what the listing''s policy returns when a paid booking is canceled) or goodwill (an admin''s refund, e.g. a dispute).';

create type app.refund_status as enum ('pending', 'succeeded', 'failed');
comment on type app.refund_status is 'pending -> succeeded | failed. A pending refund already counts against what can still be refunded; a failed one does not.';

create table app.refunds (
  id uuid primary key default gen_random_uuid(),
  payment_id uuid not null references app.payments (id),
  booking_id uuid not null references app.bookings (id),
  guest_id uuid not null references app.users (id),
  host_id uuid not null references app.users (id),
  provider app.payment_provider not null,
  kind app.refund_kind not null,
  status app.refund_status not null default 'pending',
  amount numeric not null check (amount > 0 and amount < 1e16),
  currency char(3) not null references app.currencies (code),
  reason text check (length(reason) <= 1000),
  requested_by uuid references app.users (id),
  provider_refund_id text check (length(provider_refund_id) between 1 and 255),
  failure_reason text check (length(failure_reason) <= 1000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  succeeded_at timestamptz,
  failed_at timestamptz,
  constraint refunds_status_times_check check (
    (status <> 'succeeded' or succeeded_at is not null) and (status <> 'failed' or failed_at is not null))
);
create unique index refunds_provider_id_key on app.refunds (provider, provider_refund_id);
create index refunds_payment_idx on app.refunds (payment_id);
create index refunds_created_idx on app.refunds (created_at, id);
comment on table app.refunds is
  'Money given back to a guest, out of one payment, through the provider that took it. The payment''s non-failed refunds never exceed its amount (the trigger locks the payment to check). Written only by the functions in sql/functions/41_refunds_payouts.sql.';
comment on column app.refunds.id is 'Refund id (also the provider idempotency key: nexus-refund-{id}).';
comment on column app.refunds.payment_id is 'The payment refunded.';
comment on column app.refunds.booking_id is 'The payment''s booking.';
comment on column app.refunds.guest_id is 'Who gets the money back.';
comment on column app.refunds.host_id is 'Whose listing it was (for the host''s view).';
comment on column app.refunds.provider is 'The payment''s provider: money goes back the way it came.';
comment on column app.refunds.kind is 'cancellation (the policy''s refund) or goodwill (an admin''s).';
comment on column app.refunds.status is 'pending, succeeded or failed (see app.refund_status).';
comment on column app.refunds.amount is 'How much, in the payment''s currency, at its minor units.';
comment on column app.refunds.currency is 'The payment''s currency.';
comment on column app.refunds.reason is 'Why (the cancellation reason, or the admin''s).';
comment on column app.refunds.requested_by is 'The admin who refunded, or the user who canceled; null for the system (an expired hold is never refunded).';
comment on column app.refunds.provider_refund_id is 'The provider''s refund id (Stripe re_..., PayPal refund id).';
comment on column app.refunds.failure_reason is 'Why it failed, as the provider said.';
comment on column app.refunds.created_at is 'When asked for.';
comment on column app.refunds.updated_at is 'When last changed.';
comment on column app.refunds.succeeded_at is 'When the provider confirmed it.';
comment on column app.refunds.failed_at is 'When it failed.';

create type app.payout_account_status as enum ('pending', 'active');
comment on type app.payout_account_status is 'pending: the host has not finished the provider''s onboarding; active: payouts can be sent.';

create table app.payout_accounts (
  host_id uuid primary key references app.users (id),
  provider app.payment_provider not null,
  provider_account_id text check (length(provider_account_id) between 1 and 255),
  status app.payout_account_status not null default 'pending',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint payout_accounts_active_has_id_check check (status = 'pending' or provider_account_id is not null)
);
create unique index payout_accounts_provider_id_key on app.payout_accounts (provider, provider_account_id)
  where provider = 'stripe';
comment on table app.payout_accounts is
  'Where a host is paid: a Stripe Connect account (acct_..., active once onboarding lets it receive payouts) or a PayPal email (active at once). One per host; setting another replaces it.';
comment on column app.payout_accounts.host_id is 'The host.';
comment on column app.payout_accounts.provider is 'stripe (Connect transfer) or paypal (Payouts to an email).';
comment on column app.payout_accounts.provider_account_id is 'Stripe: the connected account id; PayPal: the receiver''s email.';
comment on column app.payout_accounts.status is 'pending or active (see app.payout_account_status).';
comment on column app.payout_accounts.created_at is 'When first set.';
comment on column app.payout_accounts.updated_at is 'When last changed.';

create type app.payout_status as enum ('pending', 'scheduled', 'processing', 'paid', 'failed');
comment on type app.payout_status is
  'pending (the host has no active payout account yet: it accrues) -> scheduled (a job sends it) -> processing (the provider accepted it) -> paid | failed; paid -> failed when the provider returns it (e.g. PayPal, unclaimed); failed -> scheduled when an admin retries.';

create table app.payouts (
  id uuid primary key default gen_random_uuid(),
  booking_id uuid not null unique references app.bookings (id),
  payment_id uuid not null references app.payments (id),
  host_id uuid not null references app.users (id),
  status app.payout_status not null default 'pending',
  gross numeric not null check (gross > 0 and gross < 1e16),
  fee_percent numeric(5, 2) not null check (fee_percent between 0 and 50),
  fee numeric not null check (fee >= 0),
  amount numeric not null check (amount >= 0),
  currency char(3) not null references app.currencies (code),
  provider app.payment_provider,
  destination text check (length(destination) between 1 and 255),
  provider_payout_id text check (length(provider_payout_id) between 1 and 255),
  attempt integer not null default 1 check (attempt >= 1),
  failure_reason text check (length(failure_reason) <= 1000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  scheduled_at timestamptz,
  paid_at timestamptz,
  failed_at timestamptz,
  constraint payouts_net_check check (amount = gross - fee),
  constraint payouts_status_check check (
    (status in ('pending') or (provider is not null and destination is not null and scheduled_at is not null))
    and (status <> 'paid' or paid_at is not null)
    and (status <> 'failed' or failed_at is not null))
);
create unique index payouts_provider_id_key on app.payouts (provider, provider_payout_id);
create index payouts_host_idx on app.payouts (host_id, created_at);
create index payouts_status_idx on app.payouts (status) where status in ('pending', 'scheduled', 'failed');
comment on table app.payouts is
  'What a host is paid for one booking once it is settled (the stay completed, or it was canceled with money kept under the policy): gross = what the guest paid net of refunds, in the listing''s currency; fee = gross x fee_percent (payment_settings.platform_fee_percent when it was computed), rounded to the currency''s minor units; amount = gross - fee. Written only by the functions in sql/functions/41_refunds_payouts.sql.';
comment on column app.payouts.id is 'Payout id.';
comment on column app.payouts.booking_id is 'The booking paid out (one payout per booking).';
comment on column app.payouts.payment_id is 'The guest''s payment the money came from.';
comment on column app.payouts.host_id is 'Who is paid.';
comment on column app.payouts.status is 'See app.payout_status.';
comment on column app.payouts.gross is 'What the guest paid net of refunds, in currency (the listing''s): the payment''s booking_amount in proportion to what was kept.';
comment on column app.payouts.fee_percent is 'The platform fee in percent, as it was when the payout was computed.';
comment on column app.payouts.fee is 'The platform''s fee: gross x fee_percent / 100 at the currency''s minor units.';
comment on column app.payouts.amount is 'Paid to the host: gross - fee.';
comment on column app.payouts.currency is 'The listing''s currency.';
comment on column app.payouts.provider is 'Through which provider it was sent (the host''s payout account when scheduled).';
comment on column app.payouts.destination is 'The Stripe connected account or PayPal email it was sent to.';
comment on column app.payouts.provider_payout_id is 'Stripe transfer id (tr_...) or PayPal payout batch id.';
comment on column app.payouts.attempt is 'Which provider attempt this is (the idempotency key is nexus-payout-{id}.{attempt}): a retry after a failure the provider confirmed is a new attempt; after one it never answered (it may have paid), the same attempt, so the provider returns what it did.';
comment on column app.payouts.failure_reason is 'Why the last attempt failed.';
comment on column app.payouts.created_at is 'When computed (the booking settled).';
comment on column app.payouts.updated_at is 'When last changed.';
comment on column app.payouts.scheduled_at is 'When last handed to the worker.';
comment on column app.payouts.paid_at is 'When the provider confirmed it.';
comment on column app.payouts.failed_at is 'When it last failed.';

create type app.ledger_account as enum ('guest', 'platform_cash', 'fx', 'host_payable', 'platform_fee', 'host');
comment on type app.ledger_account is
  'Where money is, for one booking: guest (paid in, negative), platform_cash (held by the platform at its provider), fx (currency conversion), host_payable (owed to the host), platform_fee (the platform''s revenue), host (paid out).';

create table app.ledger_entries (
  id bigint generated always as identity primary key,
  txn uuid not null,
  booking_id uuid not null references app.bookings (id),
  payment_id uuid references app.payments (id),
  refund_id uuid references app.refunds (id),
  payout_id uuid references app.payouts (id),
  account app.ledger_account not null,
  amount numeric not null check (amount <> 0),
  currency char(3) not null references app.currencies (code),
  memo text not null check (length(memo) between 1 and 200),
  created_at timestamptz not null default now()
);
create index ledger_entries_booking_idx on app.ledger_entries (booking_id);
create index ledger_entries_created_idx on app.ledger_entries (created_at);
comment on table app.ledger_entries is
  'The books, double entry and append-only: every movement of money is a transaction (txn) of entries that sum to zero in each currency, posted by app_private.ledger_post in the same transaction as the change that moved the money. So every booking''s entries sum to zero per currency, and an account''s balance is the sum of its entries.';
comment on column app.ledger_entries.id is 'Entry id, in posting order.';
comment on column app.ledger_entries.txn is 'The posting this entry belongs to; its entries balance per currency.';
comment on column app.ledger_entries.booking_id is 'The booking the money is about.';
comment on column app.ledger_entries.payment_id is 'The payment involved, if any.';
comment on column app.ledger_entries.refund_id is 'The refund involved, if any.';
comment on column app.ledger_entries.payout_id is 'The payout involved, if any.';
comment on column app.ledger_entries.account is 'Which account moves (see app.ledger_account).';
comment on column app.ledger_entries.amount is 'Signed amount: positive into the account, negative out of it.';
comment on column app.ledger_entries.currency is 'ISO 4217 code.';
comment on column app.ledger_entries.memo is 'What happened: payment, refund, conversion, fee, payout accrued, payout sent.';
comment on column app.ledger_entries.created_at is 'When posted.';

alter table app_private.payment_settings enable row level security, force row level security;
alter table app.exchange_rates enable row level security, force row level security;
alter table app.payments enable row level security, force row level security;
alter table app_private.webhook_events enable row level security, force row level security;
alter table app.refunds enable row level security, force row level security;
alter table app.payout_accounts enable row level security, force row level security;
alter table app.payouts enable row level security, force row level security;
alter table app.ledger_entries enable row level security, force row level security;
