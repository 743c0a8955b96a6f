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

-- Volatile on purpose: a raising function must never be constant-folded at plan time.
grant execute on function app.current_claims(), app.current_user_id(), app.current_app_role(),
  app.is_admin(), app.fail(int, text, text), app.invalid(text, text), app.parse_uuid(text, text, int)
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
