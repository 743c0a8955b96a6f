/*
 * Admin: the audit log, the overview's figures, and the few reads the dashboard (/admin/)
 * needs beyond the API's own. Every write the dashboard makes is an existing API function
 * (api.user_update, api.product_update, api.booking_cancel, api.payment_refund, ...), run as
 * the signed-in admin under the same grants and RLS: the dashboard is one more client.
 */

-- ---------------------------------------------------------------------------------
-- The audit log
-- ---------------------------------------------------------------------------------

create function app.tg__audit() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_before jsonb := case when tg_op in ('UPDATE', 'DELETE') then to_jsonb(old) - 'client_secret' end;
  v_after jsonb := case when tg_op in ('INSERT', 'UPDATE') then to_jsonb(new) - 'client_secret' end;
begin
  -- why: not an access check: only an admin's changes are audited, whoever else may write the row.
  if not app.is_admin() or (tg_op = 'UPDATE' and v_before = v_after) then
    return null;
  end if;
  insert into app_private.audit_log (actor_id, action, table_name, row_id, before, after)
  values (app.current_user_id(), lower(tg_op), tg_table_schema || '.' || tg_table_name,
          -- Rows without an id (exchange rates, a listing's amenities) are named by their whole content.
          coalesce(coalesce(v_after, v_before) ->> 'id', left(coalesce(v_after, v_before)::text, 100)),
          v_before, v_after);
  return null;
end
$$;
comment on function app.tg__audit() is
  'Trigger: when the request is an admin''s (app.is_admin()), record the change in app_private.audit_log: who, what, which row, before and after (client secrets removed). Changes by anyone else, or by the owner in psql, are not admin actions. Security definer: it appends to app_private.audit_log, and it fires on writes by client roles (listings, users, categories, notifications).';

do $$
declare
  v_table text;
begin
  foreach v_table in array array['users', 'products', 'product_photos', 'product_amenities', 'categories', 'bookings',
                                 'payments', 'refunds', 'payouts', 'reviews', 'message_reports', 'exchange_rates',
                                 'notifications'] loop
    execute format('create trigger %I after insert or update or delete on app.%I
                      for each row execute function app.tg__audit()', v_table || '_audit', v_table);
  end loop;
end
$$;

create function app.tg_audit_log__append_only() returns trigger
language plpgsql security invoker
as $$
begin
  raise exception 'the audit log is append-only (% refused)', tg_op;
end
$$;
comment on function app.tg_audit_log__append_only() is 'Trigger: audit entries are never updated or deleted, not even by the owner.';

create trigger audit_log_append_only before update or delete on app_private.audit_log
  for each row execute function app.tg_audit_log__append_only();

create function api.audit_list(p_actor text default null, p_table text default null, p_row text default null,
                               p_page text default null, p_page_size text default null)
returns app.page
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_actor uuid := app.parse_uuid(p_actor, 'actor', 400);
  v_count bigint;
  v_results json;
begin
  select coalesce(max(x.total), 0),
         coalesce(json_agg(jsonb_build_object('id', x.id, 'at', x.at, 'actor_id', x.actor_id, 'actor_email', x.email,
                                             'action', x.action, 'table', x.table_name, 'row_id', x.row_id,
                                             'before', x.before, 'after', x.after) order by x.id desc), '[]')
    into v_count, v_results
    from (select a.*, u.email, count(*) over () as total
            from app_private.audit_log a
            left join app.users u on u.id = a.actor_id
           where (v_actor is null or a.actor_id = v_actor)
             and (p_table is null or a.table_name = p_table or a.table_name = 'app.' || p_table)
             and (p_row is null or a.row_id = p_row)
           order by a.id desc
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.audit_list(text, text, text, text, text) is
  'GET /api/admin/audit/ — admin actions, newest first: who (id and email), what (insert, update, delete), which table and row, the row before and after. Filters: actor (user id), table (e.g. bookings), row (an id). Paginated. Admins. Security definer: the audit log is app_private.audit_log, which no client role may read.';

-- ---------------------------------------------------------------------------------
-- The overview
-- ---------------------------------------------------------------------------------

create function api.admin_overview() returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_today date := (now() at time zone 'UTC')::date;
  v_month date := date_trunc('month', now() at time zone 'UTC')::date;
begin
  return jsonb_build_object(
    'bookings_today', (select coalesce(jsonb_object_agg(status, n), '{}') from (
        select b.status, count(*) as n from app.bookings b
         where (b.created_at at time zone 'UTC')::date = v_today group by 1) s),
    'bookings_month', (select coalesce(jsonb_object_agg(status, n), '{}') from (
        select b.status, count(*) as n from app.bookings b
         where (b.created_at at time zone 'UTC')::date >= v_month group by 1) s),
    'money_month', (select coalesce(jsonb_agg(jsonb_build_object(
          'currency', m.currency, 'paid_in', app.money(sum_paid, m.currency)::text,
          'refunded', app.money(sum_refunded, m.currency)::text, 'fees', app.money(sum_fees, m.currency)::text,
          'paid_out', app.money(sum_out, m.currency)::text) order by m.currency), '[]')
        from (select currency, sum(paid_in) as sum_paid, sum(refunded) as sum_refunded, sum(fees) as sum_fees,
                     sum(paid_out) as sum_out
                from analytics.money_daily where day >= v_month group by currency) m),
    'new_users_month', (select count(*) from app.users u where (u.created_at at time zone 'UTC')::date >= v_month),
    'new_listings_month', (select count(*) from app.products p where (p.created_at at time zone 'UTC')::date >= v_month),
    'occupancy_month', (select round(avg(o.occupancy), 4) from analytics.occupancy_monthly o where o.month = v_month),
    'payouts', (select jsonb_build_object(
          'pending', count(*) filter (where o.status in ('pending', 'scheduled', 'processing')),
          'failed', count(*) filter (where o.status = 'failed')) from app.payouts o),
    'dead_letters', (select count(*) from app.notifications n where n.email_state = 'dead'),
    'reported_messages', (select count(*) from app.message_reports),
    'hidden_reviews', (select count(*) from app.reviews r where r.hidden_at is not null),
    'bookings_per_day', (select jsonb_agg(jsonb_build_object('day', d.day::date, 'n', coalesce(b.n, 0)) order by d.day)
        from generate_series(v_today - 29, v_today, interval '1 day') d(day)
        left join (select (created_at at time zone 'UTC')::date as day, count(*) as n from app.bookings
                    where created_at >= v_today - 29 group by 1) b on b.day = d.day::date),
    'revenue_per_day', (select coalesce(jsonb_agg(jsonb_build_object('day', d.day::date, 'currency', c.currency,
                                                                   'paid_in', coalesce(m.paid_in, 0)::text)
                                                order by c.currency, d.day), '[]')
        from (select distinct currency from analytics.money_daily where day >= v_today - 29) c
        cross join generate_series(v_today - 29, v_today, interval '1 day') d(day)
        left join analytics.money_daily m on m.day = d.day::date and m.currency = c.currency));
end
$$;
comment on function api.admin_overview() is
  'GET /api/admin/overview/ — the dashboard''s figures, from the analytics views and counts: bookings today and this month by status, money this month by currency (paid in, refunded, fees, paid out), new users and listings this month, occupancy this month, payouts pending and failed, email dead letters, reported messages, hidden reviews, and per-day series (bookings, revenue) for the last 30 days. Admins. Security definer: it counts every user''s notifications (an admin''s policy shows only their own) and reads the analytics views, which the admin role may not read.';

-- ---------------------------------------------------------------------------------
-- Reads the dashboard needs
-- ---------------------------------------------------------------------------------

create function api.admin_products(p_search text default null, p_host text default null, p_category text default null,
                                   p_published text default null, p_page text default null, p_page_size text default null,
                                   p_min_price text default null, p_max_price text default null)
returns app.page
language plpgsql stable security invoker
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_host uuid := app.parse_uuid(p_host, 'host', 400);
  v_min numeric := app.parse_price(p_min_price, 'min_price');
  v_max numeric := app.parse_price(p_max_price, 'max_price');
  v_count bigint;
  v_results json;
begin
  if p_published is not null and p_published not in ('true', 'false') then
    perform app.invalid('published', 'Must be true or false.');
  end if;
  -- Row-level security: admins see every listing, published or not.
  select coalesce(max(x.total), 0),
         coalesce(json_agg(jsonb_build_object('id', x.id, 'name', x.name, 'location', x.location,
                                             'category', x.slug, 'host_id', x.host_id, 'host_email', x.email,
                                             'price_per_night', x.price_per_night::text, 'currency', x.currency,
                                             'published', x.published, 'rating_avg', x.rating_avg,
                                             'rating_count', x.rating_count, 'created_at', x.created_at)
                           order by x.created_at desc, x.id), '[]')
    into v_count, v_results
    from (select p.*, c.slug, u.email, count(*) over () as total
            from app.products p
            join app.categories c on c.id = p.category_id
            left join app.users u on u.id = p.host_id
           where (p_search is null or p.name ilike '%' || p_search || '%' or p.location ilike '%' || p_search || '%')
             and (v_host is null or p.host_id = v_host)
             and (p_category is null or c.slug = p_category)
             and (p_published is null or p.published = p_published::boolean)
             and (v_min is null or p.price_per_night >= v_min)
             and (v_max is null or p.price_per_night <= v_max)
           order by p.created_at desc, p.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.admin_products(text, text, text, text, text, text, text, text) is
  'GET /api/admin/products/ — every listing, published or not, newest first, with its host''s email. Filters: search (name or location), host (id), category (slug), published (true|false), min_price and max_price (per night). Paginated. Admins (RLS).';

create function api.admin_user(p_id text) returns jsonb
language sql stable security invoker
as $$
  select app.user_json(u) || jsonb_build_object(
    'bookings', (select coalesce(jsonb_agg(app.booking_json(b) order by b.created_at desc), '[]')
                   from (select * from app.bookings b where b.guest_id = u.id order by b.created_at desc limit 20) b),
    'listings', (select coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'name', p.name, 'published', p.published)
                                           order by p.created_at desc), '[]')
                   from (select * from app.products p where p.host_id = u.id order by p.created_at desc limit 20) p),
    'payments', (select coalesce(jsonb_agg(app.payment_json(p) order by p.created_at desc), '[]')
                   from (select * from app.payments p where p.guest_id = u.id order by p.created_at desc limit 20) p))
  from app.users u
  where u.id = app.parse_uuid(p_id)
$$;
comment on function api.admin_user(text) is
  'GET /api/admin/users/{id}/ — one user''s profile with their latest bookings (as guest), listings (as host) and payments (20 each). Admins (RLS).';

create function api.user_sessions_end(p_id text) returns jsonb
language plpgsql volatile security invoker
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
begin
  if not exists (select from app.users u where u.id = v_id) then
    perform app.fail(404, 'Not found.');
  end if;
  perform app.end_sessions(v_id);
  return jsonb_build_object('id', v_id, 'sessions_ended', true);
end
$$;
comment on function api.user_sessions_end(text) is
  'POST /api/users/{id}/end-sessions/ — an admin signs a user out everywhere: their access and refresh tokens stop working. Admins.';

create function api.admin_booking(p_id text) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_booking app.bookings;
begin
  select * into v_booking from app.bookings b where b.id = app.parse_uuid(p_id);
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
  return app.booking_json(v_booking) || jsonb_build_object(
    'listing', (select jsonb_build_object('id', p.id, 'name', p.name) from app.products p where p.id = v_booking.product_id),
    'guest_email', (select u.email from app.users u where u.id = v_booking.guest_id),
    'host_email', (select u.email from app.users u where u.id = v_booking.host_id),
    'timeline', (select coalesce(jsonb_agg(jsonb_build_object('at', t.at, 'event', t.event) order by t.at), '[]')
                   from (values (v_booking.created_at, 'requested'), (v_booking.confirmed_at, 'confirmed'),
                                (v_booking.canceled_at, 'canceled'), (v_booking.completed_at, 'completed')) t(at, event)
                  where t.at is not null),
    'payments', (select coalesce(jsonb_agg(app.payment_json(p) order by p.created_at), '[]')
                   from app.payments p where p.booking_id = v_booking.id),
    'payout', (select app.payout_json(o) from app.payouts o where o.booking_id = v_booking.id),
    -- A count only: admins never read a conversation nobody reported.
    'messages', (select count(*) from app.messages m join app.conversations c on c.id = m.conversation_id
                  where c.product_id = v_booking.product_id and c.guest_id = v_booking.guest_id),
    'audit', (select coalesce(jsonb_agg(jsonb_build_object('at', a.at, 'action', a.action, 'actor_id', a.actor_id,
                                                           'before', a.before ->> 'status', 'after', a.after ->> 'status')
                                        order by a.id), '[]')
                from app_private.audit_log a where a.table_name = 'app.bookings' and a.row_id = v_booking.id::text));
end
$$;
comment on function api.admin_booking(text) is
  'GET /api/admin/bookings/{id}/ — a booking''s file: the booking, its listing and parties'' emails, a timeline (requested, confirmed, canceled, completed), its payments with refunds, its payout, how many messages its guest and host exchanged (a count: admins never read unreported conversations), and the admin actions on it. Admins. Security definer: it reads the booking''s audit trail in app_private.audit_log and counts the messages of a conversation an admin may not read.';

create function api.admin_payment(p_id text) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_payment app.payments;
begin
  select * into v_payment from app.payments p where p.id = app.parse_uuid(p_id);
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
  return app.payment_json(v_payment) || jsonb_build_object(
    'guest_email', (select u.email from app.users u where u.id = v_payment.guest_id),
    'payout', (select app.payout_json(o) from app.payouts o where o.payment_id = v_payment.id),
    'webhook_events', (select coalesce(jsonb_agg(jsonb_build_object('event_id', e.event_id, 'type', e.type,
                                                                    'received_at', e.received_at, 'outcome', e.outcome)
                                                 order by e.received_at), '[]')
                         from app_private.webhook_events e
                        where e.provider = v_payment.provider
                          and e.object_id in (v_payment.provider_payment_id,
                                              (select r.provider_refund_id from app.refunds r
                                                where r.payment_id = v_payment.id limit 1))));
end
$$;
comment on function api.admin_payment(text) is
  'GET /api/admin/payments/{id}/ — a payment''s file: the payment with its refunds, the guest''s email, its payout, and the provider webhook events about it. Admins. Security definer: it reads the payment''s provider events in app_private.webhook_events, which no client role may read.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_operation('api.audit_list', parameters => '{"actor": "uuid", "table": {"type": "string", "description": "A table, e.g. products or app.products."}, "row": {"type": "string", "description": "A rows id."}}',
  response => '{"id": "integer", "at": "date-time", "actor_id": "uuid?", "actor_email": "string?", "action": "insert|update|delete",
                "table": "string", "row_id": "string?", "before": "any", "after": "any"}');
select app.api_operation('api.admin_overview', response => '{
  "bookings_today": {"type": "object", "additionalProperties": "integer"},
  "bookings_month": {"type": "object", "additionalProperties": "integer"},
  "money_month": {"type": "array", "items": {"currency": "string", "paid_in": "decimal", "refunded": "decimal", "fees": "decimal", "paid_out": "decimal"}},
  "new_users_month": "integer", "new_listings_month": "integer", "occupancy_month": "number?",
  "payouts": {"pending": "integer", "failed": "integer"}, "dead_letters": "integer", "reported_messages": "integer",
  "hidden_reviews": "integer",
  "bookings_per_day": {"type": "array", "items": {"day": "date", "n": "integer"}},
  "revenue_per_day": {"type": "array", "items": {"day": "date", "currency": "string", "paid_in": "decimal"}}}');
select app.api_operation('api.admin_products', parameters => '{
  "search": {"type": "string", "description": "Any part of the name or the location, ignoring case."}, "host": "uuid", "category": {"type": "string", "description": "A category slug."}, "published": {"type": "string", "enum": ["true", "false"]},
  "min_price": "price", "max_price": "price"}',
  response => '{"id": "uuid", "name": "string", "location": "string", "category": "string", "host_id": "uuid",
                "host_email": "string?", "price_per_night": "decimal", "currency": "string", "published": "boolean",
                "rating_avg": "number?", "rating_count": "integer", "created_at": "date-time"}');
select app.api_operation('api.admin_user', response => '{"...": "User", "bookings": "[Booking]",
  "listings": {"type": "array", "items": {"id": "uuid", "name": "string", "published": "boolean"}}, "payments": "[Payment]"}');
select app.api_operation('api.user_sessions_end', response => '{"id": "uuid", "sessions_ended": "boolean"}');
select app.api_operation('api.admin_booking', response => '{"...": "Booking",
  "listing": {"anyOf": [{"id": "uuid", "name": "string"}, {"type": "null"}]}, "guest_email": "string?", "host_email": "string?",
  "timeline": {"type": "array", "items": {"at": "date-time", "event": "requested|confirmed|canceled|completed"}},
  "payments": "[Payment]", "payout": {"anyOf": [{"$ref": "#/components/schemas/Payout"}, {"type": "null"}]},
  "messages": "integer",
  "audit": {"type": "array", "items": {"at": "date-time", "action": "insert|update|delete", "actor_id": "uuid?",
                                       "before": "string?", "after": "string?"}}}');
select app.api_operation('api.admin_payment', response => '{"...": "Payment", "guest_email": "string?",
  "payout": {"anyOf": [{"$ref": "#/components/schemas/Payout"}, {"type": "null"}]},
  "webhook_events": {"type": "array", "items": {"event_id": "string", "type": "string", "received_at": "date-time", "outcome": "string?"}}}');

-- ---------------------------------------------------------------------------------
-- System: how the machinery is doing (slow statements, the job queue, dead letters, 5xx)
-- ---------------------------------------------------------------------------------

create function app_private.top_statements(p_order text, p_limit int) returns jsonb
language plpgsql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_schema name := (select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
                     where e.extname = 'pg_stat_statements');
  v_result jsonb;
begin
  if v_schema is null then
    return null;  -- not installed (or not preloaded): the page says how to turn it on
  end if;
  execute format(
    $q$select coalesce(jsonb_agg(jsonb_build_object(
              'query', left(regexp_replace(s.query, '\s+', ' ', 'g'), 400), 'calls', s.calls,
              'total_ms', round(s.total_exec_time::numeric, 1), 'mean_ms', round(s.mean_exec_time::numeric, 3),
              'rows', s.rows) order by %1$s desc), '[]')
         from (select * from %2$I.pg_stat_statements s
                where s.dbid = (select oid from pg_database where datname = current_database())
                  -- Only statements PostgreSQL normalises (constants become $n). A utility
                  -- statement keeps its literals (ALTER ROLE ... PASSWORD '...'): never shown.
                  and s.query ~* '^\s*(select|insert|update|delete|with|values|table)\M'
                  and s.query !~* 'password|secret|token' 
                order by %1$s desc limit %3$s) s$q$,
    case p_order when 'mean' then 's.mean_exec_time' else 's.total_exec_time' end, v_schema, p_limit)
    into v_result;
  return v_result;
exception when object_not_in_prerequisite_state then
  return null;  -- created but not in shared_preload_libraries
end
$$;
comment on function app_private.top_statements(text, int) is
  'The database''s statements with the most total (p_order total) or mean (mean) execution time, from pg_stat_statements: query text (normalised, parameters as $n), calls, total_ms, mean_ms, rows. Only statements PostgreSQL normalises (select, insert, update, delete, with, values, table) and none mentioning a password, secret or token: a utility statement keeps its literals (ALTER ROLE ... PASSWORD). Null when pg_stat_statements is not installed and preloaded. Query texts of other roles need pg_read_all_stats (docs/operations.md).';

create function api.admin_system() returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'statements_by_total', app_private.top_statements('total', 10),
    'statements_by_mean', app_private.top_statements('mean', 10),
    'jobs', (select coalesce(jsonb_agg(jsonb_build_object(
                'task', j.task_name, 'status', j.status, 'count', j.n,
                'oldest_seconds', round(extract(epoch from now() - j.oldest))::int) order by j.task_name, j.status), '[]')
               from (select q.task_name, q.status::text as status, count(*) as n,
                            min(d.at) filter (where q.status in ('todo', 'doing')) as oldest
                       from procrastinate.procrastinate_jobs q
                       -- when it was deferred (a job row has no such column; its first event says it)
                       left join lateral (select min(ev.at) as at from procrastinate.procrastinate_events ev
                                           where ev.job_id = q.id and ev.type = 'deferred'
                                             and q.status in ('todo', 'doing')) d on true
                      where q.status in ('todo', 'doing', 'failed')
                      group by 1, 2) j),
    'dead_letters', (select count(*) from app.notifications n where n.email_state = 'dead'),
    'exchange_rates', (select jsonb_build_object('source', f.source, 'attempted_at', f.attempted_at,
                                                 'succeeded_at', f.succeeded_at, 'feed_date', f.feed_date, 'base', f.base,
                                                 'rates', f.rates, 'skipped', f.skipped, 'error', f.error,
                                                 'failed_at', f.failed_at)
                         from app_private.rate_feed f),
    'reconciliation', app_private.reconciliation_summary(),
    'server_errors', (select coalesce(jsonb_agg(jsonb_build_object(
                        'at', e.at, 'request_id', e.request_id, 'method', e.method, 'path', e.path, 'status', e.status)
                        order by e.id desc), '[]')
                        from (select * from app_private.server_errors order by id desc limit 20) e))
$$;
comment on function api.admin_system() is
  'GET /api/admin/system/ — how the machinery is doing: the 10 statements with the most total and mean time (pg_stat_statements; null when it is not installed), the job queue per task and status (todo, doing, failed) with the age in seconds of the oldest job deferred and not yet done, the count of dead-letter emails, the exchange-rate feed''s state (last success, the feed''s date, currencies it lacked, the last error), the reconciliation with the payment providers (open differences, each provider''s last run), and the last 20 5xx answers with their request ids. Admins. Security definer: it reads the job queue (schema procrastinate), app_private.server_errors, the reconciliation''s runs and differences and pg_stat_statements, which no client role may read.';

create function api.server_error_record(p_request_id text, p_method text, p_path text, p_status int) returns void
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  delete from app_private.server_errors where at < now() - interval '7 days';
  insert into app_private.server_errors (request_id, method, path, status)
  values (left(p_request_id, 64), left(p_method, 16), left(p_path, 512), p_status);
$$;
comment on function api.server_error_record(text, text, text, int) is
  'The API records a 5xx it answered (request id, method, path without query, status), after the answer and outside the failed request''s transaction; rows older than seven days go. Called by the API process as api_internal, never by a client. Security definer: it writes app_private.server_errors, which only the owner may.';

select app.api_schema('Statement', 'A statement''s totals since pg_stat_statements was last reset (parameters shown as $n).', '{
  "query": "string", "calls": "integer", "total_ms": "number", "mean_ms": "number", "rows": "integer"}');
select app.api_operation('api.admin_system', response => '{
  "statements_by_total": "[Statement]?", "statements_by_mean": "[Statement]?",
  "jobs": {"type": "array", "items": {"task": "string", "status": "todo|doing|failed", "count": "integer", "oldest_seconds": "integer?"}},
  "dead_letters": "integer",
  "exchange_rates": {"source": "string?", "attempted_at": "date-time?", "succeeded_at": "date-time?", "feed_date": "date?",
                     "base": "string?", "rates": "integer", "skipped": "any", "error": "string?", "failed_at": "date-time?"},
  "reconciliation": {"open": "integer", "last_runs": "[ReconciliationRun]"},
  "server_errors": {"type": "array", "items": {"at": "date-time", "request_id": "string", "method": "string", "path": "string", "status": "integer"}}}');
