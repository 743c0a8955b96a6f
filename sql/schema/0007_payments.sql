/*
 * 0007 payments: exchange rates, payment settings, payments, provider webhook events, and
 * the job queue (procrastinate) that carries every side effect on a payment provider.
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
 *   - at most one open (requires_payment or processing) and one succeeded payment per booking;
 *   - a provider id identifies one payment (unique per provider); card data is never stored:
 *     only the provider's ids and the client secret the frontend needs to confirm;
 *   - a provider event is recorded once (primary key provider + event id), so a redelivered
 *     webhook changes nothing;
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
create unique index payments_one_paid_per_booking on app.payments (booking_id)
  where status in ('succeeded', 'partially_refunded', 'refunded');
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
comment on column app.payments.amount_refunded is 'How much of amount has been refunded.';
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
comment on column app_private.webhook_events.object_id is 'The id of the object the event is about (e.g. the PaymentIntent).';
comment on column app_private.webhook_events.received_at is 'When first received.';
comment on column app_private.webhook_events.processed_at is 'When the worker applied it.';
comment on column app_private.webhook_events.outcome is 'What processing did (or why it did nothing).';

alter table app_private.payment_settings enable row level security, force row level security;
alter table app.exchange_rates enable row level security, force row level security;
alter table app.payments enable row level security, force row level security;
alter table app_private.webhook_events enable row level security, force row level security;
