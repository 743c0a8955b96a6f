/*
 * Reconciliation: our payments, refunds and payouts against the providers' own lists.
 *
 * The flow: the worker's payments.reconcile (daily at 03:30 UTC, or when an admin asks with
 * api.reconciliation_run) starts a run per configured provider (app_private.reconciliation_start,
 * which fixes the window and says which PayPal payout batches to read), lists the provider's
 * objects of that window, and hands them, mapped onto our statuses, to
 * app_private.reconciliation_record. That compares (app_private.reconciliation_compare) and
 * records every difference; a provider that could not be listed fails the run
 * (app_private.reconciliation_failed) and nothing is compared.
 *
 * What is compared, for each kind (payment, refund, payout):
 *   - each of the provider's objects with our row of the same provider id, or else of our id
 *     where the provider echoes it (Stripe metadata, PayPal custom_id / sender_item_id): the
 *     currency, the amount (in minor units), and the status by what it means for the money
 *     (a payment paid: our succeeded, partially_refunded or refunded and the provider's
 *     succeeded; in flight; open; closed without money: failed or canceled);
 *   - a provider object with no row of ours is unknown_to_us; a row of ours in the window the
 *     provider should list and does not is missing_at_provider; a second provider object for
 *     one payout of ours that moved money (an earlier attempt paid besides the current one) is
 *     a duplicate, while an earlier attempt that failed is as it should be;
 *   - what is younger than the provider's grace (reconciliation_settings) may be in flight:
 *     never unknown, missing, or compared by status. A payout scheduled again (a new attempt on
 *     its way) is not compared by status.
 *
 * What each provider can show: Stripe lists PaymentIntents, Refunds and Transfers by creation
 * time, so every kind is checked both ways. PayPal's transaction search lists captures (T0006)
 * and refunds (T1107) only, so a PayPal payment is expected there once captured (processing or
 * paid); PayPal has no list of payout batches, so each payout of ours of the window is read by
 * its batch id, and a PayPal payout unknown to us cannot be found.
 *
 * A difference is never acted on: payments, refunds and payouts are only read here. It stays
 * open until an admin resolves it with a note (api.reconciliation_resolve), or a later run that
 * covers its object sees both sides agree, which marks it gone (kept, with that run: a webhook
 * that came late, or an admin's fix through the usual functions). New differences notify every
 * active admin (notification type reconciliation_differences).
 */

create function app_private.reconciliation_class(p_kind text, p_status text) returns text
language sql immutable parallel safe security invoker
as $$
  select case p_kind
    when 'payment' then case
      when p_status in ('succeeded', 'partially_refunded', 'refunded') then 'paid'
      when p_status = 'processing' then 'in flight'
      when p_status = 'requires_payment' then 'open'
      when p_status in ('failed', 'canceled') then 'closed unpaid' end
    when 'payout' then case
      when p_status in ('pending', 'scheduled') then 'not sent'
      when p_status = 'processing' then 'in flight'
      else p_status end
    else p_status end
$$;
comment on function app_private.reconciliation_class(text, text) is
  'What a status means for the money, so ours and a provider''s compare honestly: a payment is paid (our succeeded, partially_refunded, refunded; the provider''s succeeded: refunds are records of their own), in flight (processing), open (requires_payment) or closed unpaid (failed, canceled); a payout not sent, in flight, paid or failed; a refund pending, succeeded or failed.';

create function app_private.reconciliation_ours(p_kind text, p_provider app.payment_provider, p_provider_id text,
                                                p_our_id uuid)
returns jsonb
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  -- Our row with this provider id, or else with this id of ours; normalised:
  -- {id, status, amount, currency, minor (amount in minor units), provider_id, at, updated_at}.
  select (to_jsonb(o) - 'amount_n') || jsonb_build_object(
           'minor', (o.amount_n * power(10::numeric, app.minor_units(o.currency)))::bigint,
           'by_id', o.provider_id is not distinct from p_provider_id)
    from (select p.id, p.status::text as status, p.amount::text as amount, p.currency::text as currency,
                 p.amount as amount_n, p.provider_payment_id as provider_id, p.created_at as at, p.updated_at
            from app.payments p
           where p_kind = 'payment' and p.provider = p_provider
             and (p.provider_payment_id = p_provider_id or p.id = p_our_id)
          union all
          select r.id, r.status::text, r.amount::text, r.currency::text, r.amount, r.provider_refund_id, r.created_at,
                 r.updated_at
            from app.refunds r
           where p_kind = 'refund' and r.provider = p_provider
             and (r.provider_refund_id = p_provider_id or r.id = p_our_id)
          union all
          select o.id, o.status::text, o.amount::text, o.currency::text, o.amount, o.provider_payout_id,
                 coalesce(o.scheduled_at, o.created_at), o.updated_at
            from app.payouts o
           where p_kind = 'payout' and o.provider = p_provider
             and (o.provider_payout_id = p_provider_id or o.id = p_our_id)) o (id, status, amount, currency, amount_n,
                                                                                provider_id, at, updated_at)
   order by (o.provider_id is not distinct from p_provider_id) desc
   limit 1
$$;
comment on function app_private.reconciliation_ours(text, app.payment_provider, text, uuid) is
  'Our payment, refund or payout (p_kind) that a provider''s object is about: the one with its provider id, else the one whose id the provider echoed (p_our_id); as {id, status, amount, currency, minor, provider_id, at (created, or for a payout last sent), updated_at, by_id}. Null when none.';

create function app_private.reconciliation_compare(p_run app_private.reconciliation_runs, p_records jsonb)
returns table (kind text, issue text, our_id uuid, provider_id text, ours jsonb, theirs jsonb, detail text,
               object_at timestamptz)
language plpgsql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_t record;
  v_o jsonb;
  v_seen uuid[] := '{}';
  v_settled timestamptz := p_run.settled_before;
  v_name text := initcap(p_run.provider::text);
  v_theirs jsonb;
  v_mine record;
begin
  for v_t in
    select r.*, case when r.ours ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' then r.ours::uuid end as ours_id
      from jsonb_to_recordset(p_records) as r (kind text, id text, ours text, status text, provider_status text,
                                               amount_minor bigint, currency text, created timestamptz)
     where r.kind in ('payment', 'refund', 'payout') and r.id is not null
  loop
    v_theirs := jsonb_build_object('id', v_t.id, 'status', v_t.status, 'provider_status', v_t.provider_status,
                                   'amount_minor', v_t.amount_minor, 'currency', upper(v_t.currency),
                                   'created', v_t.created);
    v_o := app_private.reconciliation_ours(v_t.kind, p_run.provider, v_t.id, v_t.ours_id);
    if v_o is null then
      if v_t.created <= v_settled then
        return query select v_t.kind, 'unknown_to_us', null::uuid, v_t.id, null::jsonb, v_theirs,
          format('%s lists %s %s (%s minor units of %s, %s) that we have no record of.', v_name, v_t.kind, v_t.id,
                 v_t.amount_minor, upper(v_t.currency), coalesce(v_t.provider_status, v_t.status)),
          v_t.created;
      end if;
      continue;
    end if;
    v_seen := v_seen || (v_o ->> 'id')::uuid;
    if v_t.kind = 'payout' and not (v_o ->> 'by_id')::boolean and v_o ->> 'provider_id' is not null then
      -- Another attempt than the one we know of: as it should be if it failed, else money went twice.
      if v_t.status <> 'failed' then
        return query select v_t.kind, 'duplicate', (v_o ->> 'id')::uuid, v_t.id, v_o - 'by_id', v_theirs,
          format('%s has transfer %s (%s) for our payout %s besides %s, the attempt we know of.', v_name, v_t.id,
                 coalesce(v_t.provider_status, v_t.status), v_o ->> 'id', v_o ->> 'provider_id'),
          (v_o ->> 'at')::timestamptz;
      end if;
      continue;
    end if;
    if upper(v_t.currency) is distinct from v_o ->> 'currency' then
      return query select v_t.kind, 'currency', (v_o ->> 'id')::uuid, v_t.id, v_o - 'by_id', v_theirs,
        format('%s says %s %s is in %s, we have %s %s.', v_name, v_t.kind, v_t.id, upper(v_t.currency),
               v_o ->> 'amount', v_o ->> 'currency'),
        (v_o ->> 'at')::timestamptz;
    elsif v_t.amount_minor is distinct from (v_o ->> 'minor')::bigint then
      return query select v_t.kind, 'amount', (v_o ->> 'id')::uuid, v_t.id, v_o - 'by_id', v_theirs,
        format('%s says %s %s is %s minor units of %s, we have %s %s (%s).', v_name, v_t.kind, v_t.id,
               v_t.amount_minor, upper(v_t.currency), v_o ->> 'amount', v_o ->> 'currency', v_o ->> 'minor'),
        (v_o ->> 'at')::timestamptz;
    end if;
    if app_private.reconciliation_class(v_t.kind, v_t.status)
         is distinct from app_private.reconciliation_class(v_t.kind, v_o ->> 'status')
       and v_t.created <= v_settled and (v_o ->> 'updated_at')::timestamptz <= v_settled
       and not (v_t.kind = 'payout' and v_o ->> 'status' in ('pending', 'scheduled')) then
      return query select v_t.kind, 'status', (v_o ->> 'id')::uuid, v_t.id, v_o - 'by_id', v_theirs,
        format('%s says %s %s is %s (%s), we have %s.', v_name, v_t.kind, v_t.id, v_t.status,
               coalesce(v_t.provider_status, v_t.status), v_o ->> 'status'),
        (v_o ->> 'at')::timestamptz;
    end if;
  end loop;

  -- Ours in the window that the provider should have listed.
  for v_mine in
    select 'payment' as kind, p.id, p.status::text as status, p.amount::text as amount, p.currency::text as currency,
           p.provider_payment_id as provider_id, p.created_at as at
      from app.payments p
     where p.provider = p_run.provider and p.created_at >= p_run.since and p.created_at <= v_settled
       and case p_run.provider
             when 'stripe' then p.provider_payment_id is not null
             -- PayPal's transaction search shows captures: a payment captured, long enough ago.
             else p.status in ('processing', 'succeeded', 'partially_refunded', 'refunded')
                  and coalesce(p.succeeded_at, p.updated_at) <= v_settled end
    union all
    select 'refund', r.id, r.status::text, r.amount::text, r.currency::text, r.provider_refund_id, r.created_at
      from app.refunds r
     where r.provider = p_run.provider and r.created_at >= p_run.since and r.created_at <= v_settled
       and (r.provider_refund_id is not null or r.status = 'succeeded')
    union all
    select 'payout', o.id, o.status::text, o.amount::text, o.currency::text, o.provider_payout_id, o.scheduled_at
      from app.payouts o
     where o.provider = p_run.provider and o.provider_payout_id is not null
       and o.scheduled_at >= p_run.since and o.scheduled_at <= v_settled
  loop
    if v_mine.id = any (v_seen) then
      continue;
    end if;
    return query select v_mine.kind, 'missing_at_provider', v_mine.id, v_mine.provider_id,
      jsonb_build_object('id', v_mine.id, 'status', v_mine.status, 'amount', v_mine.amount,
                         'currency', v_mine.currency, 'provider_id', v_mine.provider_id, 'at', v_mine.at),
      null::jsonb,
      format('Our %s %s (%s %s, %s%s) is not in %s''s list.', v_mine.kind, v_mine.id, v_mine.amount, v_mine.currency,
             v_mine.status, coalesce(', ' || v_mine.provider_id, ''), v_name),
      v_mine.at;
  end loop;
end
$$;
comment on function app_private.reconciliation_compare(app_private.reconciliation_runs, jsonb) is
  'The differences between a provider''s records (p_records: [{kind payment|refund|payout, id, ours (our id it echoes, or null), status (in our words), provider_status (in its own), amount_minor, currency, created}]) and our rows, for one run''s window (see the comment at the top of sql/functions/43_reconciliation.sql). Reads only: changes nothing. A DBA may call it with a run and records to see what a run would find.';

create function app_private.reconciliation_start(p_provider text, p_since timestamptz default null,
                                                 p_requested_by uuid default null)
returns jsonb
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_settings app_private.reconciliation_settings;
  v_provider app.payment_provider := p_provider::app.payment_provider;
  v_until timestamptz := now();
  v_since timestamptz;
  v_run app_private.reconciliation_runs;
begin
  select * into v_settings from app_private.reconciliation_settings;
  v_since := coalesce(p_since, v_until - make_interval(days => v_settings.days));
  if v_since >= v_until or v_since < v_until - interval '31 days' then
    raise exception 'a reconciliation window starts within the last 31 days (PayPal''s transaction search spans no more), not %', v_since
      using errcode = '22023';
  end if;
  insert into app_private.reconciliation_runs (provider, requested_by, since, until, settled_before)
  values (v_provider, p_requested_by, v_since, v_until,
          greatest(v_since, v_until - make_interval(mins => case v_provider when 'stripe' then v_settings.stripe_grace_minutes
                                                                        else v_settings.paypal_grace_minutes end)))
  returning * into v_run;
  return jsonb_build_object(
    'run_id', v_run.id, 'provider', v_run.provider, 'since', v_run.since, 'until', v_run.until,
    -- PayPal lists no payout batches: the worker reads each of ours that the run compares.
    'payout_ids', (select coalesce(jsonb_agg(o.provider_payout_id order by o.scheduled_at), '[]')
                     from app.payouts o
                    where o.provider = v_provider and o.provider_payout_id is not null
                      and o.scheduled_at >= v_run.since and o.scheduled_at <= v_run.until));
end
$$;
comment on function app_private.reconciliation_start(text, timestamptz, uuid) is
  'Start a reconciliation run of one provider (the worker''s payments.reconcile): the window is p_since (an admin''s choice, within the last 31 days) or reconciliation_settings.days back, to now; objects younger than the provider''s grace are not compared. Returns {run_id, provider, since, until, payout_ids (our payouts of the window, for PayPal, which has no list of them)}. Owner only.';

create function app_private.reconciliation_failed(p_run bigint, p_error text) returns jsonb
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
  update app_private.reconciliation_runs r
     set status = 'failed', finished_at = now(), error = left(coalesce(p_error, 'unknown error'), 2000)
   where r.id = p_run and r.status = 'running'
  returning jsonb_build_object('run_id', r.id, 'provider', r.provider, 'status', r.status, 'error', r.error)
$$;
comment on function app_private.reconciliation_failed(bigint, text) is
  'A run could not list its provider''s objects: it failed, with why; nothing was compared, no difference changed. Owner only.';

create function app_private.reconciliation_record(p_run bigint, p_records jsonb) returns jsonb
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_run app_private.reconciliation_runs;
  v_found record;
  v_id uuid;
  v_seen uuid[] := '{}';
  v_new integer := 0;
  v_gone integer;
  v_open integer;
  v_admin uuid;
begin
  if jsonb_typeof(p_records) is distinct from 'array' then
    raise exception 'the provider''s records are a JSON array' using errcode = '22023';
  end if;
  -- One run records at a time: two runs of one provider would both insert the same new difference.
  -- (The settings row's lock, not an advisory lock: any role may take an advisory lock and hold
  -- this up; no client role can lock a row of app_private.)
  perform from app_private.reconciliation_settings for update;
  select * into v_run from app_private.reconciliation_runs r where r.id = p_run and r.status = 'running' for update;
  if not found then
    raise exception 'no running reconciliation run %', p_run using errcode = '22023';
  end if;

  for v_found in select * from app_private.reconciliation_compare(v_run, p_records) loop
    update app_private.reconciliation_differences d
       set last_run = v_run.id, last_seen_at = now(), ours = v_found.ours, theirs = v_found.theirs,
           detail = v_found.detail
     where d.state = 'open' and d.provider = v_run.provider and d.kind = v_found.kind and d.issue = v_found.issue
       and coalesce(d.our_id::text, '') = coalesce(v_found.our_id::text, '')
       and coalesce(d.provider_id, '') = coalesce(v_found.provider_id, '')
    returning d.id into v_id;
    if v_id is null then
      insert into app_private.reconciliation_differences
        (provider, kind, issue, our_id, provider_id, ours, theirs, detail, object_at, first_run, last_run)
      values (v_run.provider, v_found.kind, v_found.issue, v_found.our_id, v_found.provider_id, v_found.ours,
              v_found.theirs, left(v_found.detail, 1000), v_found.object_at, v_run.id, v_run.id)
      returning id into v_id;
      v_new := v_new + 1;
    end if;
    v_seen := v_seen || v_id;
    v_id := null;
  end loop;

  -- Open differences whose object this run looked at, and no longer saw: gone (kept).
  update app_private.reconciliation_differences d
     set state = 'gone', gone_run = v_run.id, gone_at = now()
   where d.state = 'open' and d.provider = v_run.provider and not (d.id = any (v_seen))
     and d.object_at >= v_run.since and d.object_at <= v_run.settled_before;
  get diagnostics v_gone = row_count;

  update app_private.reconciliation_runs r
     set status = 'succeeded', finished_at = now(), differences = cardinality(v_seen), new_differences = v_new,
         gone_differences = v_gone,
         compared = (select coalesce(jsonb_object_agg(k.kind, jsonb_build_object('theirs', (
                                select count(*) from jsonb_array_elements(p_records) e where e ->> 'kind' = k.kind))), '{}')
                       from unnest(array['payment', 'refund', 'payout']) k (kind))
   where r.id = v_run.id
  returning * into v_run;

  if v_new > 0 then
    v_open := (select count(*) from app_private.reconciliation_differences d where d.state = 'open');
    for v_admin in select u.id from app.users u where u.role = 'admin' and u.is_active loop
      perform app_private.notify(v_admin, 'reconciliation_differences',
        jsonb_build_object('run_id', v_run.id, 'provider', v_run.provider, 'new', v_new, 'open', v_open));
    end loop;
  end if;
  return jsonb_build_object('run_id', v_run.id, 'provider', v_run.provider, 'status', v_run.status,
                            'differences', v_run.differences, 'new', v_new, 'gone', v_gone, 'compared', v_run.compared);
end
$$;
comment on function app_private.reconciliation_record(bigint, jsonb) is
  'Finish a run with what its provider listed (p_records, as app_private.reconciliation_compare takes them): each difference found is recorded (one open row per difference; seen again, its last_run moves on), open differences whose object the window covered and that were not seen again are marked gone, the run succeeds with its counts, and when there are new differences every active admin is notified (reconciliation_differences). Never changes a payment, refund or payout. Returns {run_id, status, differences, new, gone, compared}. Owner only.';

create function app_private.reconciliation_run_json(r app_private.reconciliation_runs) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', r.id, 'provider', r.provider, 'requested_by', r.requested_by, 'since', r.since, 'until', r.until,
    'started_at', r.started_at, 'finished_at', r.finished_at, 'status', r.status, 'compared', r.compared,
    'differences', r.differences, 'new_differences', r.new_differences, 'gone_differences', r.gone_differences,
    'error', r.error)
$$;
comment on function app_private.reconciliation_run_json(app_private.reconciliation_runs) is 'A reconciliation run as the API shows it.';

create function app_private.reconciliation_difference_json(d app_private.reconciliation_differences) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', d.id, 'provider', d.provider, 'kind', d.kind, 'issue', d.issue, 'our_id', d.our_id,
    'provider_id', d.provider_id, 'ours', d.ours, 'theirs', d.theirs, 'detail', d.detail, 'state', d.state,
    'first_run', d.first_run, 'last_run', d.last_run, 'first_seen_at', d.first_seen_at,
    'last_seen_at', d.last_seen_at, 'gone_run', d.gone_run, 'gone_at', d.gone_at, 'resolved_by', d.resolved_by,
    'resolved_at', d.resolved_at, 'note', d.note)
$$;
comment on function app_private.reconciliation_difference_json(app_private.reconciliation_differences) is
  'A reconciliation difference as the API shows it.';

create function app_private.reconciliation_summary() returns jsonb
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'open', (select count(*) from app_private.reconciliation_differences d where d.state = 'open'),
    'last_runs', (select coalesce(jsonb_agg(app_private.reconciliation_run_json(r) order by r.provider), '[]')
                    from (select distinct on (r.provider) r.* from app_private.reconciliation_runs r
                           order by r.provider, r.id desc) r))
$$;
comment on function app_private.reconciliation_summary() is
  'For the admin System page: how many differences are open, and each provider''s last run.';

-- ---------------------------------------------------------------------------------
-- Admins
-- ---------------------------------------------------------------------------------

create function api.reconciliation_list(p_state text default null, p_provider text default null,
                                        p_page text default null, p_page_size text default null)
returns app.page
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  if p_state is not null and p_state not in ('open', 'gone', 'resolved') then
    perform app.invalid('state', 'Must be one of open, gone, resolved.');
  end if;
  if p_provider is not null and not (p_provider = any (enum_range(null::app.payment_provider)::text[])) then
    perform app.invalid('provider', 'Must be one of stripe, paypal.');
  end if;
  select coalesce(max(x.total), 0),
         coalesce(json_agg(app_private.reconciliation_difference_json(x.d) order by (x.d).first_seen_at desc, (x.d).id), '[]')
    into v_count, v_results
    from (select d, count(*) over () as total
            from app_private.reconciliation_differences d
           where (p_state is null or d.state = p_state) and (p_provider is null or d.provider::text = p_provider)
           order by d.first_seen_at desc, d.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.reconciliation_list(text, text, text, text) is
  'GET /api/admin/reconciliation/ — what the reconciliation with the payment providers found to differ from our books, newest first: kind (payment, refund, payout), issue (missing_at_provider, unknown_to_us, amount, currency, status, duplicate), ours and theirs as each run saw them, one sentence, and its state (open, gone: a later run saw both sides agree; resolved: an admin, with a note). Filters: state, provider. Paginated. Admins. Security definer: differences are in app_private, which no client role may read.';

create function api.reconciliation_runs(p_page text default null, p_page_size text default null)
returns app.page
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  select coalesce(max(x.total), 0),
         coalesce(json_agg(app_private.reconciliation_run_json(x.r) order by (x.r).id desc), '[]')
    into v_count, v_results
    from (select r, count(*) over () as total
            from app_private.reconciliation_runs r
           order by r.id desc
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.reconciliation_runs(text, text) is
  'GET /api/admin/reconciliation/runs/ — reconciliation runs, newest first: provider, window, status (running, succeeded, failed with its error), what was compared and how many differences were seen, new and gone. Paginated. Admins. Security definer: runs are in app_private.';

create function api.reconciliation_run(p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_errors jsonb := '{}';
  v_since timestamptz;
  v_provider text := p_body ->> 'provider';
begin
  if p_body is null or jsonb_typeof(p_body) <> 'object' then
    perform app.invalid('body', 'Must be a JSON object.');
  end if;
  v_errors := app.check_choice(v_errors, p_body, 'provider', enum_range(null::app.payment_provider)::text[]);
  if jsonb_typeof(p_body -> 'since') = 'null' then
    v_errors := app.add_error(v_errors, 'since', app.body_problem(p_body -> 'since', false, false));
  elsif jsonb_typeof(p_body -> 'since') <> 'string' then
    v_errors := app.add_error(v_errors, 'since', 'Must be a date-time (ISO 8601).');
  elsif p_body ? 'since' then
    begin
      v_since := (p_body ->> 'since')::timestamptz;
      if v_since >= now() or v_since < now() - interval '31 days' then
        v_errors := app.add_error(v_errors, 'since', 'Must be within the last 31 days.');
      end if;
    exception when data_exception then
      v_errors := app.add_error(v_errors, 'since', 'Must be a date-time (ISO 8601).');
    end;
  end if;
  perform app.raise_errors(v_errors);
  perform app_private.defer('payments.reconcile',
    jsonb_strip_nulls(jsonb_build_object('since', v_since, 'provider', v_provider,
                                         'requested_by', app.current_user_id())),
    'reconciliation');
  return jsonb_build_object('deferred', true, 'provider', v_provider, 'since', v_since);
end
$$;
comment on function api.reconciliation_run(jsonb) is
  'POST /api/admin/reconciliation/ {provider?, since?} — run the reconciliation now rather than at 03:30 UTC: a job (payments.reconcile) compares each configured provider (or the one named) over the window from since (within the last 31 days; default reconciliation_settings.days back). 202; the runs and what they found are at GET /api/admin/reconciliation/runs/ and /api/admin/reconciliation/. Admins (a DBA: select api.reconciliation_run(''{}'')). Security definer: it defers the job (app_private.defer).';

create function api.reconciliation_resolve(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
  v_row app_private.reconciliation_differences;
begin
  if p_body is null or jsonb_typeof(p_body) <> 'object' then
    perform app.invalid('body', 'Must be a JSON object.');
  end if;
  perform app.raise_errors(app.check_text('{}', p_body, 'note', 1, 2000, true));
  select * into v_row from app_private.reconciliation_differences d where d.id = v_id for update;
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
  if v_row.state = 'resolved' then
    perform app.fail(409, 'This difference is resolved already.', 'state');
  end if;
  update app_private.reconciliation_differences d
     set state = 'resolved', resolved_by = app.current_user_id(), resolved_at = now(),
         note = btrim(p_body ->> 'note')
   where d.id = v_id
  returning * into v_row;
  return app_private.reconciliation_difference_json(v_row);
end
$$;
comment on function api.reconciliation_resolve(text, jsonb) is
  'POST /api/admin/reconciliation/{id}/resolve/ {note} — an admin closes a difference (open or gone) with what they found and did; the note is kept with it. Resolving changes nothing else: a payment, refund or payout is put right through its own functions (a refund, a payout retry) or at the provider. 409 when resolved already. Admins. Security definer: differences are in app_private.';

select app.api_schema('ReconciliationDifference', 'A difference between our books and a payment provider''s, as a reconciliation found it.', '{
  "id": "uuid", "provider": "stripe|paypal", "kind": "payment|refund|payout",
  "issue": "missing_at_provider|unknown_to_us|amount|currency|status|duplicate",
  "our_id": "uuid?", "provider_id": "string?", "ours": "any", "theirs": "any", "detail": "string",
  "state": "open|gone|resolved", "first_run": "integer", "last_run": "integer", "first_seen_at": "date-time",
  "last_seen_at": "date-time", "gone_run": "integer?", "gone_at": "date-time?", "resolved_by": "uuid?",
  "resolved_at": "date-time?", "note": "string?"}');
select app.api_schema('ReconciliationRun', 'One reconciliation of one payment provider.', '{
  "id": "integer", "provider": "stripe|paypal", "requested_by": "uuid?", "since": "date-time", "until": "date-time",
  "started_at": "date-time", "finished_at": "date-time?", "status": "running|succeeded|failed", "compared": "any",
  "differences": "integer", "new_differences": "integer", "gone_differences": "integer", "error": "string?"}');
select app.api_operation('api.reconciliation_list', response => '"ReconciliationDifference"');
select app.api_operation('api.reconciliation_runs', response => '"ReconciliationRun"');
select app.api_operation('api.reconciliation_run', body => '{"provider?": "stripe|paypal", "since?": "date-time"}',
  response => '{"deferred": "boolean", "provider": "string?", "since": "date-time?"}', rate => 'payment');
select app.api_operation('api.reconciliation_resolve', body => '{"note": "string"}',
  response => '"ReconciliationDifference"', errors => '{409}');
