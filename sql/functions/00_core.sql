/*
 * Core: who is calling, and the helpers every domain uses.
 *
 * The API sets two transaction-local settings before each call:
 *   role                 -- anon | guest | host | admin (from the verified JWT)
 *   request.jwt.claims   -- the verified claims as JSON ({"sub": user id, "role": ...})
 * A DBA can do the same in psql to act as a user:
 *   begin;
 *   select set_config('role', 'guest', true),
 *          set_config('request.jwt.claims', '{"sub":"<user uuid>","role":"guest"}', true);
 *   select api.me();
 *   rollback;
 */

create function app.current_claims() returns jsonb
language sql stable parallel safe security invoker
as $$
  select coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb, '{}'::jsonb)
$$;
comment on function app.current_claims() is
  'The verified JWT claims of the current request (request.jwt.claims), or {} when anonymous.';

create function app.current_user_id() returns uuid
language sql stable parallel safe security invoker
as $$
  select nullif(app.current_claims() ->> 'sub', '')::uuid
$$;
comment on function app.current_user_id() is
  'The id of the signed-in user (the JWT "sub" claim), or null when anonymous. Policies call it as (select app.current_user_id()).';

create function app.current_app_role() returns text
language sql stable parallel safe security invoker
as $$
  select current_user::text
$$;
comment on function app.current_app_role() is
  'The database role the request runs as: anon, guest, host or admin (the owner when a DBA calls directly).';

create function app.is_admin() returns boolean
language sql stable parallel safe security invoker
as $$
  -- Inside a SECURITY DEFINER function current_user is the owner, but the "role"
  -- setting still names the role the request runs as (set from the verified JWT).
  select current_user = 'admin' or current_setting('role', true) = 'admin'
$$;
comment on function app.is_admin() is 'True when the request runs as the admin role, also inside SECURITY DEFINER functions.';

create function app.fail(p_status int, p_message text, p_field text default null)
returns void
language plpgsql volatile security invoker
as $$
begin
  -- SQLSTATE PTnnn carries the HTTP status (PostgREST's convention); COLUMN names the field.
  raise exception using
    errcode = 'PT' || p_status::text,
    message = p_message,
    column = coalesce(p_field, '');
end
$$;
comment on function app.fail(int, text, text) is
  'Raise a client error: SQLSTATE PT<status> (e.g. PT400, PT404, PT409) with a message a client can show; p_field names the offending field (RFC 9457 errors.<field>).';

create function app.invalid(p_field text, p_message text) returns void
language sql volatile security invoker
as $$
  select app.fail(400, p_message, p_field)
$$;
comment on function app.invalid(text, text) is 'Raise a 400 validation error naming the field (SQLSTATE PT400, COLUMN = field).';

create function app.parse_uuid(p_value text, p_field text default 'id', p_status int default 404)
returns uuid
language plpgsql stable security invoker
as $$
begin
  if p_value is null then
    return null;
  end if;
  if p_value !~* '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$' then
    if p_status = 404 then
      perform app.fail(404, 'Not found.');
    end if;
    perform app.fail(p_status, 'Must be a valid UUID.', p_field);
  end if;
  return p_value::uuid;
end
$$;
comment on function app.parse_uuid(text, text, int) is
  'Parse a UUID from client input; a malformed value is a 404 for path ids (the object cannot exist) or a 400 naming the field.';

-- ---------------------------------------------------------------------------------
-- Parsing helpers: text from a URL or a JSON body -> a typed value, or a 400 naming
-- the field. They are STABLE (never constant-folded) because they raise.
-- ---------------------------------------------------------------------------------

create function app.parse_int(p_value text, p_field text, p_min int, p_max int default 1000000)
returns int
language plpgsql stable security invoker
as $$
declare
  v_int bigint;
begin
  if p_value is null then
    return null;
  end if;
  if btrim(p_value) !~ '^[+-]?[0-9]{1,10}$' then
    perform app.invalid(p_field, format('%s must be a whole number.', p_field));
  end if;
  v_int := btrim(p_value)::bigint;
  if v_int < p_min or v_int > p_max then
    perform app.invalid(p_field, format('%s must be between %s and %s.', p_field, p_min, p_max));
  end if;
  return v_int::int;
end
$$;
comment on function app.parse_int(text, text, int, int) is
  'Parse a whole number from client text; outside [p_min, p_max] or not a number is a 400 naming p_field. Null stays null.';

create function app.parse_price(p_value text, p_field text) returns numeric
language plpgsql stable security invoker
as $$
begin
  if p_value is null then
    return null;
  end if;
  if btrim(p_value) !~ '^[0-9]{1,10}(\.[0-9]{1,2})?$' or btrim(p_value)::numeric <= 0 then
    perform app.invalid(p_field, format('%s must be a positive decimal with at most 2 decimals, e.g. 120.00.', p_field));
  end if;
  return btrim(p_value)::numeric(12, 2);
end
$$;
comment on function app.parse_price(text, text) is
  'Parse a price (a positive decimal with at most 10 integer digits and 2 decimals) from client text, or a 400 naming p_field.';

create function app.parse_date(p_value text, p_field text) returns date
language plpgsql stable security invoker
as $$
begin
  if p_value is null then
    return null;
  end if;
  if btrim(p_value) ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' then
    begin
      return btrim(p_value)::date;
    exception when datetime_field_overflow or invalid_datetime_format then
      null;  -- falls through to the 400 below
    end;
  end if;
  perform app.invalid(p_field, format('%s must be a date as YYYY-MM-DD.', p_field));
  return null;
end
$$;
comment on function app.parse_date(text, text) is 'Parse a calendar date (YYYY-MM-DD) from client text, or a 400 naming p_field.';

create function app.parse_page(p_page text, p_page_size text, out page int, out page_size int)
language plpgsql stable security invoker
as $$
begin
  page := coalesce(app.parse_int(p_page, 'page', 1, 1000000), 1);
  page_size := least(coalesce(app.parse_int(p_page_size, 'page_size', 1, 1000000), 20), 100);
end
$$;
comment on function app.parse_page(text, text) is
  'Pagination parameters: page from 1 (default 1), page_size from 1 (default 20; values above 100 are capped at 100, as DRF''s max_page_size does). Anything else is a 400 naming the parameter.';

create function app.check_media_path(p_path text) returns void
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- The API names stored files itself: <2 hex>/<32 hex>.<ext>. Anything else, or a file
  -- some record already shows, did not come from this upload.
  if p_path is null or p_path !~ '^[0-9a-f]{2}/[0-9a-f]{32}\.(jpg|png|webp)$'
     or exists (select from app.users where photo_path = p_path)
     or exists (select from app.product_photos where path = p_path) then
    perform app.fail(400, 'Not a freshly uploaded file.', 'file');
  end if;
end
$$;
comment on function app.check_media_path(text) is
  'Refuse a media path that is not a name the API generates for a new upload, or that a user or listing photo already uses (so deleting one record can never remove a file another shows). SECURITY DEFINER to see every record''s path.';

-- Volatile on purpose: a raising function must never be constant-folded at plan time.
grant execute on function app.current_claims(), app.current_user_id(), app.current_app_role(),
  app.is_admin(), app.fail(int, text, text), app.invalid(text, text), app.parse_uuid(text, text, int),
  app.parse_int(text, text, int, int), app.parse_price(text, text), app.parse_date(text, text),
  app.parse_page(text, text), app.check_media_path(text)
  to anon, guest, host, admin;

create function api.health() returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'database', 'ok',
    'migrations', coalesce((select jsonb_agg(migration_id order by migration_id) from public._yoyo_migration), '[]'::jsonb))
$$;
comment on function api.health() is
  'Readiness: reachable database and the versioned migrations applied (GET /readyz compares them with the files it ships). SECURITY DEFINER to read yoyo''s bookkeeping table; reveals only migration ids.';
grant execute on function api.health() to anon, guest, host, admin;

create function app.tg__set_updated_at() returns trigger
language plpgsql security invoker
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function app.tg__set_updated_at() is 'Trigger: keep updated_at current on every update.';
grant execute on function app.tg__set_updated_at() to guest, host, admin;
