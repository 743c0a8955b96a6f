/*
 * Calendar sync: a listing's iCal export, the external calendars it imports, and the import itself.
 *
 * Why: a host lists the same flat on several platforms; each platform publishes a listing's taken
 * dates as an iCalendar URL and reads the others' (sql/schema/0029_calendar_sync.sql). What is
 * decided here, in one place:
 *   - export: api.calendar_export answers the secret URL with the listing's booked (pending and
 *     confirmed, expired holds left out) and blocked dates (the host's own and imported ones)
 *     that have not ended, as JSON that api/calendars.py writes as RFC 5545 all-day events. No
 *     guest data, no reasons: each event is "booked" or "blocked", with a hash of its entry's id as
 *     a stable UID. The host (or an admin) reads the URL and rotates it; an unknown token is a 404.
 *   - import: the host adds feeds (https URLs, at most calendar_settings.max_feeds_per_listing),
 *     lists them with the last fetch's outcome, deletes them (their blocks go with them). Adding
 *     one defers its first fetch in the same transaction; app_private.calendar_schedule, every
 *     minute, defers the fetch of each feed that is due. The worker fetches and parses
 *     (api/calendars.py: conditional GET, timeouts, size limit, no private addresses) and hands
 *     the outcome to app_private.calendar_feed_apply, which decides what blocks what.
 *
 * The rules of an import (app_private.calendar_feed_apply), each event by its own dates:
 *   - the nights an event takes are [its start day, its end day), at least the start day's night
 *     (a same-day event, or an all-day one whose DTEND equals its DTSTART, takes that night: a
 *     calendar saying the day is busy is not read as free);
 *   - no DTEND and no DURATION: an all-day (DATE) event is one day, as RFC 5545 (3.6.1) says; a
 *     DATE-TIME one ends when it starts (RFC 5545 again), takes no night and is skipped (no_end);
 *   - skipped and counted by reason: past (ended before today), no_end, invalid (unreadable
 *     dates, or an end before the start), out_of_range (starts past the booking horizon,
 *     booking_settings.max_advance_days), recurring (RRULE/RDATE: not expanded), cancelled
 *     (STATUS:CANCELLED or TRANSP:TRANSPARENT: not busy); an event under way (begun before today)
 *     or one that reaches past the horizon is taken whole, so its range, and its row, stay the
 *     same from one day to the next;
 *   - an event that overlaps a booking or another block here (a host block, another feed) takes
 *     only its nights that are still free, and is listed in the feed's overlapping list. A booking is a
 *     promise to a guest and is never undone by a feed; and most such events are the other
 *     platform's copy of our own booking, read back from our export. Skipping the whole event
 *     instead would leave nights the other platform sold open here: the double booking this
 *     exists to prevent;
 *   - the feed's blocks become exactly the union of its events' free nights: ranges that did not
 *     change are kept (same rows, same UIDs in our export, no cache invalidation), removed
 *     events unblock, new ones block. The union of its events' nights is kept (calendar_feeds.
 *     wanted), so every fetch, a 304 too, also blocks what of it has become free since (a
 *     booking canceled, a host's block deleted): within fetch_interval_minutes. A fetch that fails (not iCal, too large, no answer, a
 *     refused address) changes no block: the feed records the error, which its host sees.
 *   All under the listing's lock (app_private.lock_listing), as every write that takes dates.
 *
 * Access: feeds and export tokens are in app_private (a feed's URL carries the other platform's
 * secret), so every api function here is SECURITY DEFINER and checks the caller explicitly
 * (app.product_owned: the listing's host or an admin); the export by token is for anyone who
 * holds the token.
 */

-- ---------------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------------

create function app_private.calendar_config() returns app_private.calendar_settings
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select s from app_private.calendar_settings s where s.id
$$;
comment on function app_private.calendar_config() is
  'The calendar sync settings row (app_private.calendar_settings): max_feeds_per_listing, fetch_interval_minutes, https_only. Change them as the owner: update app_private.calendar_settings set fetch_interval_minutes = 30;';

create function app.tg_products__calendar_export() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  insert into app_private.calendar_exports (product_id) values (new.id);
  return null;
end
$$;
comment on function app.tg_products__calendar_export() is
  'Trigger: a new listing gets its secret iCal export token (app_private.calendar_exports). Security definer: a host creates listings as itself, and no client role may write app_private.';

create trigger products_calendar_export after insert on app.products
  for each row execute function app.tg_products__calendar_export();

create function app_private.calendar_export_json(e app_private.calendar_exports, p_public_url text) returns jsonb
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'product_id', e.product_id,
    'url', coalesce(p_public_url, '') || '/api/calendars/' || e.token || '.ics',
    'created_at', e.created_at)
$$;
comment on function app_private.calendar_export_json(app_private.calendar_exports, text) is
  'A listing''s export URL as its host sees it: the API''s public address (PUBLIC_URL, passed by the API) and /api/calendars/<token>.ics, and when the token was made.';

create function app_private.calendar_feed_json(f app_private.calendar_feeds) returns jsonb
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'id', f.id,
    'product_id', f.product_id,
    'name', f.name,
    'url', f.url,
    'created_at', f.created_at,
    'status', case when f.last_attempt_at is null then 'pending' when f.last_error is not null then 'error' else 'ok' end,
    'last_attempt_at', f.last_attempt_at,
    'last_success_at', f.last_success_at,
    'last_changed_at', f.last_changed_at,
    'next_fetch_at', f.next_fetch_at,
    'last_error', f.last_error,
    'events_imported', f.events_imported,
    'events_skipped', f.events_skipped,
    'skipped', f.skipped,
    'overlapping', f.overlapping)
$$;
comment on function app_private.calendar_feed_json(app_private.calendar_feeds) is
  'An external calendar as its host sees it: its URL and name, status (pending until first fetched, ok, or error with last_error), when it was last tried, succeeded and changed, when it is fetched next, and what the last imported body gave: events_imported, events_skipped, skipped {reason: count}, overlapping [{start_date, end_date, with}].';

create function app_private.calendar_feed_url(p_url text, p_https_only boolean) returns text
language plpgsql immutable security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_url text;
  v_parts text[];
begin
  if p_url ~ '^(https?|webcal)://[^/?#]*@' then
    perform app.invalid('url', 'Must not contain a user name or password.');
  end if;
  if p_url !~ '^(https?|webcal)://' or (p_https_only and p_url ~ '^http://') then
    perform app.invalid('url', case when p_https_only then 'Must be an https:// (or webcal://) URL.'
                                    else 'Must be an http://, https:// or webcal:// URL.' end);
  end if;
  -- The pattern of the body's url in the contract below: what it calls invalid, this refuses.
  if p_url !~ '^(https?|webcal)://[A-Za-z0-9._~%!$&()*+,;=:\[\]-]+([/?#][!-~]*)?$' then
    perform app.invalid('url', 'Must be a URL of printable ASCII characters (punycode for an international name), without spaces.');
  end if;
  -- webcal:// is how calendar apps name an http(s) calendar; the platforms serve it over https.
  v_url := regexp_replace(p_url, '^webcal://', 'https://');
  v_parts := regexp_match(v_url, '^https?://([^/?#]*)');
  v_parts := regexp_match(v_parts[1], '^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(:([0-9]{1,5}))?$');
  if v_parts is null or (v_parts[3] is not null and v_parts[3]::int not between 1 and 65535) then
    perform app.invalid('url', 'Must name a host (and a port from 1 to 65535, if any).');
  end if;
  return v_url;
end
$$;
comment on function app_private.calendar_feed_url(text, boolean) is
  'A feed URL as stored, or a 400 naming url: https:// only when p_https_only (else http:// too), webcal:// read as https://, printable ASCII without spaces, a host (a name or a bracketed IPv6 address) with an optional port 1-65535, no user name or password. Whether the host is a public address is decided when it is fetched (api/calendars.py), on the address actually connected to.';

-- ---------------------------------------------------------------------------------
-- Export
-- ---------------------------------------------------------------------------------

create function api.calendar_export(p_token text) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_product app.products;
  v_today date := (now() at time zone 'UTC')::date;
begin
  select p.* into v_product
    from app_private.calendar_exports e join app.products p on p.id = e.product_id
   where p_token ~ '^[A-Za-z0-9_-]{32}$' and e.token = p_token;
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
  return jsonb_build_object(
    'product_id', v_product.id,
    'name', v_product.name,
    'events', coalesce((
      select jsonb_agg(jsonb_build_object(
               -- Stable while the entry lives, and opaque: no id of ours reaches another platform.
               'uid', left(encode(sha256(convert_to('calendar-entry:' || c.id::text, 'UTF8')), 'hex'), 32) || '@nexus',
               'start_date', lower(c.stay),
               'end_date', upper(c.stay),
               'kind', case when c.booking_id is null then 'blocked' else 'booked' end,
               'stamp', c.created_at)
             order by lower(c.stay))
        from app.calendar_entries c
       where c.product_id = v_product.id
         and upper(c.stay) > v_today
         and not exists (select from app.bookings b
                          where b.id = c.booking_id and b.status = 'pending' and b.expires_at <= now())),
      '[]'::jsonb));
end
$$;
comment on function api.calendar_export(text) is
  'GET /api/calendars/{token}.ics: a listing''s taken dates for other platforms to import, as iCalendar (RFC 5545; api/calendars.py writes it from this JSON): one all-day event per booking (pending or confirmed, "Booked") and per block (the host''s own or imported, "Blocked") that has not ended, with a stable, opaque UID (a hash of the calendar entry''s id) and nothing about the guest or the reason. Anyone holding the secret token (the listing''s host reads it, api.product_ical_export), published listing or not (its bookings still hold); an unknown or rotated token is a 404. Security definer: the token is in app_private and client roles may read only product_id and stay of app.calendar_entries; this also reads which entry is a booking and leaves out expired holds.';

create function api.product_ical_export(p_id text, p_public_url text default null) returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
begin
  perform app.product_owned(v_id);
  return (select app_private.calendar_export_json(e, p_public_url) from app_private.calendar_exports e
           where e.product_id = v_id);
end
$$;
comment on function api.product_ical_export(text, text) is
  'GET /api/products/{id}/ical-export/: the listing''s secret iCal export URL, to paste into another platform''s calendar import (Airbnb, Booking.com, VRBO). Its host or an admin (403 for other hosts). Anyone holding the URL reads the listing''s booked and blocked dates, nothing else; rotate it if it leaked. Security definer: the token is in app_private.';

create function api.product_ical_export_rotate(p_id text, p_public_url text default null) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
  v_export app_private.calendar_exports;
begin
  perform app.product_owned(v_id);
  update app_private.calendar_exports e
     set token = default, created_at = now()
   where e.product_id = v_id
  returning * into v_export;
  return app_private.calendar_export_json(v_export, p_public_url);
end
$$;
comment on function api.product_ical_export_rotate(text, text) is
  'POST /api/products/{id}/ical-export/rotate/: a new secret export URL for the listing; the old one answers 404 from now on (give the new one to the platforms that read the old). Its host or an admin. Security definer: the token is in app_private.';

-- ---------------------------------------------------------------------------------
-- Feeds: what the host adds, sees and deletes
-- ---------------------------------------------------------------------------------

create function api.calendar_feed_list(p_id text, p_page text default null, p_page_size text default null)
returns app.page
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  perform app.product_owned(v_id);
  select coalesce(max(x.total), 0),
         coalesce(json_agg(app_private.calendar_feed_json(x.f) order by (x.f).created_at, (x.f).id), '[]')
    into v_count, v_results
    from (select f, count(*) over () as total
            from app_private.calendar_feeds f
           where f.product_id = v_id
           order by f.created_at, f.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.calendar_feed_list(text, text, text) is
  'GET /api/products/{id}/calendar-feeds/: the external calendars the listing imports, oldest first, each with the outcome of its last fetch (status, last_error, events_imported, skipped, overlapping). Its host or an admin. Security definer: feeds are in app_private (their URLs carry the other platforms'' secrets).';

create function api.calendar_feed_add(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_uid uuid := app.current_user_id();
  v_id uuid := app.parse_uuid(p_id);
  v_cfg app_private.calendar_settings := app_private.calendar_config();
  v_errors jsonb := '{}';
  v_url text;
  v_name text;
  v_count integer;
  v_feed app_private.calendar_feeds;
begin
  perform app.product_owned(v_id);
  if p_body is null or jsonb_typeof(p_body) <> 'object' then
    perform app.fail(400, 'The body must be a JSON object.');
  end if;
  v_errors := app.check_text(v_errors, p_body, 'url', 12, 2048, p_required => true);
  v_errors := app.check_text(v_errors, p_body, 'name', 1, 100, p_nullable => true);
  perform app.raise_errors(v_errors);
  v_url := app_private.calendar_feed_url(p_body ->> 'url', v_cfg.https_only);
  v_name := coalesce(nullif(btrim(p_body ->> 'name'), ''),
                     left((regexp_match(v_url, '^https?://([^/?#:]+|\[[^\]]+\])'))[1], 100));

  -- Counted under the listing's lock, so two requests cannot both add the last one allowed.
  perform app_private.lock_listing(v_id);
  select count(*) into v_count from app_private.calendar_feeds f where f.product_id = v_id;
  if v_count >= v_cfg.max_feeds_per_listing then
    perform app.fail(409, format('This listing already imports %s calendars, the most allowed; delete one first.', v_count), 'url');
  end if;
  begin
    insert into app_private.calendar_feeds (product_id, url, name, created_by)
    values (v_id, v_url, v_name, v_uid)
    returning * into v_feed;
  exception when unique_violation then
    perform app.fail(409, 'This listing already imports that calendar.', 'url');
  end;
  -- Its first fetch now (when this commits), then every fetch_interval_minutes.
  perform app_private.defer('calendars.import', jsonb_build_object('feed_id', v_feed.id), 'calendar:' || v_feed.id);
  update app_private.calendar_feeds f set next_fetch_at = now() + make_interval(mins => v_cfg.fetch_interval_minutes)
   where f.id = v_feed.id
  returning * into v_feed;
  return app_private.calendar_feed_json(v_feed);
end
$$;
comment on function api.calendar_feed_add(text, jsonb) is
  'POST /api/products/{id}/calendar-feeds/ {url, name?}: import another platform''s iCal export of this listing (Airbnb, Booking.com, VRBO: their "export calendar" URL). The worker fetches it at once, then every calendar_settings.fetch_interval_minutes (15), and its events block the listing''s dates; read the outcome in the list. 400 naming url: not https:// (webcal:// is read as https://), a user name or password in it, no host. 409: the listing already imports this URL, or as many calendars as allowed (calendar_settings.max_feeds_per_listing, 5). Its host or an admin. Security definer: feeds are in app_private; it defers the fetch job.';

create function api.calendar_feed_delete(p_id text, p_feed_id text) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
begin
  perform app.product_owned(v_id);
  delete from app_private.calendar_feeds f
   where f.id = app.parse_uuid(p_feed_id, 'feed_id') and f.product_id = v_id;
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
end
$$;
comment on function api.calendar_feed_delete(text, text) is
  'DELETE /api/products/{id}/calendar-feeds/{feed_id}/: stop importing a calendar; the dates it blocked become free at once. Its host or an admin; 404 for an unknown feed. Security definer: feeds are in app_private.';

-- ---------------------------------------------------------------------------------
-- The worker's side: what is due, what to fetch, what a fetch gave
-- ---------------------------------------------------------------------------------

create function app_private.calendar_schedule(p_now timestamptz default now()) returns integer
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
  with due as (
    update app_private.calendar_feeds f
       set next_fetch_at = p_now + make_interval(mins => (app_private.calendar_config()).fetch_interval_minutes)
     where f.next_fetch_at <= p_now
    returning f.id)
  select count(app_private.defer('calendars.import', jsonb_build_object('feed_id', due.id), 'calendar:' || due.id))::int
    from due
$$;
comment on function app_private.calendar_schedule(timestamptz) is
  'The calendar schedule (the worker runs it every minute; a DBA may from psql): defer the fetch of every feed whose next_fetch_at has come (job calendars.import, one at a time per feed) and set its next one fetch_interval_minutes later. Returns how many were deferred; finding none costs one index probe.';

create function app_private.calendar_feed_plan(p_feed uuid) returns jsonb
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('url', f.url, 'etag', f.etag, 'last_modified', f.last_modified, 'digest', f.digest,
                            'https_only', (app_private.calendar_config()).https_only)
    from app_private.calendar_feeds f where f.id = p_feed
$$;
comment on function app_private.calendar_feed_plan(uuid) is
  'What the worker needs to fetch a feed: its url, the etag, last_modified and digest of the body last imported (for a conditional GET, and to skip reading a body that did not change), and whether redirects must stay on https. Null when the feed is gone.';

create function app_private.calendar_feed_apply(p_feed uuid, p_result jsonb, p_now timestamptz default now())
returns text
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_product uuid;
  v_feed app_private.calendar_feeds;
  v_today date := (p_now at time zone 'UTC')::date;
  v_horizon date := (p_now at time zone 'UTC')::date + (app_private.booking_config()).max_advance_days + 1;
  v_judged jsonb;
  v_events jsonb;
  v_fresh boolean;
  v_wanted datemultirange;
  v_taken datemultirange;
  v_new datemultirange;
  v_imported integer;
  v_skipped jsonb;
  v_overlaps jsonb;
  v_removed integer;
  v_added integer;
begin
  select f.product_id into v_product from app_private.calendar_feeds f where f.id = p_feed;
  if not found then
    return 'gone: the feed was deleted';
  end if;
  -- The listing first, as every write that takes dates (bookings wait; never a deadlock).
  perform app_private.lock_listing(v_product);
  select f.* into v_feed from app_private.calendar_feeds f where f.id = p_feed for no key update;
  if not found then
    return 'gone: the feed was deleted';
  end if;

  if p_result ? 'error' then
    update app_private.calendar_feeds f
       set last_attempt_at = p_now, last_error = left(p_result ->> 'error', 1000)
     where f.id = p_feed;
    return 'error: ' || (p_result ->> 'error');
  end if;
  v_fresh := not coalesce((p_result ->> 'not_modified')::boolean, false);

  perform app_private.expire_holds(p_now, v_product, null);

  if not v_fresh then
    -- A 304 (or the same body again): the events are those last imported.
    v_wanted := v_feed.wanted;
  else
    -- Each event: the nights it takes, or why it takes none. Not cut to today or to the horizon: a
    -- range that did not change keeps its row (and its UID in our export) from one day to the next.
    with parsed as (
      select e,
             case when e ->> 'start' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' then (e ->> 'start')::date end as first_day,
             case when e ->> 'end' ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' then (e ->> 'end')::date end as last_day,
             e ->> 'end' is not null as has_end,
             coalesce((e ->> 'all_day')::boolean, false) as all_day
        from jsonb_array_elements(coalesce(p_result -> 'events', '[]')) e)
    select coalesce(jsonb_agg(jsonb_build_object(
             'reason', case
               when coalesce((p.e ->> 'recurring')::boolean, false) then 'recurring'
               when coalesce((p.e ->> 'cancelled')::boolean, false) then 'cancelled'
               when p.first_day is null or (p.has_end and p.last_day is null) then 'invalid'
               when not p.has_end and not p.all_day then 'no_end'
               when p.last_day < p.first_day then 'invalid'
               when greatest(p.last_day, p.first_day + 1) <= v_today then 'past'
               when p.first_day >= v_horizon then 'out_of_range'
             end,
             'start', p.first_day,
             'end', greatest(p.last_day, p.first_day + 1))), '[]')
      into v_judged
      from parsed p;
    select coalesce(jsonb_agg(x - 'reason' order by x ->> 'start') filter (where x ->> 'reason' is null), '[]')
      into v_events
      from jsonb_array_elements(v_judged) x;
    select coalesce(jsonb_object_agg(r.reason, r.n), '{}') into v_skipped
      from (select x ->> 'reason' as reason, count(*) as n from jsonb_array_elements(v_judged) x
             where x ->> 'reason' is not null group by 1) r;
    v_imported := jsonb_array_length(v_events);
    select coalesce(range_agg(daterange((x ->> 'start')::date, (x ->> 'end')::date, '[)')), '{}')
      into v_wanted
      from jsonb_array_elements(v_events) x;
  end if;

  -- What others hold here (bookings, the host's blocks, other feeds), and what this feed gets.
  select coalesce(range_agg(c.stay), '{}') into v_taken
    from app.calendar_entries c
   where c.product_id = v_product and c.feed_id is distinct from p_feed;
  v_new := v_wanted - v_taken;

  if v_fresh then  -- who the new events meet, for the host (a 304 keeps the last list)
    select coalesce(jsonb_agg(o.item order by o.first_day), '[]') into v_overlaps
      from (select (x ->> 'start')::date as first_day,
                   jsonb_build_object(
                     'start_date', x ->> 'start', 'end_date', x ->> 'end',
                     'with', case when exists (select from app.calendar_entries c
                                                where c.product_id = v_product and c.booking_id is not null
                                                  and c.stay && daterange((x ->> 'start')::date, (x ->> 'end')::date, '[)'))
                                  then 'booking' else 'block' end) as item
              from jsonb_array_elements(v_events) x
             where v_taken && daterange((x ->> 'start')::date, (x ->> 'end')::date, '[)')
             order by 1
             limit 50) o;
  end if;

  -- Keep the ranges that did not change; remove the rest; add the new ones.
  with gone as (
    delete from app.calendar_entries c
     where c.feed_id = p_feed
       and not exists (select from unnest(v_new) r where r = c.stay)
    returning 1)
  select count(*) into v_removed from gone;
  with added as (
    insert into app.calendar_entries (product_id, stay, feed_id, created_by)
    select v_product, r, p_feed, v_feed.created_by
      from unnest(v_new) r
     where not exists (select from app.calendar_entries c where c.feed_id = p_feed and c.stay = r)
    returning 1)
  select count(*) into v_added from added;

  if not v_fresh then
    update app_private.calendar_feeds f
       set last_attempt_at = p_now, last_success_at = p_now, last_error = null
     where f.id = p_feed;
    return format('not modified (%s ranges added, %s removed)', v_added, v_removed);
  end if;
  update app_private.calendar_feeds f
     set etag = left(p_result ->> 'etag', 1024), last_modified = left(p_result ->> 'last_modified', 128),
         digest = p_result ->> 'digest', wanted = v_wanted,
         last_attempt_at = p_now, last_success_at = p_now, last_changed_at = p_now, last_error = null,
         events_imported = v_imported,
         events_skipped = (select coalesce(sum(v::int), 0) from jsonb_each_text(v_skipped) s(k, v)),
         skipped = v_skipped, overlapping = v_overlaps
   where f.id = p_feed;
  return format('imported %s events (%s ranges added, %s removed), skipped %s, %s overlapping',
                v_imported, v_added, v_removed, v_skipped, jsonb_array_length(v_overlaps));
end
$$;
comment on function app_private.calendar_feed_apply(uuid, jsonb, timestamptz) is
  'Record a fetch of a feed (the worker''s calendars.import job, api/worker.py). p_result is {"error": text} (nothing changes but the feed''s status), {"not_modified": true} (a 304, or the same body again: the events last imported block what of them has become free since), or {"events": [{"start", "end"?, "all_day", "recurring"?, "cancelled"?}], "etag"?, "last_modified"?, "digest"?} (dates as YYYY-MM-DD, written by api/calendars.py): the listing''s blocks from this feed become the union of the events'' free nights, by the rules in this file''s header (skipped events counted by reason, overlaps with bookings and other blocks listed). Under the listing''s lock. p_now lets tests move the clock. Returns what it did.';

-- ---------------------------------------------------------------------------------
-- The contract (OpenAPI; sql/functions/03_contract.sql)
-- ---------------------------------------------------------------------------------

select app.api_schema('CalendarExport', 'A listing''s secret iCal export URL, for other platforms to import.', '{
  "product_id": "uuid", "url": "uri", "created_at": "date-time"}');
select app.api_schema('CalendarFeed', 'An external iCal calendar a listing imports, and what its last fetch gave.', '{
  "id": "uuid", "product_id": "uuid", "name": "string", "url": "uri", "created_at": "date-time",
  "status": "pending|ok|error", "last_attempt_at": "date-time?", "last_success_at": "date-time?",
  "last_changed_at": "date-time?", "next_fetch_at": "date-time", "last_error": "string?",
  "events_imported": "integer", "events_skipped": "integer",
  "skipped": {"type": "object", "additionalProperties": {"type": "integer"},
              "propertyNames": {"enum": ["past", "no_end", "invalid", "out_of_range", "recurring", "cancelled"]}},
  "overlapping": {"type": "array", "items": {"start_date": "date", "end_date": "date", "with": "booking|block"}}}');
select app.api_operation('api.calendar_export', parameters => '{"token": {"type": "string", "pattern": "^[A-Za-z0-9_-]{32}$",
  "description": "The listing''s export secret, as its host reads it in the URL (GET /api/products/{id}/ical-export/)."}}');
select app.api_operation('api.product_ical_export', response => '"CalendarExport"');
select app.api_operation('api.product_ical_export_rotate', response => '"CalendarExport"');
select app.api_operation('api.calendar_feed_list', response => '"CalendarFeed"');
select app.api_operation('api.calendar_feed_add', response => '"CalendarFeed"', errors => '{409}',
  body => '{"url": {"type": "string", "minLength": 12, "maxLength": 2048, "pattern": "^(https?|webcal)://[A-Za-z0-9._~%!$&()*+,;=:\\[\\]-]+([/?#][!-~]*)?$",
                    "description": "The other platform''s export URL: https:// or webcal:// (read as https://); http:// only where app_private.calendar_settings.https_only is off (a local test server)."},
            "name?": "string(1..100)?"}',
  example => '{"url": "https://www.airbnb.com/calendar/ical/12345678.ics?s=0123456789abcdef", "name": "Airbnb"}');
select app.api_operation('api.calendar_feed_delete', parameters => '{"feed_id": "uuid"}');
