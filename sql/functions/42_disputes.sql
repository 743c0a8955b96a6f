/*
 * Disputes (chargebacks): a guest asks their bank, or PayPal, for their money back.
 *
 * The provider tells us by webhook (Stripe charge.dispute.*, PayPal CUSTOMER.DISPUTE.*); the
 * worker reads the dispute back from the provider, never trusting the payload, and
 * app_private.dispute_apply records what it says:
 *   - opened: the disputed money is held by the network (ledger: platform_cash -> dispute), the
 *     host's payout of the booking is held if it has not gone (app_private.payout_held), and
 *     admins and the host are told;
 *   - won: the money comes back (dispute -> platform_cash) and the payout is released;
 *   - lost: the money goes to the guest (dispute -> guest); if the host's payout was already
 *     computed, the host's share is charged to them (app_private.charge_host) and withheld from
 *     their next payout, the held one included; the payout is released.
 * A dispute is never for more than what remains of the payment after its refunds and other
 * disputes; what is disputed can no longer be refunded (app_private.refundable).
 */

create trigger disputes_set_updated_at before update on app.disputes
  for each row execute function app.tg__set_updated_at();

create function app_private.dispute_notify(p_dispute app.disputes, p_type text) returns void
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  -- plpgsql: app_private.notify is created later (60_notifications.sql).
  perform app_private.notify(u.id, p_type, jsonb_build_object(
            'dispute_id', p_dispute.id, 'payment_id', p_dispute.payment_id, 'booking_id', p_dispute.booking_id,
            'listing', (select p.name from app.products p join app.bookings b on b.product_id = p.id
                         where b.id = p_dispute.booking_id),
            'amount', p_dispute.amount::text, 'currency', p_dispute.currency,
            'reason', coalesce(p_dispute.reason, 'no reason given'), 'status', p_dispute.status))
     from app.users u
    where (u.role = 'admin' and u.is_active) or u.id = p_dispute.host_id;
end
$$;
comment on function app_private.dispute_notify(app.disputes, text) is
  'Tell every active admin and the host about a dispute (dispute_opened, dispute_closed), in the caller''s transaction.';

create function app_private.payout_release(p_booking uuid) returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payout app.payouts;
begin
  select * into v_payout from app.payouts o where o.booking_id = p_booking for update;
  if not found then
    return 'no payout yet';
  elsif app_private.payout_held(p_booking) then
    return 'payout still held: another dispute is open';
  elsif v_payout.status = 'pending' then
    return case when app_private.payout_schedule(v_payout.id) then 'payout scheduled' else 'payout pending' end;
  elsif v_payout.status = 'scheduled' then
    -- Its job found it held and sent nothing: send it now.
    perform app_private.defer('payouts.send', jsonb_build_object('payout_id', v_payout.id), 'payout:' || v_payout.id);
    return 'payout sent again';
  end if;
  return 'payout ' || v_payout.status;
end
$$;
comment on function app_private.payout_release(uuid) is
  'A dispute of the booking was decided: schedule its held payout (pending: withholding what the host now owes), or send a scheduled one that its job left unsent. A failed payout stays for an admin to retry. Returns what it did.';

create function app_private.dispute_apply(p_provider text, p_provider_dispute_id text, p_provider_payment_id text,
                                          p_status text, p_amount_minor bigint, p_currency text,
                                          p_reason text default null, p_provider_status text default null)
returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_dispute app.disputes;
  v_payment app.payments;
  v_amount numeric;
  v_open numeric;
  v_outcome text;
begin
  if p_status not in ('open', 'won', 'lost') then
    return 'ignored: status ' || coalesce(p_status, 'null');
  end if;
  select * into v_dispute from app.disputes d
   where d.provider = p_provider::app.payment_provider and d.provider_dispute_id = p_provider_dispute_id
   for update;
  if found then
    select * into v_payment from app.payments p where p.id = v_dispute.payment_id for update;
  else
    select * into v_payment from app.payments p
     where p.provider = p_provider::app.payment_provider and p.provider_payment_id = p_provider_payment_id
     for update;
    if not found then
      return 'ignored: no payment has this provider id';
    end if;
  end if;
  if upper(p_currency) is distinct from v_payment.currency then
    return format('refused: the dispute is in %s, the payment in %s', upper(p_currency), v_payment.currency);
  end if;
  v_amount := round(p_amount_minor / power(10::numeric, app.minor_units(v_payment.currency)), app.minor_units(v_payment.currency));

  if v_dispute.id is null then
    if v_payment.status not in ('succeeded', 'partially_refunded', 'refunded') then
      return format('refused: a %s payment cannot be disputed', v_payment.status);
    end if;
    v_open := v_payment.amount - v_payment.amount_refunded
              - coalesce((select sum(d.amount) from app.disputes d
                           where d.payment_id = v_payment.id and d.status <> 'won'), 0);
    if v_amount <= 0 or v_amount > v_open then
      return format('refused: %s %s disputed, only %s %s of the payment was not refunded or disputed',
                    v_amount, v_payment.currency, v_open, v_payment.currency);
    end if;
    insert into app.disputes (payment_id, booking_id, guest_id, host_id, provider, provider_dispute_id, amount,
                              currency, reason, provider_status)
    values (v_payment.id, v_payment.booking_id, v_payment.guest_id, v_payment.host_id, v_payment.provider,
            p_provider_dispute_id, app.money(v_amount, v_payment.currency), v_payment.currency, left(p_reason, 1000),
            left(p_provider_status, 100))
    returning * into v_dispute;
    perform app_private.ledger_post(v_payment.booking_id, 'dispute opened',
      app_private.ledger_move('platform_cash', 'dispute', v_dispute.amount, v_dispute.currency),
      p_payment => v_payment.id, p_dispute => v_dispute.id);
    perform app_private.dispute_notify(v_dispute, 'dispute_opened');
    v_outcome := 'dispute opened';
  else
    if v_amount <> v_dispute.amount then
      return format('ignored: the provider says %s %s, we have %s %s', v_amount, v_payment.currency,
                    v_dispute.amount, v_dispute.currency);
    end if;
    update app.disputes d
       set provider_status = coalesce(left(p_provider_status, 100), d.provider_status),
           reason = coalesce(left(p_reason, 1000), d.reason)
     where d.id = v_dispute.id and (d.provider_status, d.reason) is distinct from
           (coalesce(left(p_provider_status, 100), d.provider_status), coalesce(left(p_reason, 1000), d.reason));
    if v_dispute.status <> 'open' or p_status = 'open' then
      return 'unchanged: ' || v_dispute.status;
    end if;
  end if;

  if p_status = 'open' then
    return v_outcome;
  end if;
  update app.disputes d set status = p_status::app.dispute_status, closed_at = now()
   where d.id = v_dispute.id returning * into v_dispute;
  if p_status = 'won' then
    perform app_private.ledger_post(v_dispute.booking_id, 'dispute won',
      app_private.ledger_move('dispute', 'platform_cash', v_dispute.amount, v_dispute.currency),
      p_payment => v_payment.id, p_dispute => v_dispute.id);
  else
    perform app_private.ledger_post(v_dispute.booking_id, 'dispute lost',
      app_private.ledger_move('dispute', 'guest', v_dispute.amount, v_dispute.currency),
      p_payment => v_payment.id, p_dispute => v_dispute.id);
    perform app_private.charge_host(v_payment, v_dispute.amount, 'dispute charged to host', p_dispute => v_dispute.id);
  end if;
  perform app_private.dispute_notify(v_dispute, 'dispute_closed');
  return concat_ws('; ', v_outcome, 'dispute ' || p_status, app_private.payout_release(v_dispute.booking_id));
end
$$;
comment on function app_private.dispute_apply(text, text, text, text, bigint, text, text, text) is
  'Apply what a provider''s own record says about a dispute (the worker reads it back after a webhook): p_status open, won or lost (the worker maps the provider''s statuses), the amount in minor units and currency of the payment found by the provider''s payment id. A new dispute holds its money (ledger), holds the booking''s payout and tells admins and the host; refused when the payment is not paid or the amount is more than what remains after refunds and other disputes. Won or lost closes it once: the ledger moves the money back to the platform or to the guest, a lost one is charged to the host when their payout was already computed, and the payout is released. Returns what it did. Owner only (the worker).';

create function api.dispute_list(p_status text default null, p_page text default null, p_page_size text default null)
returns app.page
language plpgsql stable security invoker
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  if p_status is not null and not (p_status = any (enum_range(null::app.dispute_status)::text[])) then
    perform app.invalid('status', 'Must be one of ' || array_to_string(enum_range(null::app.dispute_status)::text[], ', ') || '.');
  end if;
  -- Row-level security decides whose disputes these are.
  select coalesce(max(x.total), 0),
         coalesce(json_agg(app.dispute_json(x.d) order by (x.d).created_at desc, (x.d).id), '[]')
    into v_count, v_results
    from (select d, count(*) over () as total
            from app.disputes d
           where p_status is null or d.status = p_status::app.dispute_status
           order by d.created_at desc, d.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.dispute_list(text, text, text) is
  'GET /api/disputes/ — disputes of payments, newest first: a guest''s own, a host''s of their listings, all for admins. Filter: status (open, won, lost). Paginated.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_schema('Dispute', 'A guest''s dispute (chargeback) of a payment, as the provider reported it (app.dispute_json).', '{
  "id": "uuid", "payment_id": "uuid", "booking_id": "uuid", "provider": "stripe|paypal", "provider_dispute_id": "string",
  "status": "open|won|lost", "amount": "decimal", "currency": "string", "reason": "string?",
  "provider_status": "string?", "created_at": "date-time", "closed_at": "date-time?"}');
select app.api_operation('api.dispute_list', response => '"Dispute"', parameters => '{"status": "open|won|lost"}');
