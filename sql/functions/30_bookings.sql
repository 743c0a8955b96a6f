/*
 * Bookings: book, confirm, cancel, list, read; availability and host blocks; the job.
 *
 * Guarantees (on top of the constraints in sql/schema/0004_bookings.sql):
 *   - a client never sets status, prices, guest or host: api.booking_create takes only
 *     product_id, dates and guests from the body and computes everything else here;
 *   - transitions are exactly pending -> confirmed -> completed and
 *     pending|confirmed -> canceled; a trigger refuses any other (409), even from psql;
 *   - app.calendar_entries mirrors the pending/confirmed bookings (trigger), so bookings
 *     and host blocks exclude each other under one GiST constraint;
 *   - a pending hold expires after booking_settings.hold_minutes: the job expires holds,
 *     and booking a listing (or reading its availability) treats stale holds as free;
 *   - a guest holds at most booking_settings.max_pending pending bookings (serialised per
 *     guest by a lock on the guest's app.users row, so concurrent requests cannot overshoot);
 *   - an Idempotency-Key makes a retried create return the first response; concurrent
 *     retries with one key are serialised by the same lock on the user's row;
 *   - writes that take dates on one listing (bookings, blocks) are serialised by a lock on
 *     the listing's app.products row, so contention ends in a fast 409, never a deadlock.
 *   Business serialisation takes row locks (FOR NO KEY UPDATE), never advisory locks: any role
 *   may take any advisory lock (an analyst once stalled bookings with one), while a row lock
 *   needs UPDATE on the table, which no client role has outside these functions' own checks.
 *   Order: the user's row before the listing's, everywhere.
 *
 * Times: check-in is start_date at booking_settings.check_in_time (default 15:00) UTC,
 * check-out is end_date at check_out_time (default 11:00) UTC; "today" is the UTC date.
 *
 * Access: reads (list, detail) are SECURITY INVOKER under the row-level policies in
 * sql/policies/30_bookings.sql. Writes are SECURITY DEFINER functions that check the caller
 * explicitly (the caller's role is current_setting('role'), which a definer function
 * does not change; the user is the verified JWT "sub"). No client role can write these
 * tables directly.
 *
 * From psql, as the owner:  select app.run_booking_jobs();
 */

-- ---------------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------------

create function app_private.booking_config() returns app_private.booking_settings
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select s from app_private.booking_settings s where s.id
$$;
comment on function app_private.booking_config() is
  'The booking settings row (app_private.booking_settings): hold_minutes, max_pending, max_nights, max_advance_days, check_in_time, check_out_time, idempotency_hours. Change them as the owner: update app_private.booking_settings set hold_minutes = 15;';

create function app.booking_check_in(p_start date) returns timestamptz
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select (p_start + s.check_in_time) at time zone 'UTC' from app_private.booking_settings s where s.id
$$;
comment on function app.booking_check_in(date) is
  'The check-in instant of a stay starting on p_start: that day at booking_settings.check_in_time (default 15:00) UTC. Cancellation deadlines count back from it. Security definer: the check-in time is in app_private.booking_settings, which no client role may read.';

create function app.booking_refund(
  p_policy app.cancellation_policy,
  p_total numeric,
  p_check_in timestamptz,
  p_by_host boolean default false,
  p_now timestamptz default now(),
  p_scale integer default 2
) returns numeric
language sql immutable security invoker
as $$
  select case
    when p_by_host then p_total
    when p_policy = 'flexible' then
      case when p_now <= p_check_in - interval '24 hours' then p_total else 0::numeric end
    when p_policy = 'moderate' then
      case when p_now <= p_check_in - interval '5 days' then p_total else round(p_total * 0.5, p_scale) end
    when p_policy = 'strict' then
      case when p_now <= p_check_in - interval '7 days' then round(p_total * 0.5, p_scale) else 0::numeric end
  end
$$;
comment on function app.booking_refund(app.cancellation_policy, numeric, timestamptz, boolean, timestamptz, integer) is
  'The refund for a cancellation at p_now of a stay checking in at p_check_in: flexible = full until 24 h before check-in, nothing after; moderate = full until 5 days before, 50% after; strict = 50% until 7 days before, nothing after ("until" includes the deadline instant). A cancellation by the host (or an admin on their behalf) refunds in full. Halves are rounded to p_scale decimals (the currency''s minor units).';

create function app.booking_json(b app.bookings) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', b.id,
    'product_id', b.product_id,
    'guest_id', b.guest_id,
    'host_id', b.host_id,
    'start_date', b.start_date,
    'end_date', b.end_date,
    'nights', b.nights,
    'guests', b.guests,
    'status', b.status,
    'price_per_night', b.price_per_night::text,
    'total_price', b.total_price::text,
    'currency', b.currency,
    'cancellation_policy', b.cancellation_policy,
    'expires_at', b.expires_at,
    'created_at', b.created_at,
    'updated_at', b.updated_at,
    'confirmed_at', b.confirmed_at,
    'completed_at', b.completed_at,
    'canceled_at', b.canceled_at,
    'canceled_by', b.canceled_by,
    'cancel_reason', b.cancel_reason,
    'refund_amount', b.refund_amount::text)
$$;
comment on function app.booking_json(app.bookings) is
  'A booking as the API returns it; money as decimal strings (total_price = price_per_night x nights, no fees).';

create function app_private.expire_holds(p_now timestamptz, p_product uuid default null, p_guest uuid default null)
returns integer
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_count integer;
begin
  with expired as (
    update app.bookings b
       set status = 'canceled',
           canceled_at = b.expires_at,
           expires_at = null,
           canceled_by = null,
           cancel_reason = 'Hold expired.',
           refund_amount = 0
     where b.status = 'pending'
       and b.expires_at <= p_now
       and (p_product is null or b.product_id = p_product)
       and (p_guest is null or b.guest_id = p_guest)
    returning 1)
  select count(*) into v_count from expired;
  return v_count;
end
$$;
comment on function app_private.expire_holds(timestamptz, uuid, uuid) is
  'Cancel pending bookings whose hold expired by p_now (optionally only one listing''s or one guest''s): status canceled, canceled_at = the expiry instant, canceled_by null, reason "Hold expired.", refund 0. Their dates become free. Returns how many.';

-- ---------------------------------------------------------------------------------
-- Triggers
-- ---------------------------------------------------------------------------------

create function app.tg_bookings__guard() returns trigger
language plpgsql security invoker
as $$
begin
  if new.status is distinct from old.status and not (
       (old.status = 'pending' and new.status in ('confirmed', 'canceled'))
    or (old.status = 'confirmed' and new.status in ('completed', 'canceled'))) then
    perform app.fail(409, format('A %s booking cannot become %s.', old.status, new.status), 'status');
  end if;
  if (new.product_id, new.guest_id, new.host_id, new.start_date, new.end_date, new.guests,
      new.price_per_night, new.total_price, new.currency, new.cancellation_policy, new.created_at)
     is distinct from
     (old.product_id, old.guest_id, old.host_id, old.start_date, old.end_date, old.guests,
      old.price_per_night, old.total_price, old.currency, old.cancellation_policy, old.created_at) then
    perform app.fail(409, 'A booking''s listing, guest, dates, guests and price never change; cancel it and book again.');
  end if;
  return new;
end
$$;
comment on function app.tg_bookings__guard() is
  'Trigger: allow only the transitions pending -> confirmed|canceled and confirmed -> completed|canceled (409 otherwise), and keep the booked facts (listing, parties, dates, guests, price) immutable.';

create trigger bookings_guard before update on app.bookings
  for each row execute function app.tg_bookings__guard();
create trigger bookings_set_updated_at before update on app.bookings
  for each row execute function app.tg__set_updated_at();

create function app.tg_bookings__sync_calendar() returns trigger
language plpgsql security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    if new.status in ('pending', 'confirmed') then
      insert into app.calendar_entries (product_id, stay, booking_id, created_by)
      values (new.product_id, daterange(new.start_date, new.end_date, '[)'), new.id, new.guest_id);
    end if;
  elsif old.status in ('pending', 'confirmed') and new.status not in ('pending', 'confirmed') then
    delete from app.calendar_entries where booking_id = new.id;
  end if;
  return null;
end
$$;
comment on function app.tg_bookings__sync_calendar() is
  'Trigger: a new pending/confirmed booking takes its dates in app.calendar_entries (an overlap fails with exclusion_violation); completing or canceling it frees them.';

create trigger bookings_sync_calendar after insert or update of status on app.bookings
  for each row execute function app.tg_bookings__sync_calendar();

-- ---------------------------------------------------------------------------------
-- Create
-- ---------------------------------------------------------------------------------

create function app_private.lock_user(p_user uuid) returns void
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
  select from app.users u where u.id = p_user for no key update
$$;
comment on function app_private.lock_user(uuid) is
  'Serialise one user''s writes that must not interleave (the pending-booking cap, Idempotency-Key retries, the message limit): a row lock on the user''s app.users row, held to the end of the transaction. A row lock, not an advisory lock: no client role can take it from psql. Profile updates of that user wait for it; reads never do. Take it before app_private.lock_listing.';

create function app_private.lock_listing(p_product uuid) returns void
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
  select from app.products p where p.id = p_product for no key update
$$;
comment on function app_private.lock_listing(uuid) is
  'Serialise the writes that take dates on one listing (bookings, host blocks): a row lock on the listing''s app.products row, held to the end of the transaction, so the exclusion constraint sees the winner committed and refuses the rest at once (409, never a deadlock). A row lock, not an advisory lock: no client role can take it from psql. A host''s edit of the listing waits for it; reads never do.';

create function app_private.idempotent_replay(p_user uuid, p_key text, p_endpoint text, p_body jsonb)
returns jsonb
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_prev app_private.idempotency_keys;
begin
  if p_key is null then
    return null;
  end if;
  if length(p_key) not between 1 and 255 then
    perform app.fail(400, 'The Idempotency-Key header must be 1 to 255 characters.', 'idempotency_key');
  end if;
  -- Held to the end of the transaction: a concurrent retry waits here, then finds the record.
  perform app_private.lock_user(p_user);
  select * into v_prev from app_private.idempotency_keys k where k.user_id = p_user and k.key = p_key;
  if found and (v_prev.endpoint <> p_endpoint
                or v_prev.request_hash <> sha256(convert_to(p_endpoint || ':' || p_body::text, 'UTF8'))) then
    perform app.fail(422, 'This Idempotency-Key was already used for a different request.', 'idempotency_key');
  end if;
  return v_prev.response;
end
$$;
comment on function app_private.idempotent_replay(uuid, text, text, jsonb) is
  'Idempotency-Key, first half: null when there is no key or it is new (the caller goes on, then calls app_private.idempotent_remember); the first response when this user already sent this key with this endpoint and body; 422 when the key was used for a different request; 400 for a key that is not 1-255 characters. Serialises concurrent retries of one key with a lock on the user''s row held to the end of the transaction (app_private.lock_user).';

create function app_private.idempotent_remember(p_user uuid, p_key text, p_endpoint text, p_body jsonb,
                                                p_response jsonb)
returns jsonb
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_key is not null then
    insert into app_private.idempotency_keys (user_id, key, endpoint, request_hash, response)
    values (p_user, p_key, p_endpoint, sha256(convert_to(p_endpoint || ':' || p_body::text, 'UTF8')), p_response);
  end if;
  return p_response;
end
$$;
comment on function app_private.idempotent_remember(uuid, text, text, jsonb, jsonb) is
  'Idempotency-Key, second half: record the response of a request made with a key (in the same transaction as its effect, so a key exists only if the effect committed); returns the response.';

create function api.booking_create(p_body jsonb, p_idempotency_key text default null) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_cfg app_private.booking_settings := app_private.booking_config();
  v_errors jsonb := '{}';
  v_product_id uuid;
  v_start date;
  v_end date;
  v_guests integer;
  v_product record;
  v_pending integer;
  v_booking app.bookings;
  v_result jsonb;
begin
  if v_uid is null then
    perform app.fail(401, 'Authentication required.');
  end if;
  if p_body is null or jsonb_typeof(p_body) <> 'object' then
    perform app.fail(400, 'The body must be a JSON object.');
  end if;

  -- A retry with the same key returns the first response; concurrent retries wait here.
  v_result := app_private.idempotent_replay(v_uid, p_idempotency_key, 'booking_create', p_body);
  if v_result is not null then
    return v_result;
  end if;

  -- Only these fields are read from the body; anything else (status, prices, guest_id) is ignored.
  -- Every problem with them is reported at once.
  v_errors := app.check_uuid(v_errors, p_body, 'product_id', p_required => true);
  v_errors := app.check_date(v_errors, p_body, 'start_date', p_required => true);
  v_errors := app.check_date(v_errors, p_body, 'end_date', p_required => true);
  v_errors := app.check_number(v_errors, p_body, 'guests', 1, 100);
  if not v_errors ? 'product_id' then
    v_product_id := (p_body ->> 'product_id')::uuid;
    select p.host_id, p.price_per_night, p.currency, p.max_guests, p.cancellation_policy, p.published
      into v_product
      from app.products p
     where p.id = v_product_id;
    if found and v_product.host_id = v_uid then
      perform app.fail(403, 'You cannot book your own listing.', 'product_id');
    end if;
    if not found or not v_product.published then
      v_product_id := null;  -- 404 naming it, once the rest of the body is valid
    end if;
  end if;
  if not (v_errors ? 'start_date' or v_errors ? 'end_date') then
    v_start := (p_body ->> 'start_date')::date;
    v_end := (p_body ->> 'end_date')::date;
    v_errors := app.check_stay(v_errors, v_start, v_end, v_cfg.max_nights, p_from_today => true,
                               p_max_advance_days => v_cfg.max_advance_days);
  end if;
  if not v_errors ? 'guests' then
    v_guests := coalesce(btrim(p_body ->> 'guests')::int, 1);
    if v_product_id is not null then  -- nested: SQL's and does not promise to skip an unassigned v_product
      if v_guests > v_product.max_guests then
        v_errors := app.add_error(v_errors, 'guests', format('This listing allows at most %s guests.', v_product.max_guests));
      end if;
    end if;
  end if;
  perform app.raise_errors(v_errors);
  if v_product_id is null then
    perform app.fail(404, 'No such listing.', 'product_id');
  end if;

  -- The pending cap, serialised per guest so concurrent requests cannot overshoot it.
  perform app_private.lock_user(v_uid);
  perform app_private.expire_holds(now(), null, v_uid);
  select count(*) into v_pending from app.bookings b where b.guest_id = v_uid and b.status = 'pending';
  if v_pending >= v_cfg.max_pending then
    perform app.fail(409, format(
      'You already have %s pending bookings (the most allowed); wait for a host to confirm one or cancel one, then book again.',
      v_pending));
  end if;

  -- One writer per listing at a time: concurrent overlapping inserts would otherwise wait on
  -- each other's uncommitted rows in the exclusion index (and deadlock). Under this lock the
  -- constraint sees the winner committed and refuses the rest at once. Stale holds on this
  -- listing no longer hold its dates.
  perform app_private.lock_listing(v_product_id);
  perform app_private.expire_holds(now(), v_product_id, null);

  begin
    insert into app.bookings (product_id, guest_id, host_id, start_date, end_date, guests, status,
                              price_per_night, total_price, currency, cancellation_policy, expires_at)
    values (v_product_id, v_uid, v_product.host_id, v_start, v_end, v_guests, 'pending',
            v_product.price_per_night, v_product.price_per_night * (v_end - v_start), v_product.currency,
            v_product.cancellation_policy, now() + make_interval(mins => v_cfg.hold_minutes))
    returning * into v_booking;
  exception when exclusion_violation then
    perform app.fail(409, 'Those dates are not available.', 'start_date');
  end;

  return app_private.idempotent_remember(v_uid, p_idempotency_key, 'booking_create', p_body,
                                         app.booking_json(v_booking));
end
$$;
comment on function api.booking_create(jsonb, text) is
  'POST /api/bookings/ {product_id, start_date, end_date, guests}: book a published listing for the stay [start_date, end_date) (end_date is the check-out day). Returns the booking with status "pending", which holds the dates for booking_settings.hold_minutes (default 30) until the host confirms. The database computes total_price = price_per_night x nights in the listing''s currency; status, prices and guest_id in the body are ignored. 400 naming the field: bad or past start_date, end_date not after start_date, more than max_nights nights, more guests than the listing allows. 404 naming product_id: an unknown or unpublished listing. 403: your own listing. 409: dates taken, or already max_pending (default 3) pending bookings. Idempotency-Key header: a retry with the same key and body returns the first response and books nothing; the same key with a different body is 422. Security definer: no client role may insert into app.bookings; it locks the listing and the guest and keeps idempotency records in app_private.';

-- ---------------------------------------------------------------------------------
-- Read
-- ---------------------------------------------------------------------------------

create function api.booking_get(p_id text) returns jsonb
language sql stable security invoker
as $$
  select app.booking_json(b) from app.bookings b where b.id = app.parse_uuid(p_id)
$$;
comment on function api.booking_get(text) is
  'GET /api/bookings/{id}/: one booking, for its guest, the listing''s host and admins; anyone else gets 404 (existence is not revealed).';

create function api.booking_list(
  p_as text default null,
  p_status text default null,
  p_product text default null,
  p_from text default null,
  p_to text default null,
  p_page text default null,
  p_page_size text default null,
  p_guest text default null,
  p_host text default null
) returns app.page
language plpgsql stable security invoker
as $$
declare
  v_uid uuid := app.current_user_id();
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_product uuid := app.parse_uuid(p_product, 'product', 400);
  v_from date := app.parse_date(p_from, 'from');
  v_to date := app.parse_date(p_to, 'to');
  v_guest uuid := app.parse_uuid(p_guest, 'guest', 400);
  v_host uuid := app.parse_uuid(p_host, 'host', 400);
  v_count bigint;
  v_results json;
begin
  if p_as is not null and p_as not in ('guest', 'host') then
    perform app.invalid('as', 'Must be guest or host.');
  end if;
  if p_status is not null and not (p_status = any (enum_range(null::app.booking_status)::text[])) then
    perform app.invalid('status', 'Must be one of pending, confirmed, completed, canceled.');
  end if;
  perform app.raise_errors(app.check_stay('{}', v_from, v_to, p_from_today => false,
                                          p_start_field => 'from', p_end_field => 'to'));

  -- Row-level security already limits what the caller sees; these pick the view.
  select coalesce(max(x.total), 0),
         coalesce(json_agg(app.booking_json(x.b) order by (x.b).created_at desc, (x.b).id), '[]')
    into v_count, v_results
    from (select b, count(*) over () as total
            from app.bookings b
           where case
                   when p_as = 'host' then b.host_id = v_uid
                   when p_as = 'guest' then b.guest_id = v_uid
                   when app.is_admin() then true  -- why: which rows (all) an admin lists: no grant can say it
                   else b.guest_id = v_uid
                 end
             and (p_status is null or b.status = p_status::app.booking_status)
             and (v_product is null or b.product_id = v_product)
             and (v_guest is null or b.guest_id = v_guest)
             and (v_host is null or b.host_id = v_host)
             and (v_from is null or b.end_date > v_from)
             and (v_to is null or b.start_date < v_to)
           order by b.created_at desc, b.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.booking_list(text, text, text, text, text, text, text, text, text) is
  'GET /api/bookings/: your bookings as a guest, newest first; ?as=host: bookings of your listings; an admin without ?as sees all. Filters: status (pending, confirmed, completed, canceled), product (listing id), guest and host (user ids, within what you may see), from/to (stays overlapping [from, to), YYYY-MM-DD). Paginated: page (from 1), page_size (1-100, default 20); a page past the end is 404.';

-- ---------------------------------------------------------------------------------
-- Transitions
-- ---------------------------------------------------------------------------------

create function app.booking_for_party(p_id text) returns app.bookings
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_booking app.bookings;
begin
  select * into v_booking from app.bookings b where b.id = app.parse_uuid(p_id) for update;
  -- why: "a party of the booking or an admin" is about the row, which no grant can say.
  if not found or v_uid is null
     or not (v_booking.guest_id = v_uid or v_booking.host_id = v_uid or app.is_admin()) then
    perform app.fail(404, 'Not found.');
  end if;
  return v_booking;
end
$$;
comment on function app.booking_for_party(text) is
  'The booking a path names, locked for update, when the caller is one of its parties (its guest, the listing''s host) or an admin; a 404 for anyone else, so existence is not revealed. Executable by the owner only: it runs inside the SECURITY DEFINER transitions, which write bookings no client role may write directly.';

create function api.booking_confirm(p_id text) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_admin boolean := app.is_admin();  -- why: "the host or an admin" is about the row: no grant can say it
  v_booking app.bookings := app.booking_for_party(p_id);
begin
  if not (v_booking.host_id = v_uid or v_admin) then
    perform app.fail(403, 'Only the listing''s host can confirm a booking.');
  end if;
  if v_booking.status <> 'pending' then
    perform app.fail(409, format('A %s booking cannot be confirmed.', v_booking.status), 'status');
  end if;
  if v_booking.expires_at <= now() then
    perform app.fail(409, 'This hold has expired; the guest must book again.', 'status');
  end if;
  update app.bookings b
     set status = 'confirmed', confirmed_at = now(), expires_at = null
   where b.id = v_booking.id
  returning * into v_booking;
  return app.booking_json(v_booking);
end
$$;
comment on function api.booking_confirm(text) is
  'POST /api/bookings/{id}/confirm/: the listing''s host (or an admin) confirms a pending booking whose hold has not expired. 409 for any other status or an expired hold; 403 for the guest; 404 for anyone else. Security definer: no client role may update app.bookings; it finds the booking through app.booking_for_party (owner only).';

create function api.booking_cancel(p_id text, p_body jsonb default null) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_admin boolean := app.is_admin();  -- why: who cancels (guest, host, admin) sets the terms: no grant can say it
  v_reason text;
  v_booking app.bookings;
  v_by_host boolean;
  v_scale integer;
  v_refund numeric;
begin
  perform app.raise_errors(app.check_text('{}', p_body, 'reason', 0, 1000, p_nullable => true));
  v_reason := nullif(btrim(p_body ->> 'reason'), '');
  v_booking := app.booking_for_party(p_id);
  if v_booking.status not in ('pending', 'confirmed') then
    perform app.fail(409, format('A %s booking cannot be canceled.', v_booking.status), 'status');
  end if;

  if now() >= (v_booking.end_date + (app_private.booking_config()).check_out_time) at time zone 'UTC' then
    perform app.fail(409, 'This stay is over; it can no longer be canceled.', 'status');
  end if;

  -- The host, or an admin acting for anyone but themselves as guest, refunds in full.
  v_by_host := v_booking.host_id = v_uid or (v_admin and v_booking.guest_id <> v_uid);
  select c.minor_units into v_scale from app.currencies c where c.code = v_booking.currency;
  v_refund := app.booking_refund(v_booking.cancellation_policy, v_booking.total_price,
                                 app.booking_check_in(v_booking.start_date), v_by_host, now(),
                                 coalesce(v_scale, 2));
  update app.bookings b
     set status = 'canceled', canceled_at = now(), canceled_by = v_uid, cancel_reason = v_reason,
         refund_amount = v_refund, expires_at = null
   where b.id = v_booking.id
  returning * into v_booking;
  return app.booking_json(v_booking);
end
$$;
comment on function api.booking_cancel(text, jsonb) is
  'POST /api/bookings/{id}/cancel/ {reason?}: the guest, the listing''s host or an admin cancels a pending or confirmed booking; its dates become free. refund_amount follows the cancellation policy the booking was made under (see app.booking_refund; check-in is start_date at check_in_time UTC); a host or admin cancellation refunds in full. For a pending (unpaid) booking refund_amount is still the policy amount of total_price: payments refund at most what was paid. Records canceled_at, canceled_by and cancel_reason. 409 for a completed or canceled booking, or once check-out has passed; 404 for anyone but the parties. Security definer: no client role may update app.bookings; it finds the booking through app.booking_for_party (owner only) and reads app_private.booking_settings.';

-- ---------------------------------------------------------------------------------
-- Availability and host blocks
-- ---------------------------------------------------------------------------------

create function api.product_availability(p_id text, p_from text default null, p_to text default null) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
  v_owner boolean := app.product_access(v_id);
  v_from date;
  v_to date;
begin
  v_from := coalesce(app.parse_date(p_from, 'from'), (now() at time zone 'UTC')::date);
  v_to := coalesce(app.parse_date(p_to, 'to'), v_from + 365);
  perform app.raise_errors(app.check_stay('{}', v_from, v_to, 731, p_from_today => false,
                                          p_start_field => 'from', p_end_field => 'to'));
  return jsonb_build_object(
    'product_id', v_id,
    'from', v_from,
    'to', v_to,
    'unavailable', coalesce((
      select jsonb_agg(
               case when v_owner then jsonb_build_object(
                      'start_date', lower(c.stay), 'end_date', upper(c.stay),
                      'kind', case when c.booking_id is null then 'blocked' else 'booked' end,
                      'block_id', case when c.booking_id is null then c.id end,
                      'booking_id', c.booking_id,
                      'feed_id', c.feed_id,
                      'reason', c.reason)
                    else jsonb_build_object('start_date', lower(c.stay), 'end_date', upper(c.stay))
               end order by lower(c.stay))
        from app.calendar_entries c
       where c.product_id = v_id
         and c.stay && daterange(v_from, v_to, '[)')
         and not exists (select from app.bookings b
                          where b.id = c.booking_id and b.status = 'pending' and b.expires_at <= now())),
      '[]'::jsonb));
end
$$;
comment on function api.product_availability(text, text, text) is
  'GET /api/products/{id}/availability/?from=&to=: the taken ranges [start_date, end_date) overlapping the window [from, to) (default: today and the next 365 days; at most 731 days). Anyone may ask about a published listing; an unpublished one is 404 except to its host and admins, who also see each range''s kind (booked or blocked), block_id, booking_id, feed_id (the external calendar it was imported from, sql/functions/32_calendar_sync.sql) and reason. Expired holds are not shown. Security definer: client roles may read only product_id and stay of app.calendar_entries; the listing''s host and admins also get each entry''s kind, block, booking, feed and reason, and expired holds are left out by reading other users'' bookings.';

create function api.product_block_dates(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_id uuid := app.parse_uuid(p_id);
  v_errors jsonb := '{}';
  v_start date;
  v_end date;
  v_reason text;
  v_entry app.calendar_entries;
begin
  perform app.product_owned(v_id);
  if p_body is null or jsonb_typeof(p_body) <> 'object' then
    perform app.fail(400, 'The body must be a JSON object.');
  end if;
  v_errors := app.check_date(v_errors, p_body, 'start_date', p_required => true);
  v_errors := app.check_date(v_errors, p_body, 'end_date', p_required => true);
  v_errors := app.check_text(v_errors, p_body, 'reason', 0, 500, p_nullable => true);
  if not (v_errors ? 'start_date' or v_errors ? 'end_date') then
    v_start := (p_body ->> 'start_date')::date;
    v_end := (p_body ->> 'end_date')::date;
    v_errors := app.check_stay(v_errors, v_start, v_end, 731, p_from_today => true);
  end if;
  perform app.raise_errors(v_errors);
  v_reason := nullif(btrim(p_body ->> 'reason'), '');

  perform app_private.lock_listing(v_id);
  perform app_private.expire_holds(now(), v_id, null);
  begin
    insert into app.calendar_entries (product_id, stay, reason, created_by)
    values (v_id, daterange(v_start, v_end, '[)'), v_reason, v_uid)
    returning * into v_entry;
  exception when exclusion_violation then
    perform app.fail(409, 'Those dates overlap a booking or another block.', 'start_date');
  end;
  return jsonb_build_object(
    'id', v_entry.id, 'product_id', v_entry.product_id,
    'start_date', lower(v_entry.stay), 'end_date', upper(v_entry.stay),
    'reason', v_entry.reason, 'created_by', v_entry.created_by, 'created_at', v_entry.created_at);
end
$$;
comment on function api.product_block_dates(text, jsonb) is
  'POST /api/products/{id}/blocked-dates/ {start_date, end_date, reason?}: the listing''s host (or an admin) takes [start_date, end_date) off the calendar (maintenance, own use). 409 if it overlaps a booking or another block. Returns the block; its id deletes it. Security definer: no client role may insert into app.calendar_entries; it locks the listing and expires stale holds in app_private.';

create function api.product_unblock_dates(p_id text, p_block_id text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_admin boolean := app.is_admin();  -- why: "the host or an admin" is about the row: no grant can say it
begin
  delete from app.calendar_entries c
   using app.products p
   where c.id = app.parse_uuid(p_block_id)
     and c.product_id = app.parse_uuid(p_id)
     and c.booking_id is null
     and c.feed_id is null
     and p.id = c.product_id
     and (p.host_id = v_uid or v_admin);
  if not found then
    if exists (select from app.calendar_entries c join app.products p on p.id = c.product_id
                where c.id = app.parse_uuid(p_block_id) and c.product_id = app.parse_uuid(p_id)
                  and c.feed_id is not null and (p.host_id = v_uid or v_admin)) then
      perform app.fail(409, 'These dates come from an external calendar: free them there, or stop importing it (DELETE /api/products/{id}/calendar-feeds/{feed_id}/).', 'block_id');
    end if;
    perform app.fail(404, 'Not found.');
  end if;
end
$$;
comment on function api.product_unblock_dates(text, text) is
  'DELETE /api/products/{id}/blocked-dates/{block_id}/: the listing''s host (or an admin) removes a block; 404 for anyone else or an unknown block. Bookings are freed by canceling them, never here; a block imported from an external calendar is a 409 (the next import would bring it back: free it there, or delete the feed). Security definer: no client role may delete from app.calendar_entries.';

-- ---------------------------------------------------------------------------------
-- The scheduled job
-- ---------------------------------------------------------------------------------

create function app.run_booking_jobs(p_now timestamptz default now()) returns jsonb
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_cfg app_private.booking_settings := app_private.booking_config();
  v_expired integer;
  v_completed integer;
  v_kept integer;
  v_purged integer;
begin
  v_expired := app_private.expire_holds(p_now);
  with done as (
    update app.bookings b
       set status = 'completed', completed_at = p_now
     where b.status = 'confirmed'
       and b.end_date <= ((p_now at time zone 'UTC') - v_cfg.check_out_time::interval)::date
    returning 1)
  select count(*) into v_completed from done;
  -- Money kept on a cancellation is paid to the host once the stay would have ended (a month's
  -- window: the job runs every minute; app_private.payout_open opens each payout once).
  select count(*) filter (where app_private.payout_open(b.id) like 'payout %') into v_kept
    from app.bookings b
   where b.status = 'canceled'
     and b.end_date <= ((p_now at time zone 'UTC') - v_cfg.check_out_time::interval)::date
     and b.end_date > ((p_now at time zone 'UTC') - v_cfg.check_out_time::interval)::date - 30
     and not exists (select from app.payouts o where o.booking_id = b.id)
     and exists (select from app.payments p where p.booking_id = b.id and p.status in ('succeeded', 'partially_refunded'));
  with gone as (
    delete from app_private.idempotency_keys k
     where k.created_at < p_now - make_interval(hours => v_cfg.idempotency_hours)
    returning 1)
  select count(*) into v_purged from gone;
  perform app_private.rate_buckets_purge();
  return jsonb_build_object('expired', v_expired, 'completed', v_completed, 'kept_paid_out', v_kept,
                            'purged_keys', v_purged);
end
$$;
comment on function app.run_booking_jobs(timestamptz) is
  'The booking job (the worker, api/worker.py, runs it every minute; a DBA may run it from psql as the owner): expire pending holds past expires_at (freeing their dates), complete confirmed stays once check-out (end_date at check_out_time UTC) has passed (which opens their payouts), open the payout of money kept on a cancellation once the stay''s would-be check-out has passed (within 30 days of it), and purge Idempotency-Key records older than idempotency_hours. p_now lets tests move the clock. Returns {"expired": n, "completed": n, "kept_paid_out": n, "purged_keys": n}.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_schema('Booking', 'A booking (app.booking_json): the stay, its price as booked, and where it is in its life.', '{
  "id": "uuid", "product_id": "uuid", "guest_id": "uuid", "host_id": "uuid", "start_date": "date", "end_date": "date",
  "nights": "integer", "guests": "integer", "status": "pending|confirmed|completed|canceled",
  "price_per_night": "decimal", "total_price": "decimal", "currency": "string",
  "cancellation_policy": "flexible|moderate|strict", "expires_at": "date-time?", "created_at": "date-time",
  "updated_at": "date-time", "confirmed_at": "date-time?", "completed_at": "date-time?", "canceled_at": "date-time?",
  "canceled_by": "uuid?", "cancel_reason": "string?", "refund_amount": "decimal?"}');
select app.api_schema('Availability', 'The taken ranges [start_date, end_date) of a listing in a window; its host and admins also see what each is.', '{
  "product_id": "uuid", "from": "date", "to": "date",
  "unavailable": {"type": "array", "items": {"start_date": "date", "end_date": "date",
    "kind?": "booked|blocked", "block_id?": "uuid?", "booking_id?": "uuid?", "feed_id?": "uuid?", "reason?": "string?"}}}');
select app.api_schema('DateBlock', 'Dates a host took off the calendar.', '{
  "id": "uuid", "product_id": "uuid", "start_date": "date", "end_date": "date", "reason": "string?",
  "created_by": "uuid", "created_at": "date-time"}');
select app.api_operation('api.booking_create', response => '"Booking"', errors => '{404, 409, 422}',
  body => '{"product_id": "uuid", "start_date": "date", "end_date": "date", "guests?": "integer(1..100)"}',
  example => '{"product_id": "5f0c7a52-1a43-4f0e-9a55-2d9b1b7f7e01", "start_date": "2027-03-01", "end_date": "2027-03-05", "guests": 2}');
select app.api_operation('api.booking_get', response => '"Booking"');
select app.api_operation('api.booking_list', response => '"Booking"', parameters => '{
  "as": "guest|host", "status": "pending|confirmed|completed|canceled", "product": "uuid",
  "guest": "uuid", "host": "uuid", "from": "date",
  "to": {"type": "string", "format": "date", "description": "A date after from (400 otherwise)."}}');
select app.api_operation('api.booking_confirm', response => '"Booking"', errors => '{409}');
select app.api_operation('api.booking_cancel', response => '"Booking"', errors => '{409}', body => '{"reason?": "string(0..1000)?"}');
select app.api_operation('api.product_availability', response => '"Availability"', parameters => '{"from": "date", "to": "date"}');
select app.api_operation('api.product_block_dates', response => '"DateBlock"', errors => '{409}',
  body => '{"start_date": "date", "end_date": "date", "reason?": "string(0..500)?"}');
select app.api_operation('api.product_unblock_dates', parameters => '{"block_id": "uuid"}', errors => '{409}');
