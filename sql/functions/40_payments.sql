/*
 * Payments: currencies and exchange rates, paying a booking upfront, what providers report.
 *
 * The flow (every provider call is a job deferred here, in the same transaction as its cause):
 *   1. api.payment_create (the booking's guest): a payment row for the pending booking, in the
 *      listing's currency or another one at the newest fresh rate, and the job
 *      payments.create_at_provider. The API then makes the same idempotent provider call at
 *      once, so the guest usually gets the client secret in the response; if the provider is
 *      slow or down, the job retries and the guest reads the payment again.
 *   2. api.payment_attach (the API or the worker): the provider's id and client secret.
 *   3. A provider webhook whose signature the API verified: api.webhook_receive records the
 *      event once and defers payments.apply_event. The worker asks the provider for the object
 *      (never trusting the webhook's payload) and calls app_private.payment_apply, which checks
 *      amount and currency against the payment and moves it: succeeded confirms the booking.
 *   4. A hold that expires or a booking canceled while its payment is open cancels the payment
 *      and defers payments.cancel_at_provider (app_private.payments_cancel_open).
 *
 * Access: reads are SECURITY INVOKER under the policies in sql/policies/40_payments.sql (a
 * guest their own payments, a host those of their listings without the client secret,
 * admins all). Writes are SECURITY DEFINER and check the caller explicitly; the provider's
 * side is api_internal (the API process) or the owner (the worker).
 *
 * From psql, as the owner: select * from procrastinate.procrastinate_jobs order by id desc;
 */

create trigger payments_set_updated_at before update on app.payments
  for each row execute function app.tg__set_updated_at();

create function app_private.payment_config() returns app_private.payment_settings
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select s from app_private.payment_settings s where s.id
$$;
comment on function app_private.payment_config() is
  'The payment settings row (app_private.payment_settings): platform_fee_percent, rate_max_age_hours.';

create function app.minor_units(p_currency text) returns int
language sql stable parallel safe security invoker
as $$
  select c.minor_units::int from app.currencies c where c.code = p_currency
$$;
comment on function app.minor_units(text) is 'Digits after the decimal point of a currency (ISO 4217): 2 for USD, 0 for JPY, 3 for KWD; null for an unknown code.';

create function app.money(p_amount numeric, p_currency text, p_field text default 'amount') returns numeric
language plpgsql stable security invoker
as $$
begin
  if round(p_amount, app.minor_units(p_currency)) <> p_amount then
    perform app.fail(400, format('%s amounts have at most %s decimals.', p_currency, app.minor_units(p_currency)), p_field);
  end if;
  -- Written with exactly the currency's minor units as the scale: 120 USD is 120.00, 5000 JPY is 5000.
  return round(p_amount, app.minor_units(p_currency));
end
$$;
comment on function app.money(numeric, text, text) is
  'An amount of p_currency written at exactly its minor units (120 USD -> 120.00); more decimals than the currency has is a 400 naming p_field.';

create function app_private.provider_disagrees(p_amount_minor bigint, p_currency text, p_amount numeric,
                                               p_our_currency text)
returns text
language sql stable security invoker
as $$
  select case when upper(p_currency) is distinct from p_our_currency
                or p_amount_minor is distinct from (p_amount * power(10::numeric, app.minor_units(p_our_currency)))::bigint
              then format('ignored: the provider says %s %s (minor units), we have %s %s',
                          p_amount_minor, upper(p_currency), p_amount, p_our_currency)
         end
$$;
comment on function app_private.provider_disagrees(bigint, text, numeric, text) is
  'Null when a provider''s amount (in minor units) and currency are ours; otherwise why the provider''s record is ignored. Used by payment_apply, refund_apply and payout_apply: what a provider reports is applied only when it is about the same money.';

create function app.exchange_rate(p_base text, p_quote text) returns numeric
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  with fresh as (
    select r.* from app.exchange_rates r
     where r.fetched_at > now() - make_interval(hours => (app_private.payment_config()).rate_max_age_hours)),
  candidates as (
    -- The pair itself, from an admin or the feed.
    select r.rate, r.source, r.fetched_at from fresh r where r.base = p_base and r.quote = p_quote
    union all
    -- Through the feed's base (1 EUR = a base, = b quote, so 1 base = b / a quote), both legs fresh.
    select round(q.rate / b.rate, 10), q.source, least(b.fetched_at, q.fetched_at)
      from app_private.rate_feed f
      join lateral (select * from fresh r where r.base = f.base and r.quote = p_base and r.source <> 'admin'
                     order by r.fetched_at desc limit 1) b on true
      join lateral (select * from fresh r where r.base = f.base and r.quote = p_quote and r.source <> 'admin'
                     order by r.fetched_at desc limit 1) q on true
     where p_base <> f.base and p_quote <> f.base)
  select c.rate from candidates c
   -- An admin's rate wins for the (UTC) day it was set; otherwise the newest.
   order by (c.source = 'admin' and (c.fetched_at at time zone 'UTC')::date = (now() at time zone 'UTC')::date) desc,
            c.fetched_at desc
   limit 1
$$;
comment on function app.exchange_rate(text, text) is
  'The rate for 1 p_base in p_quote, or null when none is fresh (observed within payment_settings.rate_max_age_hours): an admin''s rate for the pair set today (UTC) wins; otherwise the newest of the pair''s own rate and the one derived through the rate feed''s base currency (rates.fetch records 1 EUR in each currency; 1 USD in GBP is then GBP/USD). Security definer: the rates'' maximum age and the feed''s base are in app_private, which no client role may read.';

create function app_private.exchange_rates_record(p_source text, p_base text, p_day date, p_rates jsonb)
returns jsonb
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_bad text;
  v_known text[];
  v_unknown text[];
  v_missing text[];
  v_count int;
begin
  -- A feed with a rate that is not a positive number is broken as a whole: nothing of it is used.
  select string_agg(format('%s=%s', key, value), ', ') into v_bad
    from jsonb_each_text(p_rates)
   where case when value ~ '^[0-9]{1,10}(\.[0-9]{1,10})?$' then value::numeric <= 0 else true end;
  if app.minor_units(p_base) is null then
    v_bad := format('base %s is not a currency we know', p_base);
  elsif p_day is null or p_day > (now() at time zone 'UTC')::date + 1 or p_day < (now() at time zone 'UTC')::date - 7 then
    v_bad := format('the feed''s date %s is not within the last week', coalesce(p_day::text, 'missing'));
  elsif (select count(*) from jsonb_object_keys(p_rates)) = 0 then
    v_bad := 'no rate in the feed';
  end if;
  if v_bad is not null then
    return app_private.exchange_rates_failed(p_source, 'refused: ' || left(v_bad, 400));
  end if;
  select array_agg(key order by key) filter (where app.minor_units(key) is not null and key <> p_base),
         array_agg(key order by key) filter (where app.minor_units(key) is null)
    into v_known, v_unknown
    from jsonb_object_keys(p_rates) key;
  select array_agg(c.code order by c.code) into v_missing
    from app.currencies c where c.code <> p_base and not c.code = any(coalesce(v_known, '{}'));
  insert into app.exchange_rates (base, quote, rate, source)
  select p_base, q, (p_rates ->> q)::numeric(20, 10), format('%s %s', left(p_source, 180), p_day)
    from unnest(coalesce(v_known, '{}')) q;
  get diagnostics v_count = row_count;
  update app_private.rate_feed
     set source = p_source, attempted_at = now(), succeeded_at = now(), feed_date = p_day, base = p_base,
         rates = v_count, error = null,
         skipped = jsonb_build_object('missing', coalesce(to_jsonb(v_missing), '[]'), 'unknown', coalesce(to_jsonb(v_unknown), '[]'));
  return jsonb_build_object('recorded', v_count, 'feed_date', p_day, 'missing', coalesce(to_jsonb(v_missing), '[]'));
end
$$;
comment on function app_private.exchange_rates_record(text, text, date, jsonb) is
  'The worker (rates.fetch) hands over what the feed said: its source, base currency, date and {code: rate} (1 base in code). Every rate must be a positive number and the date within the last week, else nothing is recorded (app_private.exchange_rates_failed). Rates of currencies we know are recorded, now, with source "<feed> <date>"; a currency of ours the feed lacks keeps its last good rate until it is too old, and is listed in rate_feed.skipped. Returns {recorded, feed_date, missing}.';

create function app_private.exchange_rates_failed(p_source text, p_error text) returns jsonb
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
  update app_private.rate_feed
     set source = p_source, attempted_at = now(), error = left(p_error, 500), failed_at = now();
  select jsonb_build_object('recorded', 0, 'error', left(p_error, 500));
$$;
comment on function app_private.exchange_rates_failed(text, text) is
  'Record that the rate feed gave nothing usable (unreachable, too slow, too large, not the expected XML, a bad rate): no rate changes, so the last good ones stay until too old; the admin System page and the metrics show the error.';

-- ---------------------------------------------------------------------------------
-- Currencies and rates
-- ---------------------------------------------------------------------------------

create function api.currency_list(p_page text default null, p_page_size text default null) returns app.page
language plpgsql stable security invoker
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  select coalesce(max(x.total), 0),
         coalesce(json_agg(jsonb_build_object('code', x.code, 'name', x.name, 'minor_units', x.minor_units)
                           order by x.code), '[]')
    into v_count, v_results
    from (select c.code, c.name, c.minor_units, count(*) over () as total
            from app.currencies c
           order by c.code
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.currency_list(text, text) is
  'GET /api/currencies/ — the ISO 4217 currencies listings are priced and payments are made in, with their minor units (digits after the decimal point), by code. Anyone.';

create function api.exchange_rate_set(p_body jsonb) returns jsonb
language plpgsql volatile security invoker
as $$
declare
  v_errors jsonb := '{}';
  v_missing jsonb := '{}';
  v_row app.exchange_rates;
begin
  v_errors := app.check_text(v_errors, p_body, 'base', 3, 3, p_required => true);
  v_errors := app.check_text(v_errors, p_body, 'quote', 3, 3, p_required => true);
  v_errors := app.check_number(v_errors, p_body, 'rate', 0.0000000001, 9999999999, 10, p_required => true);
  if not (v_errors ? 'base' or v_errors ? 'quote') and upper(btrim(p_body ->> 'base')) = upper(btrim(p_body ->> 'quote')) then
    v_errors := app.add_error(v_errors, 'quote', 'Must differ from base.');
  end if;
  perform app.raise_errors(v_errors);
  -- Well formed, but not a currency we know: 404 naming each.
  if app.minor_units(upper(btrim(p_body ->> 'base'))) is null then
    v_missing := app.add_error(v_missing, 'base', 'Must be a supported ISO 4217 code, e.g. USD.');
  end if;
  if app.minor_units(upper(btrim(p_body ->> 'quote'))) is null then
    v_missing := app.add_error(v_missing, 'quote', 'Must be a supported ISO 4217 code, e.g. EUR.');
  end if;
  perform app.raise_errors(v_missing, 404);
  insert into app.exchange_rates (base, quote, rate, source)
  values (upper(btrim(p_body ->> 'base')), upper(btrim(p_body ->> 'quote')), (p_body ->> 'rate')::numeric, 'admin')
  returning * into v_row;
  return jsonb_build_object('base', v_row.base, 'quote', v_row.quote, 'rate', v_row.rate::text,
                            'source', v_row.source, 'fetched_at', v_row.fetched_at);
end
$$;
comment on function api.exchange_rate_set(jsonb) is
  'POST /api/exchange-rates/ {base, quote, rate} — record that 1 base buys rate quote, now (source "admin"). Payments in quote for listings priced in base use the newest rate younger than payment_settings.rate_max_age_hours. 400 naming each field that is malformed (or quote equal to base), then 404 naming base or quote when it is not a currency of GET /api/currencies/. Admins.';

-- ---------------------------------------------------------------------------------
-- The payment row
-- ---------------------------------------------------------------------------------

create function app.tg_payments__guard() returns trigger
language plpgsql security invoker
as $$
begin
  new.amount := app.money(new.amount, new.currency);
  new.amount_refunded := app.money(new.amount_refunded, new.currency, 'amount_refunded');
  if tg_op = 'UPDATE' then
    if new.status is distinct from old.status and not (
         (old.status = 'requires_payment' and new.status in ('processing', 'succeeded', 'failed', 'canceled'))
      or (old.status = 'processing' and new.status in ('succeeded', 'failed', 'canceled'))
      -- Only the provider's own record moves a closed payment: the money arrived after all.
      or (old.status in ('failed', 'canceled') and new.status = 'succeeded')
      or (old.status = 'succeeded' and new.status in ('partially_refunded', 'refunded'))
      or (old.status = 'partially_refunded' and new.status = 'refunded')) then
      perform app.fail(409, format('A %s payment cannot become %s.', old.status, new.status), 'status');
    end if;
    if (new.booking_id, new.guest_id, new.host_id, new.provider, new.amount, new.currency, new.booking_amount,
        new.booking_currency, new.rate, new.created_at)
       is distinct from
       (old.booking_id, old.guest_id, old.host_id, old.provider, old.amount, old.currency, old.booking_amount,
        old.booking_currency, old.rate, old.created_at) then
      perform app.fail(409, 'A payment''s booking, parties, provider, amount, currency and rate never change.');
    end if;
    if old.provider_payment_id is not null and new.provider_payment_id is distinct from old.provider_payment_id then
      perform app.fail(409, 'A payment''s provider id never changes once set.', 'provider_payment_id');
    end if;
  end if;
  return new;
end
$$;
comment on function app.tg_payments__guard() is
  'Trigger: an amount has at most its currency''s minor units (400) and is stored with exactly that scale; statuses move only requires_payment -> processing|succeeded|failed|canceled, processing -> succeeded|failed|canceled, failed|canceled -> succeeded (the provider took the money after all: payment_apply then refunds it), succeeded -> partially_refunded|refunded, partially_refunded -> refunded (409 otherwise, even from psql); the paid facts and a provider id once set never change.';

create trigger payments_guard before insert or update on app.payments
  for each row execute function app.tg_payments__guard();

create function app.refund_json(r app.refunds) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', r.id, 'payment_id', r.payment_id, 'booking_id', r.booking_id, 'provider', r.provider, 'kind', r.kind,
    'status', r.status, 'amount', r.amount::text, 'currency', r.currency, 'reason', r.reason,
    'provider_refund_id', r.provider_refund_id, 'failure_reason', r.failure_reason,
    'created_at', r.created_at, 'succeeded_at', r.succeeded_at, 'failed_at', r.failed_at)
$$;
comment on function app.refund_json(app.refunds) is 'A refund as the API shows it; money as a decimal string.';

create function app.dispute_json(d app.disputes) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', d.id, 'payment_id', d.payment_id, 'booking_id', d.booking_id, 'provider', d.provider,
    'provider_dispute_id', d.provider_dispute_id, 'status', d.status, 'amount', d.amount::text,
    'currency', d.currency, 'reason', d.reason, 'provider_status', d.provider_status,
    'created_at', d.created_at, 'closed_at', d.closed_at)
$$;
comment on function app.dispute_json(app.disputes) is 'A dispute as the API shows it; money as a decimal string.';

create function app.payment_json(p app.payments) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', p.id, 'booking_id', p.booking_id, 'provider', p.provider, 'payment_method', p.payment_method,
    'status', p.status, 'amount', p.amount::text, 'currency', p.currency,
    'booking_amount', p.booking_amount::text, 'booking_currency', p.booking_currency, 'rate', p.rate::text,
    'amount_refunded', p.amount_refunded::text, 'provider_payment_id', p.provider_payment_id,
    -- What the guest's browser needs to pay; nobody else sees it.
    'client_secret', case when p.guest_id = app.current_user_id() then p.client_secret end,
    'approve_url', case when p.guest_id = app.current_user_id() then p.approve_url end,
    'failure_reason', p.failure_reason,
    'created_at', p.created_at, 'updated_at', p.updated_at, 'succeeded_at', p.succeeded_at,
    'failed_at', p.failed_at, 'canceled_at', p.canceled_at,
    'refunds', coalesce((select jsonb_agg(app.refund_json(r) order by r.created_at, r.id)
                           from app.refunds r where r.payment_id = p.id), '[]'),
    'disputes', coalesce((select jsonb_agg(app.dispute_json(d) order by d.created_at, d.id)
                            from app.disputes d where d.payment_id = p.id), '[]'))
$$;
comment on function app.payment_json(app.payments) is
  'A payment as the API shows it, with its refunds and disputes; money as decimal strings. client_secret and approve_url only to the paying guest.';

-- ---------------------------------------------------------------------------------
-- Paying
-- ---------------------------------------------------------------------------------

create function api.payment_create(p_id text, p_body jsonb, p_idempotency_key text default null) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_errors jsonb := '{}';
  v_booking app.bookings;
  v_currency text;
  v_rate numeric;
  v_payment app.payments;
  v_result jsonb;
begin
  v_booking := app.booking_for_party(p_id);
  if v_booking.guest_id is distinct from v_uid then
    perform app.fail(403, 'Only the booking''s guest can pay for it.');
  end if;
  v_result := app_private.idempotent_replay(v_uid, p_idempotency_key, 'payment_create:' || v_booking.id, p_body);
  if v_result is not null then
    -- The same payment, as it is now (it may have been attached, paid or failed since).
    return (select app.payment_json(p) from app.payments p where p.id = (v_result ->> 'id')::uuid);
  end if;

  v_errors := app.check_choice(v_errors, p_body, 'provider', enum_range(null::app.payment_provider)::text[], p_required => true);
  v_errors := app.check_text(v_errors, p_body, 'currency', 3, 3);
  v_currency := coalesce(upper(btrim(p_body ->> 'currency')), v_booking.currency);
  if not v_errors ? 'currency' and app.minor_units(v_currency) is null then
    v_errors := app.add_error(v_errors, 'currency', 'Must be a supported ISO 4217 code, e.g. EUR.');
  elsif not v_errors ? 'currency' and v_currency <> v_booking.currency then
    v_rate := app.exchange_rate(v_booking.currency, v_currency);
    if v_rate is null then
      v_errors := app.add_error(v_errors, 'currency',
        format('There is no recent exchange rate from %s to %s; pay in %s.', v_booking.currency, v_currency, v_booking.currency));
    end if;
  end if;
  perform app.raise_errors(v_errors);

  if v_booking.status <> 'pending' then
    perform app.fail(409, format('A %s booking cannot be paid for.', v_booking.status), 'status');
  end if;
  if v_booking.expires_at <= now() then
    perform app.fail(409, 'This hold has expired; book again.', 'status');
  end if;

  -- One open payment per booking: asking again returns it (whatever provider it uses).
  select * into v_payment from app.payments p
   where p.booking_id = v_booking.id and p.status in ('requires_payment', 'processing');
  if not found then
    insert into app.payments (booking_id, guest_id, host_id, provider, payment_method, amount, currency,
                              booking_amount, booking_currency, rate)
    values (v_booking.id, v_booking.guest_id, v_booking.host_id, (p_body ->> 'provider')::app.payment_provider,
            case p_body ->> 'provider' when 'paypal' then 'paypal' else 'credit_card' end::app.payment_method,
            round(v_booking.total_price * coalesce(v_rate, 1), app.minor_units(v_currency)), v_currency,
            v_booking.total_price, v_booking.currency, v_rate)
    returning * into v_payment;
    perform app_private.defer('payments.create_at_provider', jsonb_build_object('payment_id', v_payment.id),
                              'payment:' || v_payment.id);
  end if;
  return app_private.idempotent_remember(v_uid, p_idempotency_key, 'payment_create:' || v_booking.id, p_body,
                                         app.payment_json(v_payment));
exception when unique_violation then
  -- A concurrent request opened one first (payments_one_open_per_booking).
  perform app.fail(409, 'A payment for this booking is being created; read it again.', 'status');
end
$$;
comment on function api.payment_create(text, jsonb, text) is
  'POST /api/bookings/{id}/payments/ {provider: stripe | paypal, currency?} — the booking''s guest pays a pending booking upfront: amount = total_price, or in another supported currency at the newest rate younger than rate_max_age_hours (recorded as rate; no fresh rate is a 400 naming currency), rounded to that currency''s minor units. Creating it at the provider is a job (payments.create_at_provider) written in this transaction. One open payment per booking: asking again returns the open one. 409 unless the booking is pending and its hold unexpired; 403 for the host; 404 for anyone else. Idempotency-Key honoured: a replay answers with that payment as it is now. Security definer: no client role may insert into app.payments; it finds the booking through app.booking_for_party (owner only), keeps idempotency records and defers the provider job in app_private.';

create function api.payment_attach(p_id uuid, p_provider_payment_id text, p_client_secret text default null,
                                   p_approve_url text default null)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payment app.payments;
begin
  update app.payments p
     set provider_payment_id = p_provider_payment_id,
         -- What the guest pays with, only while the payment is open.
         client_secret = case when p.status = 'requires_payment' then coalesce(p_client_secret, p.client_secret) end,
         approve_url = case when p.status = 'requires_payment' then coalesce(p_approve_url, p.approve_url) end
   where p.id = p_id
     and (p.provider_payment_id is null or p.provider_payment_id = p_provider_payment_id)
  returning * into v_payment;
  if not found then
    perform app.fail(409, 'This payment is attached to another provider object.', 'provider_payment_id');
  end if;
  if v_payment.status in ('failed', 'canceled') then
    -- Created at the provider after we closed it (a slow call, a replayed request): cancel it there too.
    perform app_private.defer('payments.cancel_at_provider', jsonb_build_object('payment_id', v_payment.id),
                              'payment:' || v_payment.id);
  end if;
  return app.payment_json(v_payment);
end
$$;
comment on function api.payment_attach(uuid, text, text, text) is
  'Record the provider''s object for a payment (its id, and the Stripe client secret or PayPal approval URL while the payment is open). A payment already failed or canceled keeps no secret and its new provider object is canceled (a job). Idempotent: the same id again changes nothing; another id is a 409. Called by the API right after api.payment_create and by the worker''s retries (payments.create_at_provider); never by clients (api_internal and the owner only). Security definer: the API process (api_internal) may not write app.payments or procrastinate''s queue (app_private.defer).';

create function api.payment_capture(p_id text) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payment app.payments;
begin
  select * into v_payment from app.payments p where p.id = app.parse_uuid(p_id);
  -- why: "a party of the payment or an admin" is about the row, which no grant can say.
  if not found or not (v_payment.guest_id = app.current_user_id() or app.is_admin()
                       or v_payment.host_id = app.current_user_id()) then
    perform app.fail(404, 'Not found.');
  end if;
  if v_payment.guest_id <> app.current_user_id() then
    perform app.fail(403, 'Only the paying guest can capture their payment.');
  end if;
  if v_payment.provider <> 'paypal' then
    perform app.fail(409, 'Only a PayPal payment is captured; a Stripe payment completes in the guest''s browser.', 'provider');
  end if;
  if v_payment.status not in ('requires_payment', 'processing', 'succeeded') then
    perform app.fail(409, format('A %s payment cannot be captured.', v_payment.status), 'status');
  end if;
  if v_payment.provider_payment_id is null then
    perform app.fail(409, 'This payment is still being created at PayPal; read it again.', 'status');
  end if;
  if v_payment.status <> 'succeeded' then
    perform app_private.defer('payments.capture_at_provider', jsonb_build_object('payment_id', v_payment.id),
                              'payment:' || v_payment.id);
  end if;
  return app.payment_json(v_payment);
end
$$;
comment on function api.payment_capture(text) is
  'POST /api/payments/{id}/capture/ — after the guest approved the PayPal order, take the money: defers payments.capture_at_provider (which the API also runs at once, so the answer is usually the succeeded payment). Capturing a succeeded payment again changes nothing. 409 for a Stripe payment, a payment not yet at PayPal, or a failed, canceled or refunded one; 403 for the host; 404 for anyone else. Security definer: it defers the capture job into procrastinate''s queue (app_private.defer), which no client role may write.';

create function api.payment_report(p_provider text, p_provider_payment_id text, p_status text,
                                   p_amount_minor bigint, p_currency text, p_reason text default null)
returns text
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return app_private.payment_apply(p_provider, p_provider_payment_id, p_status, p_amount_minor, p_currency, p_reason);
end
$$;
comment on function api.payment_report(text, text, text, bigint, text, text) is
  'What the API itself just heard from a provider about a payment (the answer to its own PayPal capture call): applied as app_private.payment_apply does. Never by clients (api_internal only). Security definer: it applies the provider''s report to the payment and the ledger through app_private.payment_apply, which the API process (api_internal) may not reach.';

-- ---------------------------------------------------------------------------------
-- What providers report
-- ---------------------------------------------------------------------------------

create function api.webhook_receive(p_provider text, p_event_id text, p_type text, p_kind text default null,
                                    p_object_id text default null)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_new boolean;
begin
  if p_provider is null or not (p_provider = any (enum_range(null::app.payment_provider)::text[])) then
    perform app.fail(400, 'Unknown provider.', 'provider');
  end if;
  -- A redelivery only counts itself (deliveries, read by app_private.metrics()).
  insert into app_private.webhook_events as e (provider, event_id, type, kind, object_id)
  values (p_provider::app.payment_provider, p_event_id, p_type, p_kind, p_object_id)
  on conflict (provider, event_id) do update set deliveries = e.deliveries + 1
  returning e.deliveries = 1 into v_new;
  if v_new and p_kind is not null and p_object_id is not null then
    perform app_private.defer('payments.apply_event',
                              jsonb_build_object('provider', p_provider, 'event_id', p_event_id),
                              'provider-object:' || p_object_id);
  end if;
  return jsonb_build_object('received', true, 'new', v_new);
end
$$;
comment on function api.webhook_receive(text, text, text, text, text) is
  'Record a provider event whose signature the API verified, once: a redelivery changes nothing but the event''s count of deliveries. A new event about an object Nexus acts on (p_kind: payment, refunds (all of a payment''s), refund, payout, account) defers payments.apply_event, which asks the provider for that object''s current state (so events may arrive in any order). Returns {"received": true, "new": bool}. api_internal only. Security definer: it records the event in app_private.webhook_events and defers its processing (app_private.defer), which the API process (api_internal) may not reach.';

create function app_private.payment_apply(p_provider text, p_provider_payment_id text, p_status text,
                                          p_amount_minor bigint, p_currency text, p_reason text default null)
returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payment app.payments;
  v_booking app.bookings;
begin
  select * into v_payment from app.payments p
   where p.provider = p_provider::app.payment_provider and p.provider_payment_id = p_provider_payment_id
   for update;
  if not found then
    return 'ignored: no payment has this provider id';
  end if;
  if app_private.provider_disagrees(p_amount_minor, p_currency, v_payment.amount, v_payment.currency) is not null then
    return app_private.provider_disagrees(p_amount_minor, p_currency, v_payment.amount, v_payment.currency);
  end if;
  if p_status = v_payment.status::text
     or (p_status = 'succeeded' and v_payment.status in ('partially_refunded', 'refunded')) then
    return 'unchanged: already ' || v_payment.status;
  end if;

  if p_status = 'succeeded' then
    -- The booking first: its lock orders this against another payment of it succeeding at once.
    select * into v_booking from app.bookings b where b.id = v_payment.booking_id for update;
    -- The provider has the money, whatever we thought (even a payment we canceled or gave up on).
    update app.payments p set status = 'succeeded', succeeded_at = now() where p.id = v_payment.id;
    if exists (select from app.payments p
                where p.booking_id = v_payment.booking_id and p.id <> v_payment.id
                  and p.status in ('succeeded', 'partially_refunded', 'refunded')) then
      perform app_private.refund_open(v_payment.id, v_payment.amount, 'cancellation',
                                      'The booking was already paid; this payment goes back.', null);
      return 'succeeded: the booking was already paid, refunded in full';
    elsif v_booking.status = 'pending' then
      -- Paid in time or not, the guest has paid: the hold ends and the stay is confirmed.
      update app.bookings b set status = 'confirmed', confirmed_at = now(), expires_at = null
       where b.id = v_booking.id;
      return 'succeeded: booking confirmed';
    elsif v_booking.status = 'canceled' then
      -- The money came after the booking ended (an expired hold, a cancellation): all of it goes back.
      perform app_private.refund_open(v_payment.id, v_payment.amount, 'cancellation',
                                      'The booking was canceled before the payment completed.', null);
      return 'succeeded: the booking was canceled, refunded in full';
    end if;
    return format('succeeded: the booking is %s', v_booking.status);
  elsif p_status in ('processing', 'failed', 'canceled') then
    update app.payments p
       set status = p_status::app.payment_status,
           failed_at = case when p_status = 'failed' then now() end,
           canceled_at = case when p_status = 'canceled' then now() end,
           failure_reason = coalesce(left(p_reason, 1000), p.failure_reason)
     where p.id = v_payment.id and p.status in ('requires_payment', 'processing');
    return case when found then p_status else 'unchanged: ' || v_payment.status end;
  end if;
  return 'ignored: status ' || p_status;
end
$$;
comment on function app_private.payment_apply(text, text, text, bigint, text, text) is
  'Apply what a provider''s own record says about a payment (the worker retrieves it; webhook payloads are never trusted): its status (processing, succeeded, failed, canceled), amount in minor units and currency, which must match the payment or nothing changes. A success confirms the pending booking (even past its hold: the guest paid), or is refunded in full when the booking was canceled meanwhile. Returns what it did. Owner only (the worker, and the API through api.payment_report).';

create function app_private.payment_give_up(p_id uuid, p_reason text) returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  update app.payments p set status = 'failed', failed_at = now(), failure_reason = left(p_reason, 1000)
   where p.id = p_id and p.status = 'requires_payment' and p.provider_payment_id is null;
  return case when found then 'failed' else 'unchanged' end;
end
$$;
comment on function app_private.payment_give_up(uuid, text) is
  'The worker''s last retry to create a payment at its provider failed: the payment fails with the reason (the guest may start another). Owner only.';

create function app_private.payments_cancel_open(p_booking_id uuid, p_reason text) returns integer
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count integer := 0;
  v_payment app.payments;
begin
  for v_payment in
    update app.payments p
       set status = 'canceled', canceled_at = now(), failure_reason = p_reason
     where p.booking_id = p_booking_id and p.status in ('requires_payment', 'processing')
    returning *
  loop
    v_count := v_count + 1;
    perform app_private.defer('payments.cancel_at_provider', jsonb_build_object('payment_id', v_payment.id),
                              'payment:' || v_payment.id);
  end loop;
  return v_count;
end
$$;
comment on function app_private.payments_cancel_open(uuid, text) is
  'Cancel a booking''s open payment (the hold expired or the booking was canceled) and defer payments.cancel_at_provider, in the caller''s transaction. Returns how many were canceled.';


-- ---------------------------------------------------------------------------------
-- Reading
-- ---------------------------------------------------------------------------------

create function api.payment_get(p_id text) returns jsonb
language sql stable security invoker
as $$
  select app.payment_json(p) from app.payments p where p.id = app.parse_uuid(p_id)
$$;
comment on function api.payment_get(text) is
  'GET /api/payments/{id}/ — one payment: for its guest (with the client secret), the listing''s host (without it) and admins; 404 for anyone else.';

create function api.payment_list(p_status text default null, p_provider text default null,
                                  p_booking text default null, p_page text default null,
                                  p_page_size text default null, p_currency text default null,
                                  p_from text default null, p_to text default null)
returns app.page
language plpgsql stable security invoker
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_booking uuid := app.parse_uuid(p_booking, 'booking', 400);
  v_from date := app.parse_date(p_from, 'from');
  v_to date := app.parse_date(p_to, 'to');
  v_count bigint;
  v_results json;
begin
  if p_status is not null and not (p_status = any (enum_range(null::app.payment_status)::text[])) then
    perform app.invalid('status', 'Must be one of ' || array_to_string(enum_range(null::app.payment_status)::text[], ', ') || '.');
  end if;
  if p_provider is not null and not (p_provider = any (enum_range(null::app.payment_provider)::text[])) then
    perform app.invalid('provider', 'Must be stripe or paypal.');
  end if;
  -- Row-level security decides whose payments these are.
  select coalesce(max(x.total), 0),
         coalesce(json_agg(app.payment_json(x.p) order by (x.p).created_at desc, (x.p).id), '[]')
    into v_count, v_results
    from (select p, count(*) over () as total
            from app.payments p
           where (p_status is null or p.status = p_status::app.payment_status)
             and (p_provider is null or p.provider = p_provider::app.payment_provider)
             and (v_booking is null or p.booking_id = v_booking)
             and (p_currency is null or p.currency = upper(p_currency))
             and (v_from is null or p.created_at >= v_from)
             and (v_to is null or p.created_at < v_to + 1)
           order by p.created_at desc, p.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.payment_list(text, text, text, text, text, text, text, text) is
  'GET /api/payments/ — payments, newest first: a guest''s own, a host''s on their listings (without client secrets), all for admins. Filters: status, provider (stripe, paypal), booking (id), currency (ISO 4217), from/to (created on those UTC days, YYYY-MM-DD). Paginated.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_schema('Currency', 'An ISO 4217 currency and its minor units (digits after the decimal point).', '{
  "code": "string", "name": "string", "minor_units": "integer"}');
select app.api_schema('ExchangeRate', 'One base buys rate quote, as of fetched_at.', '{
  "base": "string", "quote": "string", "rate": "decimal", "source": "string", "fetched_at": "date-time"}');
select app.api_schema('Refund', 'Money given back to the guest (app.refund_json).', '{
  "id": "uuid", "payment_id": "uuid", "booking_id": "uuid", "provider": "stripe|paypal", "kind": "cancellation|goodwill",
  "status": "pending|succeeded|failed", "amount": "decimal", "currency": "string", "reason": "string?",
  "provider_refund_id": "string?", "failure_reason": "string?", "created_at": "date-time",
  "succeeded_at": "date-time?", "failed_at": "date-time?"}');
select app.api_schema('Payment', 'A guest''s payment for a booking (app.payment_json); client_secret and approve_url only to the guest who pays.', '{
  "id": "uuid", "booking_id": "uuid", "provider": "stripe|paypal", "payment_method": "credit_card|paypal|stripe",
  "status": "requires_payment|processing|succeeded|failed|canceled|partially_refunded|refunded",
  "amount": "decimal", "currency": "string", "booking_amount": "decimal", "booking_currency": "string", "rate": "decimal?",
  "amount_refunded": "decimal", "provider_payment_id": "string?", "client_secret": "string?", "approve_url": "string?",
  "failure_reason": "string?", "created_at": "date-time", "updated_at": "date-time", "succeeded_at": "date-time?",
  "failed_at": "date-time?", "canceled_at": "date-time?", "refunds": "[Refund]", "disputes": "[Dispute]"}');
select app.api_operation('api.currency_list', response => '"Currency"');
select app.api_operation('api.exchange_rate_set', rate => 'payment', response => '"ExchangeRate"', errors => '{404}',
  body => '{"base": "string(3..3)", "quote": "string(3..3)", "rate": "decimal"}',
  example => '{"base": "USD", "quote": "EUR", "rate": "0.92"}');
select app.api_operation('api.payment_create', rate => 'payment', response => '"Payment"', errors => '{409, 422, 502}',
  body => '{"provider": "stripe|paypal", "currency?": "string(3..3)"}', example => '{"provider": "stripe"}');
select app.api_operation('api.payment_capture', rate => 'payment', response => '"Payment"', errors => '{409, 502}');
select app.api_operation('api.payment_get', response => '"Payment"');
select app.api_operation('api.payment_list', response => '"Payment"', parameters => '{
  "status": "requires_payment|processing|succeeded|failed|canceled|partially_refunded|refunded",
  "provider": "stripe|paypal", "booking": "uuid", "currency": {"type": "string", "description": "An ISO 4217 code, e.g. USD."}, "from": "date", "to": "date"}');
select app.api_operation('api.webhook_receive', rate => null, response => '{"received": "boolean", "new": "boolean"}');
