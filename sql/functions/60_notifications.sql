/*
 * Notifications: written in the same transaction as their cause, read in the app, emailed by the worker.
 *
 *   - app_private.notify(user, type, data) is the one way a notification is made: it applies
 *     the user's preferences (mandatory types ignore them), throttles new-message emails per
 *     conversation, writes the row, defers the email job (notifications.send_email) and
 *     NOTIFYs channel app_private.channel('notifications') (secret name: 04_channels.sql) for
 *     the live stream, all in the caller's transaction.
 *   - The triggers at the end call it when bookings, payments, refunds, payouts, reviews and
 *     sign-ins change; the domain functions know nothing about notifications.
 *   - The worker renders the email (app_private.email_render: templates in
 *     app_private.notification_types, values HTML-escaped) and reports what the relay said
 *     (email_sent, email_failed: a dead letter after notification_settings.email_max_attempts).
 *
 * Access: a user reads and marks read their own in-app notifications (RLS); preferences go
 * through api.notification_preferences_set; admins see dead letters and may resend them.
 */

create function app_private.notification_config() returns app_private.notification_settings
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select s from app_private.notification_settings s where s.id
$$;
comment on function app_private.notification_config() is
  'The notification settings row (app_private.notification_settings): email_max_attempts, message_email_minutes, from_name.';

create function app.html_escape(p_text text) returns text
language sql immutable parallel safe security invoker
as $$
  select replace(replace(replace(replace(replace(p_text, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;
comment on function app.html_escape(text) is 'Text made safe inside HTML (elements and attribute values): & < > " and '' escaped.';

create function app_private.render(p_template text, p_values jsonb, p_html boolean) returns text
language plpgsql immutable security invoker
as $$
declare
  v_out text := p_template;
  v_key text;
begin
  for v_key in select distinct m[1] from regexp_matches(p_template, '\{\{([a-z_]+)\}\}', 'g') m loop
    v_out := replace(v_out, '{{' || v_key || '}}',
                     case when p_html then app.html_escape(coalesce(p_values ->> v_key, ''))
                          else coalesce(p_values ->> v_key, '') end);
  end loop;
  return v_out;
end
$$;
comment on function app_private.render(text, jsonb, boolean) is
  'Fill a template''s {{name}} placeholders from p_values (missing ones become empty); with p_html every value is HTML-escaped, so data can never become markup.';

create function app_private.notification_wanted(p_user uuid, p_type text, out email boolean, out in_app boolean)
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  -- Only a JSON true or false counts: preferences is the user's free-form object (PATCH /api/users/me/).
  select case when t.mandatory then true
              when jsonb_typeof(u.preferences #> array['notifications', t.type, 'email']) = 'boolean'
                then (u.preferences #>> array['notifications', t.type, 'email'])::boolean
              else t.email_default end,
         case when t.mandatory then true
              when jsonb_typeof(u.preferences #> array['notifications', t.type, 'in_app']) = 'boolean'
                then (u.preferences #>> array['notifications', t.type, 'in_app'])::boolean
              else t.in_app_default end
    from app_private.notification_types t, app.users u
   where t.type = p_type and u.id = p_user
$$;
comment on function app_private.notification_wanted(uuid, text) is
  'Whether a user wants a type by email and in the app: their preferences (users.preferences.notifications.<type>.email / in_app, when a JSON boolean), else the type''s defaults; mandatory types always.';

create function app_private.notify(p_user uuid, p_type text, p_data jsonb, p_throttle_key text default null)
returns uuid
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_want record := app_private.notification_wanted(p_user, p_type);
  v_email boolean;
  v_row app.notifications;
begin
  if p_user is null or v_want is null or not (v_want.email or v_want.in_app) then
    return null;
  end if;
  v_email := v_want.email;
  if v_email and p_throttle_key is not null then
    -- At most one email per key (a conversation) and recipient in message_email_minutes.
    v_email := not exists (
      select from app.notifications n
       where n.user_id = p_user and n.type = p_type and n.data ->> 'throttle_key' = p_throttle_key
         and n.email_state in ('pending', 'sent')
         and n.created_at > now() - make_interval(mins => (app_private.notification_config()).message_email_minutes));
  end if;
  insert into app.notifications (user_id, type, data, in_app, email_state)
  values (p_user, p_type,
          p_data || case when p_throttle_key is not null then jsonb_build_object('throttle_key', p_throttle_key) else '{}' end,
          v_want.in_app, case when v_email then 'pending' else 'skipped' end::app.email_state)
  returning * into v_row;
  if v_email then
    perform app_private.defer('notifications.send_email', jsonb_build_object('notification_id', v_row.id),
                              'notification:' || v_row.id);
  end if;
  if v_row.in_app then
    -- Delivered to listeners when this transaction commits, never before (nor if it rolls back).
    perform pg_notify(app_private.channel('notifications'),
                      json_build_object('user_id', p_user, 'seq', v_row.seq)::text);
  end if;
  return v_row.id;
end
$$;
comment on function app_private.notify(uuid, text, jsonb, text) is
  'Make a notification of p_type for p_user with p_data, in the caller''s transaction: by the user''s preferences (mandatory types always), the in-app row, the email job (notifications.send_email) and a NOTIFY on app_private.channel(''notifications'') for the live stream. p_throttle_key (a conversation id) limits emails to one per key per message_email_minutes. Returns the id, or null when the user wants neither channel.';

-- ---------------------------------------------------------------------------------
-- The in-app list
-- ---------------------------------------------------------------------------------

create function app.notification_title(p_type text, p_data jsonb) returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select app_private.render(t.subject, p_data, false) from app_private.notification_types t where t.type = p_type
$$;
comment on function app.notification_title(text, jsonb) is 'A notification''s one-line title: its type''s email subject, filled from its data. Security definer: the templates are in app_private.notification_types, which no client role may read.';

create function app.notification_json(n app.notifications) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', n.id, 'seq', n.seq, 'type', n.type, 'title', app.notification_title(n.type, n.data),
    'data', n.data - 'throttle_key', 'read_at', n.read_at, 'created_at', n.created_at)
$$;
comment on function app.notification_json(app.notifications) is 'A notification as the app shows it: type, a one-line title (the email subject, filled in), its data, read_at.';

create function api.notification_list(p_unread text default null, p_page text default null,
                                       p_page_size text default null)
returns app.page
language plpgsql stable security invoker
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  if p_unread is not null and not (p_unread = any (array['true', 'false'])) then
    perform app.invalid('unread', 'Must be true or false.');
  end if;
  -- Row-level security: only the caller's own.
  select coalesce(max(x.total), 0), coalesce(json_agg(app.notification_json(x.n) order by (x.n).seq desc), '[]')
    into v_count, v_results
    from (select n, count(*) over () as total
            from app.notifications n
           where n.in_app and (p_unread is null or (n.read_at is null) = p_unread::boolean)
           order by n.seq desc
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.notification_list(text, text, text) is
  'GET /api/notifications/ — your in-app notifications, newest first; unread=true for the unread only. Paginated. Signed in.';

create function api.notification_since(p_after text default null) returns jsonb
language plpgsql stable security invoker
as $$
declare
  -- Parsed first: inside the query a bad value would go unnoticed when there are no rows.
  v_after bigint := coalesce(app.parse_int(p_after, 'Last-Event-ID', 0, 2147483647), 0);
begin
  -- seq is taken at insert, but transactions commit in any order: a notification with a
  -- smaller seq may become visible after a larger one was sent. So the last minute's
  -- notifications just before the cursor are read again; the stream drops what it sent.
  return (select coalesce(jsonb_agg(app.notification_json(n) order by n.seq), '[]')
            from (select * from app.notifications n
                   where n.in_app
                     and (n.seq > v_after
                          or (n.seq > v_after - 100 and n.created_at > now() - interval '1 minute'))
                   order by n.seq
                   limit 200) n);
end
$$;
comment on function api.notification_since(text) is
  'GET /api/notifications/stream — Server-Sent Events of your in-app notifications: on connect, those after Last-Event-ID (a seq), then each new one as it commits, with a heartbeat comment every 15 s. Delivery is at least once: the last minute''s notifications just before the cursor are read again (transactions commit out of seq order), so a reconnecting client may see an id twice and drops it. Signed in.';

create function api.notification_read(p_id text) returns jsonb
language plpgsql volatile security invoker
as $$
declare
  v_row app.notifications;
begin
  update app.notifications n set read_at = coalesce(n.read_at, now())
   where n.id = app.parse_uuid(p_id) and n.in_app
  returning * into v_row;
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
  return app.notification_json(v_row);
end
$$;
comment on function api.notification_read(text) is 'POST /api/notifications/{id}/read/ — mark one of your notifications read (again: no change). 404 for anyone else''s. Signed in.';

create function api.notification_read_all() returns jsonb
language sql volatile security invoker
as $$
  with marked as (
    update app.notifications n set read_at = now() where n.in_app and n.read_at is null returning 1)
  select jsonb_build_object('marked', (select count(*) from marked))
$$;
comment on function api.notification_read_all() is 'POST /api/notifications/read-all/ — mark all your notifications read; returns {"marked": n}. Signed in.';

create function api.notification_unread_count() returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object('unread', count(*)) from app.notifications n where n.in_app and n.read_at is null
$$;
comment on function api.notification_unread_count() is 'GET /api/notifications/unread-count/ — {"unread": n}. Signed in.';

-- ---------------------------------------------------------------------------------
-- Preferences
-- ---------------------------------------------------------------------------------

create function api.notification_preferences_get() returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('types', coalesce(jsonb_agg(jsonb_build_object(
           'type', t.type, 'description', t.description, 'mandatory', t.mandatory,
           'email', w.email, 'in_app', w.in_app) order by t.type), '[]'))
    from app_private.notification_types t
    cross join lateral app_private.notification_wanted(app.current_user_id(), t.type) w
$$;
comment on function api.notification_preferences_get() is
  'GET /api/users/me/notification-preferences/ — every notification type with what it is, whether it can be turned off, and whether you get it by email and in the app. Signed in. Security definer: the notification types are app_private.notification_types, which no client role may read.';

create function api.notification_preferences_set(p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_errors jsonb := '{}';
  v_type text;
  v_channels jsonb;
  v_channel text;
  v_mandatory boolean;
  v_prefs jsonb := '{}';
begin
  if jsonb_typeof(p_body) is distinct from 'object' then
    perform app.fail(400, 'The body must be an object of {"<type>": {"email": bool, "in_app": bool}}.');
  end if;
  for v_type, v_channels in select * from jsonb_each(p_body) loop
    select t.mandatory into v_mandatory from app_private.notification_types t where t.type = v_type;
    if not found then
      v_errors := app.add_error(v_errors, v_type, 'Unknown notification type.');
    elsif jsonb_typeof(v_channels) <> 'object' then
      v_errors := app.add_error(v_errors, v_type, 'Must be an object such as {"email": false, "in_app": true}.');
    else
      for v_channel in select jsonb_object_keys(v_channels) loop
        if v_channel not in ('email', 'in_app') then
          v_errors := app.add_error(v_errors, v_type, 'Channels are email and in_app.');
        elsif jsonb_typeof(v_channels -> v_channel) <> 'boolean' then
          v_errors := app.add_error(v_errors, v_type, format('%s must be true or false.', v_channel));
        elsif v_mandatory and not (v_channels ->> v_channel)::boolean then
          v_errors := app.add_error(v_errors, v_type, 'A security notice cannot be turned off.');
        end if;
      end loop;
      v_prefs := v_prefs || jsonb_build_object(v_type, v_channels);
    end if;
  end loop;
  perform app.raise_errors(v_errors);
  update app.users u
     set preferences = jsonb_set(u.preferences, '{notifications}',
                                 (select coalesce(u.preferences -> 'notifications', '{}') || jsonb_object_agg(
                                           k, coalesce(u.preferences #> array['notifications', k], '{}') || v)
                                    from jsonb_each(v_prefs) e(k, v)))
   where u.id = app.current_user_id() and v_prefs <> '{}';
  return api.notification_preferences_get();
end
$$;
comment on function api.notification_preferences_set(jsonb) is
  'PUT /api/users/me/notification-preferences/ {"<type>": {"email"?: bool, "in_app"?: bool}, ...} — change what you hear about, per type and channel (the types you leave out keep their setting); kept in your profile''s preferences under "notifications". 400 naming the type for an unknown type, channel or value, or for turning a security notice off. Returns every type as GET does. Signed in. Security definer: the notification types are app_private.notification_types, which no client role may read.';

-- ---------------------------------------------------------------------------------
-- Email delivery (the worker)
-- ---------------------------------------------------------------------------------

create function app_private.email_render(p_id uuid, p_frontend_url text) returns jsonb
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'id', n.id, 'state', n.email_state, 'attempts', n.email_attempts, 'to', u.email,
    'message_id', '<' || n.id || '.email@nexus>', 'from_name', (app_private.notification_config()).from_name,
    'subject', app_private.render(t.subject, v.values, false),
    'text', app_private.render(t.text_body, v.values, false),
    'html', app_private.render(t.html_body, v.values, true))
  from app.notifications n
  join app.users u on u.id = n.user_id
  join app_private.notification_types t on t.type = n.type
  cross join lateral (select n.data || jsonb_build_object('first_name', u.first_name,
                                                         'frontend_url', rtrim(p_frontend_url, '/')) as values) v
  where n.id = p_id
$$;
comment on function app_private.email_render(uuid, text) is
  'The email of a notification, rendered: to, a stable Message-ID, subject, text and HTML (values escaped) from its type''s templates, with the recipient''s first name and p_frontend_url; and its state and attempts. Owner only (the worker).';

create function app_private.email_sent(p_id uuid, p_outbox jsonb default null) returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  update app.notifications n
     set email_state = 'sent', email_sent_at = now(), email_attempts = n.email_attempts + 1, email_error = null
   where n.id = p_id and n.email_state in ('pending', 'dead');
  if not found then
    return 'unchanged';
  end if;
  if p_outbox is not null then
    insert into app_private.email_outbox (notification_id, message_id, to_address, subject, text_body, html_body)
    values (p_id, p_outbox ->> 'message_id', p_outbox ->> 'to', p_outbox ->> 'subject', p_outbox ->> 'text',
            p_outbox ->> 'html')
    on conflict (notification_id) do nothing;
  end if;
  return 'sent';
end
$$;
comment on function app_private.email_sent(uuid, jsonb) is
  'The relay accepted a notification''s email (or, with p_outbox, it was kept in app_private.email_outbox because no SMTP_HOST is set): email_state sent. Owner only (the worker).';

create function app_private.email_failed(p_id uuid, p_error text, p_final boolean default false) returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_row app.notifications;
begin
  update app.notifications n
     set email_attempts = n.email_attempts + 1, email_error = left(p_error, 1000),
         email_state = case when p_final or n.email_attempts + 1 >= (app_private.notification_config()).email_max_attempts
                            then 'dead' else 'pending' end::app.email_state
   where n.id = p_id and n.email_state = 'pending'
  returning * into v_row;
  return coalesce(v_row.email_state::text, 'unchanged');
end
$$;
comment on function app_private.email_failed(uuid, text, boolean) is
  'The relay refused a notification''s email or could not be reached: one more attempt counted; at notification_settings.email_max_attempts, or at once with p_final (an email that cannot be written), it is a dead letter (dead), else still pending (the worker retries with backoff). Returns the new state. Owner only (the worker).';

create function api.notification_dead(p_page text default null, p_page_size text default null) returns app.page
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  select coalesce(max(x.total), 0),
         coalesce(json_agg(jsonb_build_object('id', x.id, 'user_id', x.user_id, 'type', x.type,
                                              'email_attempts', x.email_attempts, 'email_error', x.email_error,
                                              'created_at', x.created_at) order by x.created_at desc, x.id), '[]')
    into v_count, v_results
    from (select n.*, count(*) over () as total
            from app.notifications n
           where n.email_state = 'dead'
           order by n.created_at desc, n.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.notification_dead(text, text) is
  'GET /api/admin/notifications/dead/ — emails the relay refused email_max_attempts times (dead letters), newest first: recipient id, type, attempts, the last error. Admins. Security definer: dead letters are every user''s notifications, and an admin''s policy on app.notifications shows only their own.';

create function api.notification_resend(p_id text) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_row app.notifications;
begin
  update app.notifications n set email_state = 'pending', email_attempts = 0, email_error = null
   where n.id = app.parse_uuid(p_id) and n.email_state = 'dead'
  returning * into v_row;
  if not found then
    perform app.fail(409, 'Only a dead letter can be resent.', 'email_state');
  end if;
  perform app_private.defer('notifications.send_email', jsonb_build_object('notification_id', v_row.id),
                            'notification:' || v_row.id);
  return jsonb_build_object('id', v_row.id, 'email_state', v_row.email_state);
end
$$;
comment on function api.notification_resend(text) is
  'POST /api/admin/notifications/{id}/resend/ — an admin sends a dead letter again (the relay is back): pending, attempts reset, a new job. 409 for anything but a dead letter. Admins. Security definer: it updates another user''s notification (an admin may update only read_at of their own) and defers the email job (app_private.defer).';

-- ---------------------------------------------------------------------------------
-- What makes notifications
-- ---------------------------------------------------------------------------------

create function app_private.booking_facts(b app.bookings) returns jsonb
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('booking_id', b.id, 'product_id', b.product_id,
                            'listing', (select p.name from app.products p where p.id = b.product_id),
                            'start_date', b.start_date, 'end_date', b.end_date,
                            'total', b.total_price::text, 'currency', b.currency)
$$;
comment on function app_private.booking_facts(app.bookings) is 'What every booking notification says: ids, the listing''s name, dates, total and currency.';

create function app.tg_bookings__notify() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_facts jsonb := app_private.booking_facts(new);
  v_user uuid;
begin
  if tg_op = 'INSERT' then
    perform app_private.notify(new.host_id, 'booking_requested', v_facts);
  elsif new.status = 'confirmed' then
    perform app_private.notify(new.guest_id, 'booking_confirmed', v_facts);
    perform app_private.notify(new.host_id, 'booking_confirmed', v_facts);
  elsif new.status = 'canceled' and new.canceled_by is null and new.cancel_reason = 'Hold expired.' then
    perform app_private.notify(new.guest_id, 'hold_expired', v_facts);
  elsif new.status = 'canceled' then
    -- The other party; both when someone else (an admin) canceled.
    foreach v_user in array array[new.guest_id, new.host_id] loop
      if v_user is distinct from new.canceled_by then
        perform app_private.notify(v_user, 'booking_canceled',
                                   v_facts || jsonb_build_object('refund', coalesce(new.refund_amount, 0)::text));
      end if;
    end loop;
  elsif new.status = 'completed' then
    perform app_private.notify(new.guest_id, 'stay_completed',
                               v_facts || jsonb_build_object('review_days', (app_private.review_config()).window_days));
  end if;
  return null;
end
$$;
comment on function app.tg_bookings__notify() is
  'Trigger: a new booking tells its host (booking_requested); confirmed tells both parties; canceled tells the other party (both when an admin canceled), with the refund; an expired hold tells the guest; a completed stay invites the guest to review it.';

create trigger bookings_notify_insert after insert on app.bookings
  for each row when (new.status = 'pending') execute function app.tg_bookings__notify();
create trigger bookings_notify after update of status on app.bookings
  for each row when (new.status is distinct from old.status) execute function app.tg_bookings__notify();

create function app.tg_money__notify() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  -- Statuses compared as text: the three tables have three status types.
  v_listing text := (select p.name from app.products p join app.bookings b on b.product_id = p.id
                      where b.id = new.booking_id);
  v_facts jsonb := jsonb_build_object('booking_id', new.booking_id, 'listing', v_listing,
                                      'amount', new.amount::text, 'currency', new.currency);
begin
  if tg_table_name = 'payments' then
    if new.status::text = 'succeeded' then
      perform app_private.notify(new.guest_id, 'payment_succeeded', v_facts || jsonb_build_object('payment_id', new.id));
    elsif new.status::text = 'failed' then
      perform app_private.notify(new.guest_id, 'payment_failed',
        v_facts || jsonb_build_object('payment_id', new.id, 'reason', coalesce(new.failure_reason, 'declined')));
    end if;
  elsif tg_table_name = 'refunds' and new.status::text = 'succeeded' then
    perform app_private.notify(new.guest_id, 'refund_succeeded', v_facts || jsonb_build_object('refund_id', new.id));
  elsif tg_table_name = 'payouts' and new.status::text = 'paid' then
    perform app_private.notify(new.host_id, 'payout_sent',
                               v_facts || jsonb_build_object('payout_id', new.id, 'fee', new.fee::text));
  elsif tg_table_name = 'payouts' and new.status::text = 'failed' then
    perform app_private.notify(new.host_id, 'payout_failed',
      v_facts || jsonb_build_object('payout_id', new.id, 'reason', coalesce(new.failure_reason, 'refused')));
  end if;
  return null;
end
$$;
comment on function app.tg_money__notify() is
  'Trigger on payments, refunds and payouts: a payment succeeded or failed tells the guest; a refund that succeeded tells the guest; a payout paid or failed tells the host (not one withheld in full: nothing was sent).';

create trigger payments_notify after update of status on app.payments
  for each row when (new.status in ('succeeded', 'failed') and new.status is distinct from old.status)
  execute function app.tg_money__notify();
create trigger refunds_notify after update of status on app.refunds
  for each row when (new.status = 'succeeded' and new.status is distinct from old.status)
  execute function app.tg_money__notify();
create trigger payouts_notify after update of status on app.payouts
  -- A payout withheld in full (what the host owed) is paid with nothing sent: nothing to tell.
  for each row when (new.status in ('paid', 'failed') and new.status is distinct from old.status and new.amount > 0)
  execute function app.tg_money__notify();

create function app.tg_reviews__notify() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_facts jsonb := jsonb_build_object('review_id', new.id, 'product_id', new.product_id,
                                      'listing', (select p.name from app.products p where p.id = new.product_id));
begin
  if tg_op = 'INSERT' then
    perform app_private.notify(new.host_id, 'new_review', v_facts || jsonb_build_object(
      'rating', new.rating, 'excerpt', left(new.comment, 300),
      'reviewer', (select u.first_name from app.users u where u.id = new.guest_id)));
  elsif new.response is not null and old.response is null then
    perform app_private.notify(new.guest_id, 'review_response', v_facts || jsonb_build_object('excerpt', left(new.response, 300)));
  end if;
  return null;
end
$$;
comment on function app.tg_reviews__notify() is 'Trigger: a new review tells the host; the host''s first response tells the reviewer (rewrites do not).';

create trigger reviews_notify after insert or update of response on app.reviews
  for each row execute function app.tg_reviews__notify();

create function app.tg_login_attempts__notify() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user app.users;
begin
  select * into v_user from app.users u where lower(u.email) = lower(new.email);
  -- A new address for an account that has signed in before (the first sign-in is not news).
  if found and new.client_addr is not null
     and exists (select from app_private.login_attempts a
                  where lower(a.email) = lower(new.email) and a.succeeded and a.id <> new.id)
     and not exists (select from app_private.login_attempts a
                      where lower(a.email) = lower(new.email) and a.succeeded and a.id <> new.id
                        and a.client_addr = new.client_addr and a.attempted_at > now() - interval '90 days') then
    perform app_private.notify(v_user.id, 'new_sign_in',
      jsonb_build_object('client_addr', host(new.client_addr), 'at', to_char(new.attempted_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')));
  end if;
  return null;
end
$$;
comment on function app.tg_login_attempts__notify() is
  'Trigger: a successful password sign-in from an address this account has not signed in from in 90 days (and not its first sign-in) sends the mandatory new_sign_in security notice.';

create trigger login_attempts_notify after insert on app_private.login_attempts
  for each row when (new.succeeded) execute function app.tg_login_attempts__notify();

create function app.tg_messages__notify() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  perform app_private.notify(new.recipient_id, 'new_message', jsonb_build_object(
      'conversation_id', new.conversation_id, 'message_id', new.id,
      'sender', (select u.first_name from app.users u where u.id = new.sender_id),
      'listing', (select p.name from app.conversations c join app.products p on p.id = c.product_id
                   where c.id = new.conversation_id),
      'excerpt', left(new.body, 300)),
    p_throttle_key => new.conversation_id::text);
  return null;
end
$$;
comment on function app.tg_messages__notify() is
  'Trigger: a new message tells its recipient, in the app always, by email at most once per conversation every notification_settings.message_email_minutes.';

create trigger messages_notify after insert on app.messages
  for each row execute function app.tg_messages__notify();

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_schema('Notification', 'An in-app notification (app.notification_json): its type, a one-line title and the data it is about.', '{
  "id": "uuid", "seq": "integer", "type": "string", "title": "string", "data": {"type": "object"},
  "read_at": "date-time?", "created_at": "date-time"}');
select app.api_schema('NotificationPreferences', 'Every notification type, whether it can be turned off, and the caller''s channels for it.', '{
  "types": {"type": "array", "items": {"type": "string", "description": "string", "mandatory": "boolean",
                                        "email": "boolean", "in_app": "boolean"}}}');
select app.api_operation('api.notification_list', response => '"Notification"',
  parameters => '{"unread": {"type": "string", "enum": ["true", "false"]}}');
select app.api_operation('api.notification_since', response => '"[Notification]"', errors => '{400}');
select app.api_operation('api.notification_read', response => '"Notification"');
select app.api_operation('api.notification_read_all', response => '{"marked": "integer"}');
select app.api_operation('api.notification_unread_count', response => '{"unread": "integer"}');
select app.api_operation('api.notification_preferences_get', response => '"NotificationPreferences"');
-- The types are rows of app_private.notification_types, which the owner cannot read while these
-- files run (forced row-level security, before sql/policies/99_owner.sql): they are named here,
-- and tests/api/test_contract.py holds the names and the mandatory ones to the table.
select app.api_schema('NotificationType', 'A notification type (GET /api/users/me/notification-preferences/ describes each).',
  '"booking_canceled|booking_confirmed|booking_requested|dispute_closed|dispute_opened|hold_expired|new_message|new_review|new_sign_in|payment_failed|payment_succeeded|payout_failed|payout_sent|reconciliation_differences|refund_succeeded|review_response|stay_completed"');
select app.api_operation('api.notification_preferences_set', response => '"NotificationPreferences"',
  body => '{"type": "object", "propertyNames": {"$ref": "#/components/schemas/NotificationType"},
            "description": "{\"<type>\": {\"email\": bool, \"in_app\": bool}} for the types to change; a security notice (new_sign_in) stays on.",
            "properties": {"new_sign_in": {"type": "object", "additionalProperties": false,
                                           "properties": {"email": {"const": true}, "in_app": {"const": true}}}},
            "additionalProperties": {"type": "object", "additionalProperties": false,
                                     "properties": {"email": {"type": "boolean"}, "in_app": {"type": "boolean"}}}}',
  example => '{"new_message": {"email": false, "in_app": true}}');
select app.api_operation('api.notification_dead', response => '{
  "id": "uuid", "user_id": "uuid", "type": "string", "email_attempts": "integer", "email_error": "string?",
  "created_at": "date-time"}');
select app.api_operation('api.notification_resend', response => '{"id": "uuid", "email_state": "skipped|pending|sent|dead"}', errors => '{409}');
