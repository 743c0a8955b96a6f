/*
 * After the money is in: refunds, host payout accounts, payouts, and the ledger that records
 * every movement.
 *
 * The flow (each provider call is a job deferred here, in the same transaction as its cause):
 *   - A paid booking is canceled: app.tg_bookings__settle refunds what the policy says
 *     (bookings.refund_amount, converted at the payment's rate, never more than remains)
 *     through the provider that took the money (job payments.refund_at_provider), and pays
 *     the host what was kept once the stay's check-out has passed (app.run_booking_jobs). An
 *     admin may refund any part of what remains (api.payment_refund).
 *   - A stay completes (app.run_booking_jobs): app_private.payout_open computes the payout
 *     (gross = paid net of refunds in the listing's currency, fee = platform_fee_percent) and,
 *     if the host has an active payout account, schedules it (job payouts.send); otherwise it
 *     accrues as pending and is scheduled when the host's account becomes active.
 *   - The worker reports what the provider did (refund_apply, payout_apply,
 *     payout_account_apply); succeeded refunds and paid payouts post to the ledger.
 *
 * The ledger (app.ledger_entries) is written only by app_private.ledger_post, which refuses
 * a posting that does not balance in every currency; entries are never updated or deleted.
 */

-- ---------------------------------------------------------------------------------
-- The ledger
-- ---------------------------------------------------------------------------------

create function app_private.ledger_post(p_booking uuid, p_memo text, p_entries jsonb, p_payment uuid default null,
                                        p_refund uuid default null, p_payout uuid default null,
                                        p_dispute uuid default null)
returns uuid
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_txn uuid := gen_random_uuid();
  v_unbalanced text;
begin
  select string_agg(x.currency || ' ' || x.total, ', ') into v_unbalanced
    from (select e ->> 'currency' as currency, sum((e ->> 'amount')::numeric) as total
            from jsonb_array_elements(p_entries) e
           group by 1) x
   where x.total <> 0;
  if v_unbalanced is not null then
    raise exception 'ledger posting "%" for booking % does not balance: %', p_memo, p_booking, v_unbalanced;
  end if;
  insert into app.ledger_entries (txn, booking_id, payment_id, refund_id, payout_id, dispute_id, account, amount,
                                  currency, memo)
  select v_txn, p_booking, p_payment, p_refund, p_payout, p_dispute, (e ->> 'account')::app.ledger_account,
         (e ->> 'amount')::numeric, e ->> 'currency', p_memo
    from jsonb_array_elements(p_entries) e
   where (e ->> 'amount')::numeric <> 0;
  return v_txn;
end
$$;
comment on function app_private.ledger_post(uuid, text, jsonb, uuid, uuid, uuid, uuid) is
  'Post one movement of money to the ledger: p_entries is [{account, amount, currency}, ...] with signed amounts that must sum to zero per currency (otherwise an error: a bug, never a client''s mistake). Zero entries are skipped. Returns the posting''s txn id.';

create function app_private.ledger_move(p_from app.ledger_account, p_to app.ledger_account, p_amount numeric,
                                        p_currency text)
returns jsonb
language sql immutable security invoker
as $$
  select jsonb_build_array(
    jsonb_build_object('account', p_from, 'amount', -p_amount, 'currency', p_currency),
    jsonb_build_object('account', p_to, 'amount', p_amount, 'currency', p_currency))
$$;
comment on function app_private.ledger_move(app.ledger_account, app.ledger_account, numeric, text) is
  'The two entries of moving p_amount p_currency from one ledger account to another, for app_private.ledger_post.';

create function app_private.charge_host(p_payment app.payments, p_amount numeric, p_memo text,
                                        p_refund uuid default null, p_dispute uuid default null)
returns uuid
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payout app.payouts;
  v_back numeric;
  v_fee numeric;
  v_entries jsonb := '[]';
begin
  select * into v_payout from app.payouts o where o.booking_id = p_payment.booking_id and o.payment_id = p_payment.id;
  if not found then
    return null;
  end if;
  -- The money in the listing's currency, as the payout counted it.
  v_back := case when p_amount = p_payment.amount then p_payment.booking_amount
                 else round(p_payment.booking_amount * p_amount / p_payment.amount,
                            app.minor_units(p_payment.booking_currency)) end;
  v_fee := round(v_back * v_payout.fee_percent / 100, app.minor_units(p_payment.booking_currency));
  if p_payment.currency <> p_payment.booking_currency then
    v_entries := app_private.ledger_move('fx', 'platform_cash', p_amount, p_payment.currency)
              || app_private.ledger_move('platform_cash', 'fx', v_back, p_payment.booking_currency);
  end if;
  return app_private.ledger_post(p_payment.booking_id, p_memo,
    v_entries
    || app_private.ledger_move('host_receivable', 'platform_cash', v_back - v_fee, p_payment.booking_currency)
    || app_private.ledger_move('platform_fee', 'platform_cash', v_fee, p_payment.booking_currency),
    p_payment => p_payment.id, p_refund => p_refund, p_payout => v_payout.id, p_dispute => p_dispute);
end
$$;
comment on function app_private.charge_host(app.payments, numeric, text, uuid, uuid) is
  'Money that went back to the guest (p_amount of the payment: a refund, a lost dispute) after the host''s payout of the booking was computed: in the listing''s currency, the host''s share (the amount less the platform''s fee on it, at the payout''s fee_percent) becomes owed by the host (host_receivable) and the platform gives back its fee, so the platform''s cash for the booking balances again. The host''s next payout in that currency withholds what they owe (app_private.payout_schedule). Nothing when no payout counted this payment (none yet, or a late second payment of the booking). Returns the posting''s txn.';

create function app_private.host_owed(p_host uuid, p_currency text) returns numeric
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select coalesce(-sum(e.amount), 0)
    from app.ledger_entries e join app.bookings b on b.id = e.booking_id
   where e.account = 'host_receivable' and b.host_id = p_host and e.currency = p_currency
$$;
comment on function app_private.host_owed(uuid, text) is
  'What a host owes the platform in a currency: their share of refunds and lost disputes charged after their payouts were computed, less what later payouts withheld. From the ledger (account host_receivable of the host''s bookings).';

create function app.tg_ledger_entries__append_only() returns trigger
language plpgsql security invoker
as $$
begin
  raise exception 'the ledger is append-only: post a correcting entry instead of % on app.ledger_entries', tg_op;
end
$$;
comment on function app.tg_ledger_entries__append_only() is
  'Trigger: entries of the ledger are never updated or deleted, not even by the owner; a mistake is corrected by a new posting.';

create trigger ledger_entries_append_only before update or delete on app.ledger_entries
  for each row execute function app.tg_ledger_entries__append_only();

create function app.tg_payments__post() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_private.ledger_post(new.booking_id, 'payment',
    app_private.ledger_move('guest', 'platform_cash', new.amount, new.currency), p_payment => new.id);
  return null;
end
$$;
comment on function app.tg_payments__post() is
  'Trigger: a payment that succeeds moves its amount from the guest to the platform''s cash in the ledger.';

create trigger payments_post after update of status on app.payments
  for each row when (new.status = 'succeeded' and old.status in ('requires_payment', 'processing', 'failed', 'canceled'))
  execute function app.tg_payments__post();

-- ---------------------------------------------------------------------------------
-- Refunds
-- ---------------------------------------------------------------------------------

create trigger refunds_set_updated_at before update on app.refunds
  for each row execute function app.tg__set_updated_at();

create function app.tg_refunds__guard() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payment app.payments;
  v_remaining numeric;
begin
  if tg_op = 'INSERT' then
    -- Lock the payment: concurrent refunds of one payment are checked one after the other.
    select * into v_payment from app.payments p where p.id = new.payment_id for update;
    if v_payment.status not in ('succeeded', 'partially_refunded') then
      perform app.fail(409, format('A %s payment cannot be refunded.', v_payment.status), 'status');
    end if;
    new.booking_id := v_payment.booking_id;
    new.guest_id := v_payment.guest_id;
    new.host_id := v_payment.host_id;
    new.provider := v_payment.provider;
    new.currency := v_payment.currency;
    new.amount := app.money(new.amount, new.currency);
    -- Money the host's payout already counted as theirs: their share is charged to them.
    -- (Only the payment the payout counted: a late second payment, refunded in full, never was.)
    new.charge_host := exists (select from app.payouts o where o.booking_id = new.booking_id and o.payment_id = new.payment_id);
    v_remaining := app_private.refundable(v_payment);
    if new.amount > v_remaining then
      perform app.fail(409, format('Only %s %s of this payment can still be refunded.', v_remaining, new.currency), 'amount');
    end if;
  else
    if new.status is distinct from old.status
       and not ((old.status = 'pending' and new.status in ('succeeded', 'failed'))
                or (old.status = 'failed' and new.status in ('succeeded', 'pending'))) then
      perform app.fail(409, format('A %s refund cannot become %s.', old.status, new.status), 'status');
    end if;
    if (new.payment_id, new.amount, new.currency, new.kind, new.created_at)
       is distinct from (old.payment_id, old.amount, old.currency, old.kind, old.created_at) then
      perform app.fail(409, 'A refund''s payment, amount, currency and kind never change.');
    end if;
    if old.charge_host and not new.charge_host then
      perform app.fail(409, 'A refund charged to the host stays charged.', 'charge_host');
    end if;
    if old.provider_refund_id is not null and new.provider_refund_id is distinct from old.provider_refund_id then
      perform app.fail(409, 'A refund''s provider id never changes once set.', 'provider_refund_id');
    end if;
  end if;
  return new;
end
$$;
comment on function app.tg_refunds__guard() is
  'Trigger: a refund is of a succeeded (or partly refunded) payment, in its currency and at its minor units, and with the payment''s other non-failed refunds never exceeds its amount (409; the payment row is locked to check); the parties and provider are copied from the payment; charge_host is set when the booking''s payout was already computed (and only ever turns on). Statuses move only pending -> succeeded | failed, failed -> succeeded when the provider reports a refund we had given up on, and failed -> pending when an admin retries it (api.refund_retry).';

create trigger refunds_guard before insert or update on app.refunds
  for each row execute function app.tg_refunds__guard();

create function app_private.refundable(p_payment app.payments) returns numeric
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select p_payment.amount
         - coalesce((select sum(r.amount) from app.refunds r where r.payment_id = p_payment.id and r.status <> 'failed'), 0)
         - coalesce((select sum(d.amount) from app.disputes d where d.payment_id = p_payment.id and d.status <> 'won'), 0)
$$;
comment on function app_private.refundable(app.payments) is
  'What can still be refunded of a payment: its amount minus its pending and succeeded refunds and its open and lost disputes (money the guest''s bank holds or gave back).';

create function app_private.kept(p_payment app.payments) returns numeric
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select app_private.refundable(p_payment)
         + coalesce((select sum(d.amount) from app.disputes d where d.payment_id = p_payment.id and d.status = 'open'), 0)
$$;
comment on function app_private.kept(app.payments) is
  'What the platform keeps of a payment for the host''s payout: its amount minus its pending and succeeded refunds and its lost disputes. Money under an open dispute counts as kept: the payout is held until the dispute is decided, and a lost one is then charged to the host.';

create function app.tg_refunds__settle() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payment app.payments;
begin
  update app.payments p
     set amount_refunded = p.amount_refunded + new.amount,
         status = (case when p.amount_refunded + new.amount = p.amount then 'refunded' else 'partially_refunded' end)::app.payment_status
   where p.id = new.payment_id
  returning * into v_payment;
  perform app_private.ledger_post(new.booking_id, 'refund',
    app_private.ledger_move('platform_cash', 'guest', new.amount, new.currency),
    p_payment => new.payment_id, p_refund => new.id);
  if new.charge_host then
    perform app_private.charge_host(v_payment, new.amount, 'refund charged to host', p_refund => new.id);
  end if;
  return null;
end
$$;
comment on function app.tg_refunds__settle() is
  'Trigger: a refund that succeeds adds to its payment''s amount_refunded (the payment becomes partially_refunded or refunded) and moves the money from the platform''s cash back to the guest in the ledger; when the host''s payout had already counted it (charge_host), the host''s share is charged to the host (app_private.charge_host).';

create trigger refunds_settle after update of status on app.refunds
  for each row when (new.status = 'succeeded' and old.status in ('pending', 'failed'))
  execute function app.tg_refunds__settle();

create function app_private.refund_open(p_payment uuid, p_amount numeric, p_kind app.refund_kind, p_reason text,
                                        p_by uuid)
returns app.refunds
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_refund app.refunds;
begin
  insert into app.refunds (payment_id, booking_id, guest_id, host_id, provider, kind, amount, currency, reason,
                           requested_by)
  select p.id, p.booking_id, p.guest_id, p.host_id, p.provider, p_kind, p_amount, p.currency, left(p_reason, 1000), p_by
    from app.payments p where p.id = p_payment
  returning * into v_refund;
  perform app_private.defer('payments.refund_at_provider', jsonb_build_object('refund_id', v_refund.id),
                            'payment:' || p_payment);
  return v_refund;
end
$$;
comment on function app_private.refund_open(uuid, numeric, app.refund_kind, text, uuid) is
  'Refund p_amount of a payment (checked by the refunds trigger: never more than remains) and defer payments.refund_at_provider, in the caller''s transaction.';

create function api.payment_refund(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payment app.payments;
  v_errors jsonb;
  v_amount numeric;
begin
  select * into v_payment from app.payments p where p.id = app.parse_uuid(p_id) for update;
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
  v_errors := app.check_text('{}', p_body, 'reason', 1, 1000, p_required => true);
  v_errors := app.check_number(v_errors, p_body, 'amount', 1e-3, 1e15, app.minor_units(v_payment.currency));
  perform app.raise_errors(v_errors);
  if v_payment.status not in ('succeeded', 'partially_refunded') then
    perform app.fail(409, format('A %s payment cannot be refunded.', v_payment.status), 'status');
  end if;
  v_amount := coalesce((p_body ->> 'amount')::numeric, app_private.refundable(v_payment));
  if v_amount <= 0 then
    perform app.fail(409, 'This payment has been refunded in full.', 'amount');
  end if;
  if v_amount > app_private.refundable(v_payment) then
    perform app.invalid('amount', format('At most %s %s remains to refund.', app_private.refundable(v_payment), v_payment.currency));
  end if;
  return app.refund_json(app_private.refund_open(v_payment.id, v_amount, 'goodwill', btrim(p_body ->> 'reason'),
                                                 app.current_user_id()));
end
$$;
comment on function api.payment_refund(text, jsonb) is
  'POST /api/payments/{id}/refund/ {amount?, reason} — an admin refunds part or all of what remains of a succeeded payment (default: all of it), through its provider (a job). 400 naming amount when it exceeds what remains or has too many decimals, reason when missing; 409 when the payment is not succeeded or nothing remains. Admins. Security definer: no client role may write app.refunds; it opens the refund through app_private.refund_open.';

create function app_private.refund_apply(p_provider text, p_refund uuid, p_provider_refund_id text, p_status text,
                                         p_amount_minor bigint, p_currency text, p_reason text default null)
returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_refund app.refunds;
begin
  select * into v_refund from app.refunds r
   where (r.id = p_refund or (r.provider = p_provider::app.payment_provider and r.provider_refund_id = p_provider_refund_id))
   for update;
  if not found then
    return 'ignored: no refund has this id';
  end if;
  if app_private.provider_disagrees(p_amount_minor, p_currency, v_refund.amount, v_refund.currency) is not null then
    return app_private.provider_disagrees(p_amount_minor, p_currency, v_refund.amount, v_refund.currency);
  end if;
  update app.refunds r
     set provider_refund_id = coalesce(r.provider_refund_id, p_provider_refund_id)
   where r.id = v_refund.id and r.provider_refund_id is null;
  -- Pending moves on; a refund we gave up on succeeds if the provider says it did after all.
  if p_status = 'pending' or p_status = v_refund.status::text
     or not (v_refund.status = 'pending' or (v_refund.status = 'failed' and p_status = 'succeeded')) then
    return 'unchanged: ' || v_refund.status;
  end if;
  update app.refunds r
     set status = p_status::app.refund_status,
         succeeded_at = case when p_status = 'succeeded' then now() end,
         failed_at = case when p_status = 'failed' then now() end,
         failure_reason = left(p_reason, 1000)
   where r.id = v_refund.id;
  return 'refund ' || p_status;
end
$$;
comment on function app_private.refund_apply(text, uuid, text, text, bigint, text, text) is
  'Apply what a provider''s own record says about a refund (found by our id or the provider''s): its provider id, and pending -> succeeded | failed when amount and currency match. Returns what it did. Owner only (the worker).';

create function app_private.refund_give_up(p_id uuid, p_reason text) returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  update app.refunds r set status = 'failed', failed_at = now(), failure_reason = left(p_reason, 1000)
   where r.id = p_id and r.status = 'pending';
  return case when found then 'failed' else 'unchanged' end;
end
$$;
comment on function app_private.refund_give_up(uuid, text) is
  'The worker''s last retry of a refund at its provider failed: the refund fails with the reason, and what it held can be refunded again (an admin sees it in the payment). Owner only.';

create function app_private.refund_overdrawn(p_refund uuid) returns boolean
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select r.amount > p.amount - coalesce((select sum(o.amount) from app.refunds o
                                           where o.payment_id = p.id and o.id <> r.id and o.status = 'succeeded'), 0)
    from app.refunds r join app.payments p on p.id = r.payment_id
   where r.id = p_refund
$$;
comment on function app_private.refund_overdrawn(uuid) is
  'Whether a pending refund is more than what the payment''s succeeded refunds leave: true once the provider has told us that a refund we had given up on succeeded after all. The worker then fails it instead of refunding twice.';

create function api.refund_retry(p_id text) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_refund app.refunds;
  v_payment app.payments;
begin
  select * into v_refund from app.refunds r where r.id = app.parse_uuid(p_id) for update;
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
  if v_refund.status <> 'failed' then
    perform app.fail(409, format('Only a failed refund can be retried; this one is %s.', v_refund.status), 'status');
  end if;
  select * into v_payment from app.payments p where p.id = v_refund.payment_id for update;
  if v_refund.amount > app_private.refundable(v_payment) then
    perform app.fail(409, format('Only %s %s of this payment can still be refunded.', app_private.refundable(v_payment),
                                 v_payment.currency), 'amount');
  end if;
  update app.refunds r set status = 'pending', failed_at = null, failure_reason = null
   where r.id = v_refund.id returning * into v_refund;
  perform app_private.defer('payments.refund_at_provider', jsonb_build_object('refund_id', v_refund.id),
                            'payment:' || v_refund.payment_id);
  return app.refund_json(v_refund);
end
$$;
comment on function api.refund_retry(text) is
  'POST /api/refunds/{id}/retry/ — an admin tries a failed refund again: the same refund (its id, hence its idempotency key at the provider) becomes pending and the job runs again. The job first asks the provider for the payment''s refunds: if one carries this refund''s id (its answer was lost, or it succeeded after we gave up), that is recorded and nothing new is refunded. Retry rather than refunding anew after a refund failed for lack of an answer: a new refund is an additional one. 409 unless failed, or when what remains of the payment is less. Admins. Security definer: no client role may write app.refunds, and it defers the job (app_private.defer).';

-- ---------------------------------------------------------------------------------
-- Payout accounts
-- ---------------------------------------------------------------------------------

create trigger payout_accounts_set_updated_at before update on app.payout_accounts
  for each row execute function app.tg__set_updated_at();

create function app.payout_account_json(a app.payout_accounts) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object('provider', a.provider, 'provider_account_id', a.provider_account_id,
                            'status', a.status, 'created_at', a.created_at, 'updated_at', a.updated_at)
$$;
comment on function app.payout_account_json(app.payout_accounts) is 'A host''s payout account as the API shows it.';

create function api.payout_account_get() returns jsonb
language sql stable security invoker
as $$
  select app.payout_account_json(a) from app.payout_accounts a where a.host_id = app.current_user_id()
$$;
comment on function api.payout_account_get() is
  'GET /api/users/me/payout-account/ — where the signed-in host is paid; 404 when none is set. Hosts.';

create function api.payout_account_set(p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_errors jsonb := '{}';
  v_email text := lower(btrim(p_body ->> 'email'));
  v_account app.payout_accounts;
begin
  v_errors := app.check_choice(v_errors, p_body, 'provider', enum_range(null::app.payment_provider)::text[], p_required => true);
  if p_body ->> 'provider' = 'paypal' then
    v_errors := app.check_text(v_errors, p_body, 'email', 3, 254, p_required => true);
    if not v_errors ? 'email' and v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
      v_errors := app.add_error(v_errors, 'email', 'Enter a valid email address.');
    end if;
  elsif p_body ? 'email' then
    v_errors := app.add_error(v_errors, 'email', 'Only a PayPal payout account takes an email.');
  end if;
  perform app.raise_errors(v_errors);

  select * into v_account from app.payout_accounts a where a.host_id = v_uid for update;
  if found and v_account.provider = 'stripe' and p_body ->> 'provider' = 'stripe' then
    -- The same Stripe account again: the API makes a fresh onboarding link for it.
    return app.payout_account_json(v_account);
  end if;
  insert into app.payout_accounts as a (host_id, provider, provider_account_id, status)
  values (v_uid, (p_body ->> 'provider')::app.payment_provider,
          case when p_body ->> 'provider' = 'paypal' then v_email end,
          case when p_body ->> 'provider' = 'paypal' then 'active' else 'pending' end::app.payout_account_status)
  on conflict (host_id) do update
     set provider = excluded.provider, provider_account_id = excluded.provider_account_id, status = excluded.status
  returning * into v_account;
  if v_account.status = 'active' then
    perform app_private.payouts_release(v_uid);
  else
    perform app_private.defer('payouts.create_account', jsonb_build_object('host_id', v_uid), 'host:' || v_uid);
  end if;
  return app.payout_account_json(v_account);
end
$$;
comment on function api.payout_account_set(jsonb) is
  'POST /api/users/me/payout-account/ {provider: stripe} | {provider: paypal, email} — where the signed-in host is paid. PayPal: active at once (payouts go to the email), and pending payouts are scheduled. Stripe: a Connect account created at Stripe (a job, payouts.create_account, which the API also runs at once to return the onboarding URL); it becomes active when Stripe reports that it can receive payouts (account.updated). Setting another replaces the account; payouts already scheduled keep their destination. Hosts. Security definer: no client role may write app.payout_accounts; it defers the provider job and releases held payouts in app_private.';

create function api.payout_account_attach(p_host uuid, p_provider_account_id text, p_status text) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_account app.payout_accounts;
begin
  update app.payout_accounts a
     set provider_account_id = p_provider_account_id, status = p_status::app.payout_account_status
   where a.host_id = p_host and a.provider = 'stripe'
     and (a.provider_account_id is null or a.provider_account_id = p_provider_account_id)
  returning * into v_account;
  if not found then
    perform app.fail(409, 'This host''s payout account is another one now.', 'provider_account_id');
  end if;
  if v_account.status = 'active' then
    perform app_private.payouts_release(p_host);
  end if;
  return app.payout_account_json(v_account);
end
$$;
comment on function api.payout_account_attach(uuid, text, text) is
  'Record the host''s Stripe connected account (its id and whether it can receive payouts: pending | active); active releases the host''s pending payouts. Called by the API right after api.payout_account_set and by the worker (payouts.create_account); never by clients (api_internal and the owner only). Security definer: the API process (api_internal) may not write app.payout_accounts; it releases held payouts through app_private.payouts_release.';

create function app_private.payout_account_apply(p_provider text, p_provider_account_id text, p_status text)
returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_account app.payout_accounts;
begin
  update app.payout_accounts a set status = p_status::app.payout_account_status
   where a.provider = p_provider::app.payment_provider and a.provider_account_id = p_provider_account_id
  returning * into v_account;
  if not found then
    return 'ignored: no payout account has this id';
  end if;
  if v_account.status = 'active' then
    return format('active: %s payouts scheduled', app_private.payouts_release(v_account.host_id));
  end if;
  return p_status;
end
$$;
comment on function app_private.payout_account_apply(text, text, text) is
  'Apply what the provider says about a host''s account (Stripe account.updated: can it receive payouts?): active schedules the host''s pending payouts. Owner only (the worker).';

-- ---------------------------------------------------------------------------------
-- Payouts
-- ---------------------------------------------------------------------------------

create trigger payouts_set_updated_at before update on app.payouts
  for each row execute function app.tg__set_updated_at();

create function app.tg_payouts__guard() returns trigger
language plpgsql security invoker
as $$
begin
  new.gross := app.money(new.gross, new.currency, 'gross');
  new.fee := app.money(new.fee, new.currency, 'fee');
  new.amount := app.money(new.amount, new.currency);
  new.withheld := app.money(new.withheld, new.currency, 'withheld');
  if tg_op = 'UPDATE' then
    if new.status is distinct from old.status and not (
         (old.status = 'pending' and new.status = 'scheduled')
      or (old.status = 'scheduled' and new.status in ('processing', 'paid', 'failed'))
      or (old.status = 'processing' and new.status in ('paid', 'failed'))
      or (old.status = 'paid' and new.status = 'failed')
      or (old.status = 'failed' and new.status = 'scheduled')) then
      perform app.fail(409, format('A %s payout cannot become %s.', old.status, new.status), 'status');
    end if;
    if (new.booking_id, new.payment_id, new.host_id, new.gross, new.fee_percent, new.fee, new.currency, new.created_at)
       is distinct from
       (old.booking_id, old.payment_id, old.host_id, old.gross, old.fee_percent, old.fee, old.currency, old.created_at) then
      perform app.fail(409, 'A payout''s booking, payment, host, amounts and currency never change.');
    end if;
    -- What the host owed is withheld when the payout is scheduled, never given back.
    if new.withheld is distinct from old.withheld
       and not (old.status in ('pending', 'failed') and new.status = 'scheduled' and new.withheld > old.withheld) then
      perform app.fail(409, 'A payout''s withheld amount grows only when it is scheduled.', 'withheld');
    end if;
  end if;
  return new;
end
$$;
comment on function app.tg_payouts__guard() is
  'Trigger: payout amounts are at the currency''s minor units; statuses move only pending -> scheduled -> processing -> paid | failed (scheduled may go straight to paid or failed), paid -> failed (the provider returned it), failed -> scheduled (a retry), 409 otherwise; the computed facts never change, except that withheld (and with it amount) grows when a pending or failed payout is scheduled.';

create trigger payouts_guard before insert or update on app.payouts
  for each row execute function app.tg_payouts__guard();

create function app.tg_payouts__post() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_private.ledger_post(new.booking_id, 'payout sent',
    app_private.ledger_move('host_payable', 'host', new.amount, new.currency),
    p_payment => new.payment_id, p_payout => new.id);
  return null;
end
$$;
comment on function app.tg_payouts__post() is 'Trigger: a paid payout moves its amount from what the platform owes the host to the host, in the ledger.';

create trigger payouts_post after update of status on app.payouts
  for each row when (new.status = 'paid' and old.status <> 'paid' and new.amount > 0)
  execute function app.tg_payouts__post();

create function app.tg_payouts__return() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_private.ledger_post(new.booking_id, 'payout returned',
    app_private.ledger_move('host', 'host_payable', new.amount, new.currency),
    p_payment => new.payment_id, p_payout => new.id);
  return null;
end
$$;
comment on function app.tg_payouts__return() is 'Trigger: a paid payout the provider returned (never reached the host) is owed to the host again, in the ledger.';

create trigger payouts_return after update of status on app.payouts
  for each row when (old.status = 'paid' and new.status = 'failed' and new.amount > 0)
  execute function app.tg_payouts__return();

create function app_private.payout_held(p_booking uuid) returns boolean
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select exists (select from app.disputes d where d.booking_id = p_booking and d.status = 'open')
$$;
comment on function app_private.payout_held(uuid) is
  'Whether a booking''s payout is held: a dispute of its payment is open. A held payout is not scheduled, and a scheduled one is not sent, until the dispute is decided.';

create function app_private.payout_schedule(p_id uuid) returns boolean
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payout app.payouts;
  v_withhold numeric;
begin
  select * into v_payout from app.payouts o where o.id = p_id;
  if not found or app_private.payout_held(v_payout.booking_id) then
    return false;
  end if;
  -- The host's account row orders concurrent schedulings of their payouts: a debt is withheld once.
  perform from app.payout_accounts a where a.host_id = v_payout.host_id for update;
  v_withhold := least(v_payout.amount, greatest(app_private.host_owed(v_payout.host_id, v_payout.currency), 0));
  update app.payouts o
     set status = 'scheduled', provider = a.provider, destination = a.provider_account_id, scheduled_at = now(),
         -- A new provider attempt only when the last one surely failed there (or was sent elsewhere).
         attempt = case when o.status = 'failed' and (o.provider_payout_id is not null
                                                      or o.destination is distinct from a.provider_account_id)
                        then o.attempt + 1 else o.attempt end,
         provider_payout_id = null, failure_reason = null,
         withheld = o.withheld + v_withhold, amount = o.amount - v_withhold
    from app.payout_accounts a
   where o.id = p_id and a.host_id = o.host_id and a.status = 'active' and o.status in ('pending', 'failed')
  returning o.* into v_payout;
  if not found then
    return false;
  end if;
  if v_withhold > 0 then
    perform app_private.ledger_post(v_payout.booking_id, 'debt withheld',
      app_private.ledger_move('host_payable', 'host_receivable', v_withhold, v_payout.currency),
      p_payment => v_payout.payment_id, p_payout => v_payout.id);
  end if;
  if v_payout.amount = 0 then
    -- All of it settled what the host owed: nothing to send.
    update app.payouts o set status = 'paid', paid_at = now() where o.id = p_id;
    return true;
  end if;
  perform app_private.defer('payouts.send', jsonb_build_object('payout_id', p_id), 'payout:' || p_id);
  return true;
end
$$;
comment on function app_private.payout_schedule(uuid) is
  'Hand a pending (or failed) payout to the worker (job payouts.send) to the host''s active payout account, recorded as its provider and destination. What the host owes in the payout''s currency (app_private.host_owed) is withheld from it first (withheld grows, amount shrinks; ledger: host_payable to host_receivable); a payout withheld in full is paid at once, with nothing sent. False when the host has no active account or a dispute of the booking is open (the payout is held).';

create function app_private.payouts_release(p_host uuid) returns integer
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
  select count(*)::int from app.payouts o
   where o.host_id = p_host and o.status = 'pending' and app_private.payout_schedule(o.id)
$$;
comment on function app_private.payouts_release(uuid) is
  'Schedule every pending payout of a host (their payout account just became active). Returns how many.';

create function app_private.payout_open(p_booking uuid) returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payment app.payments;
  v_kept numeric;
  v_gross numeric;
  v_pct numeric := (app_private.payment_config()).platform_fee_percent;
  v_payout app.payouts;
  v_entries jsonb := '[]';
begin
  -- The payment the platform kept (a second one, paid late, goes back in full).
  select * into v_payment from app.payments p
   where p.booking_id = p_booking and p.status in ('succeeded', 'partially_refunded') and app_private.kept(p) > 0
   order by p.succeeded_at, p.id
   limit 1
   for update;
  if not found or exists (select from app.payouts o where o.booking_id = p_booking) then
    return 'no payout: nothing paid and kept, or paid out already';
  end if;
  v_kept := app_private.kept(v_payment);
  -- Refunds that failed are money kept, so the payout counts it: if one is retried and succeeds,
  -- the host's share of it is charged to them.
  update app.refunds r set charge_host = true where r.payment_id = v_payment.id and r.status = 'failed';
  -- The host is paid in the listing's currency, in proportion to what the platform kept.
  v_gross := case when v_kept = v_payment.amount then v_payment.booking_amount
                  else round(v_payment.booking_amount * v_kept / v_payment.amount, app.minor_units(v_payment.booking_currency)) end;
  insert into app.payouts (booking_id, payment_id, host_id, gross, fee_percent, fee, amount, currency)
  select p_booking, v_payment.id, v_payment.host_id, v_gross, v_pct, f.fee, v_gross - f.fee, v_payment.booking_currency
    from (select round(v_gross * v_pct / 100, app.minor_units(v_payment.booking_currency)) as fee) f
  returning * into v_payout;

  if v_payment.currency <> v_payment.booking_currency then
    v_entries := app_private.ledger_move('platform_cash', 'fx', v_kept, v_payment.currency)
              || app_private.ledger_move('fx', 'platform_cash', v_gross, v_payment.booking_currency);
  end if;
  perform app_private.ledger_post(p_booking, 'payout accrued',
    v_entries
    || app_private.ledger_move('platform_cash', 'host_payable', v_payout.amount, v_payout.currency)
    || app_private.ledger_move('platform_cash', 'platform_fee', v_payout.fee, v_payout.currency),
    p_payment => v_payment.id, p_payout => v_payout.id);
  if app_private.payout_schedule(v_payout.id) then
    return 'payout scheduled';
  elsif app_private.payout_held(p_booking) then
    return 'payout held: a dispute of the payment is open';
  end if;
  return 'payout pending: the host has no active payout account';
end
$$;
comment on function app_private.payout_open(uuid) is
  'Compute the host''s payout for a settled booking, once: gross = the payment''s booking_amount in proportion to what the platform kept (app_private.kept: pending refunds count as refunded, money under an open dispute as kept), fee = gross x platform_fee_percent, amount = gross - fee, in the listing''s currency; post it to the ledger (with the currency conversion when the guest paid in another currency) and schedule it if the host has an active payout account and no dispute holds it (else it stays pending). Failed refunds of the payment become charge_host: the payout counts their money. Nothing when nothing was paid or all was refunded.';

create function app_private.payouts_poll(p_quiet interval default interval '30 minutes') returns integer
language sql volatile security invoker
-- procrastinate's tables are named without their schema in its own triggers and functions.
set search_path = procrastinate, pg_catalog, pg_temp
as $$
  select count(app_private.defer('payouts.send', jsonb_build_object('payout_id', o.id), 'payout:' || o.id))::int
    from app.payouts o
   where o.status = 'processing' and o.provider_payout_id is not null and o.updated_at < now() - p_quiet
     and not exists (select from procrastinate.procrastinate_jobs j
                      where j.task_name = 'payouts.send' and j.status in ('todo', 'doing')
                        and j.args ->> 'payout_id' = o.id::text)
$$;
comment on function app_private.payouts_poll(interval) is
  'Payouts the provider accepted but has said nothing more of for p_quiet (30 minutes): defer payouts.send for each, which asks the provider for the payout and applies what it says (paid, failed, still processing). A PayPal payout otherwise reaches paid only by webhook, and a webhook can be lost. Runs every 10 minutes (the worker''s payouts.poll). Returns how many it asked about.';

create function app_private.payout_apply(p_provider text, p_payout uuid, p_provider_payout_id text, p_status text,
                                         p_amount_minor bigint, p_currency text, p_reason text default null)
returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payout app.payouts;
begin
  select * into v_payout from app.payouts o
   where (o.id = p_payout or (o.provider = p_provider::app.payment_provider and o.provider_payout_id = p_provider_payout_id))
   for update;
  if not found then
    return 'ignored: no payout has this id';
  end if;
  if app_private.provider_disagrees(p_amount_minor, p_currency, v_payout.amount, v_payout.currency) is not null then
    return app_private.provider_disagrees(p_amount_minor, p_currency, v_payout.amount, v_payout.currency);
  end if;
  if p_status = v_payout.status::text
     or not (v_payout.status in ('scheduled', 'processing') or (v_payout.status = 'paid' and p_status = 'failed')) then
    return 'unchanged: ' || v_payout.status;
  end if;
  update app.payouts o
     set status = p_status::app.payout_status,
         provider_payout_id = coalesce(p_provider_payout_id, o.provider_payout_id),
         paid_at = case when p_status = 'paid' then now() end,
         failed_at = case when p_status = 'failed' then now() end,
         failure_reason = left(p_reason, 1000)
   where o.id = v_payout.id;
  return 'payout ' || p_status;
end
$$;
comment on function app_private.payout_apply(text, uuid, text, text, bigint, text, text) is
  'Apply what a provider''s own record says about a payout (found by our id or the provider''s): scheduled | processing -> processing | paid | failed, and paid -> failed when the provider returned it, when amount and currency match. Returns what it did. Owner only (the worker).';

create function app_private.payout_give_up(p_id uuid, p_reason text) returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  update app.payouts o set status = 'failed', failed_at = now(), failure_reason = left(p_reason, 1000)
   where o.id = p_id and o.status in ('scheduled', 'processing');
  return case when found then 'failed' else 'unchanged' end;
end
$$;
comment on function app_private.payout_give_up(uuid, text) is
  'The worker''s last retry of a payout at its provider failed: the payout fails with the reason; an admin may retry it (api.payout_retry). Owner only.';

create function app.payout_json(o app.payouts) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', o.id, 'booking_id', o.booking_id, 'payment_id', o.payment_id, 'status', o.status,
    'gross', o.gross::text, 'fee_percent', o.fee_percent::text, 'fee', o.fee::text, 'withheld', o.withheld::text,
    'amount', o.amount::text, 'held', o.status in ('pending', 'scheduled', 'failed')
            and exists (select from app.disputes d where d.booking_id = o.booking_id and d.status = 'open'),
    'currency', o.currency, 'provider', o.provider, 'provider_payout_id', o.provider_payout_id, 'attempt', o.attempt,
    'failure_reason', o.failure_reason, 'created_at', o.created_at, 'scheduled_at', o.scheduled_at,
    'paid_at', o.paid_at, 'failed_at', o.failed_at)
$$;
comment on function app.payout_json(app.payouts) is 'A payout as the API shows it; money as decimal strings; held while a dispute of its booking is open and it has not gone. The destination stays with the host and admins in psql.';

create function api.payout_list(p_status text default null, p_page text default null, p_page_size text default null)
returns app.page
language plpgsql stable security invoker
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  if p_status is not null and not (p_status = any (enum_range(null::app.payout_status)::text[])) then
    perform app.invalid('status', 'Must be one of ' || array_to_string(enum_range(null::app.payout_status)::text[], ', ') || '.');
  end if;
  -- Row-level security decides whose payouts these are.
  select coalesce(max(x.total), 0),
         coalesce(json_agg(app.payout_json(x.o) order by (x.o).created_at desc, (x.o).id), '[]')
    into v_count, v_results
    from (select o, count(*) over () as total
            from app.payouts o
           where p_status is null or o.status = p_status::app.payout_status
           order by o.created_at desc, o.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.payout_list(text, text, text) is
  'GET /api/payouts/ — payouts, newest first: a host''s own, all for admins. Filter: status (pending, scheduled, processing, paid, failed). Paginated.';

create function api.payout_retry(p_id text) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payout app.payouts;
begin
  select * into v_payout from app.payouts o where o.id = app.parse_uuid(p_id) for update;
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
  if v_payout.status <> 'failed' then
    perform app.fail(409, format('A %s payout cannot be retried.', v_payout.status), 'status');
  end if;
  if app_private.payout_held(v_payout.booking_id) then
    perform app.fail(409, 'A dispute of this booking is open: its payout is held until it is decided.', 'status');
  end if;
  if not app_private.payout_schedule(v_payout.id) then
    perform app.fail(409, 'The host has no active payout account.', 'status');
  end if;
  select * into v_payout from app.payouts o where o.id = v_payout.id;
  return app.payout_json(v_payout);
end
$$;
comment on function api.payout_retry(text) is
  'POST /api/payouts/{id}/retry/ — an admin sends a failed payout again, to the host''s current payout account (a job). 409 unless it failed, when a dispute holds it, or when the host has no active account. Admins. Security definer: no client role may write app.payouts; it schedules the payout again through app_private.payout_schedule.';

-- ---------------------------------------------------------------------------------
-- Settling a booking
-- ---------------------------------------------------------------------------------

create function app.tg_bookings__settle() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payment app.payments;
  v_refund numeric;
begin
  if new.status = 'canceled' then
    perform app_private.payments_cancel_open(new.id, coalesce(new.cancel_reason, 'The booking was canceled.'));
    select * into v_payment from app.payments p
     where p.booking_id = new.id and p.status in ('succeeded', 'partially_refunded') and app_private.refundable(p) > 0
     order by p.succeeded_at, p.id
     limit 1
     for update;
    if found then
      -- The policy's refund (in the listing's currency) in the payment's currency, never more than remains.
      v_refund := least(app_private.refundable(v_payment),
                        case when new.refund_amount >= v_payment.booking_amount then v_payment.amount
                             else round(coalesce(new.refund_amount, 0) * coalesce(v_payment.rate, 1), app.minor_units(v_payment.currency)) end);
      if v_refund > 0 then
        perform app_private.refund_open(v_payment.id, v_refund, 'cancellation',
                                        coalesce(new.cancel_reason, 'The booking was canceled.'), new.canceled_by);
      end if;
    end if;
  end if;
  -- A completed stay pays the host now. Money kept on a cancellation waits for the would-be
  -- check-out (app.run_booking_jobs), like a stay's: a dispute raised meanwhile finds it unpaid.
  if new.status = 'completed' then
    perform app_private.payout_open(new.id);
  end if;
  return null;
end
$$;
comment on function app.tg_bookings__settle() is
  'Trigger: a booking that is canceled cancels its open payment (here and at the provider, a job) and refunds what the cancellation policy says (refund_amount, at the payment''s rate, never more than remains) through the provider that took the money; a booking that completes opens the host''s payout. Money kept on a cancellation is paid out at the would-be check-out (app.run_booking_jobs). All in the same transaction as the status change.';

create trigger bookings_settle after update of status on app.bookings
  for each row when (new.status in ('canceled', 'completed') and old.status is distinct from new.status)
  execute function app.tg_bookings__settle();

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_schema('PayoutAccount', 'Where a host is paid (app.payout_account_json); onboarding_url when Stripe still needs the host.', '{
  "provider": "stripe|paypal", "provider_account_id": "string?", "status": "pending|active",
  "created_at": "date-time", "updated_at": "date-time", "onboarding_url?": "string?"}');
select app.api_schema('Payout', 'Money sent to a host for a booking (app.payout_json): gross less the platform fee and what the host owed (withheld).', '{
  "id": "uuid", "booking_id": "uuid", "payment_id": "uuid?", "status": "pending|scheduled|processing|paid|failed",
  "gross": "decimal", "fee_percent": "decimal", "fee": "decimal", "withheld": "decimal", "amount": "decimal",
  "held": "boolean", "currency": "string",
  "provider": "stripe|paypal?", "provider_payout_id": "string?", "attempt": "integer", "failure_reason": "string?",
  "created_at": "date-time", "scheduled_at": "date-time?", "paid_at": "date-time?", "failed_at": "date-time?"}');
select app.api_operation('api.payment_refund', rate => 'payment', response => '"Refund"', errors => '{409}',
  body => '{"reason": "string(1..1000)", "amount?": "decimal"}', example => '{"reason": "Goodwill for a noisy night.", "amount": "20.00"}');
select app.api_operation('api.refund_retry', rate => 'payment', response => '"Refund"', errors => '{409}');
select app.api_operation('api.payout_account_get', response => '"PayoutAccount"', errors => '{404}');
select app.api_operation('api.payout_account_set', rate => 'payment', response => '"PayoutAccount"', errors => '{409}',
  body => '{"provider": "stripe|paypal",
            "email?": {"type": "string", "minLength": 3, "maxLength": 254, "pattern": "^ *[^@\\s]+@[^@\\s]+\\.[^@\\s]+ *$",
                       "description": "The PayPal account''s email: with provider paypal only, and then required."},
            "oneOf": [{"properties": {"provider": {"const": "stripe"}}, "not": {"required": ["email"]}},
                      {"properties": {"provider": {"const": "paypal"}}, "required": ["email"]}]}', example => '{"provider": "paypal", "email": "host@example.com"}');
select app.api_operation('api.payout_list', response => '"Payout"',
  parameters => '{"status": "pending|scheduled|processing|paid|failed"}');
select app.api_operation('api.payout_retry', rate => 'payment', response => '"Payout"', errors => '{409}');
