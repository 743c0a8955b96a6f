/*
 * Core: who is calling, how a function refuses, where media files are served.
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

create function app.is_admin() returns boolean
language sql stable parallel safe security invoker
as $$
  -- Inside a SECURITY DEFINER function current_user is the owner, but the "role"
  -- setting still names the role the request runs as (set from the verified JWT).
  select current_user = 'admin' or current_setting('role', true) = 'admin'
$$;
comment on function app.is_admin() is 'True when the request runs as the admin role, also inside SECURITY DEFINER functions.';

create function app.fail(p_status int, p_message text, p_field text default null, p_retry_after int default null)
returns void
language plpgsql volatile security invoker
as $$
begin
  -- SQLSTATE PTnnn carries the HTTP status (PostgREST's convention); COLUMN names the field;
  -- HINT "Retry-After: <seconds>" becomes that response header (api/errors.py).
  if p_retry_after is not null then
    raise exception using
      errcode = 'PT' || p_status::text,
      message = p_message,
      column = coalesce(p_field, ''),
      hint = 'Retry-After: ' || greatest(p_retry_after, 1)::text;
  end if;
  raise exception using
    errcode = 'PT' || p_status::text,
    message = p_message,
    column = coalesce(p_field, '');
end
$$;
comment on function app.fail(int, text, text, int) is
  'Raise a client error: SQLSTATE PT<status> (e.g. PT400, PT404, PT409, PT429) with a message a client can show; p_field names the offending field (RFC 9457 errors.<field>); p_retry_after (seconds, at least 1) becomes the Retry-After header (e.g. with 429 or 503).';

create function app.invalid(p_field text, p_message text) returns void
language sql volatile security invoker
as $$
  select app.fail(400, p_message, p_field)
$$;
comment on function app.invalid(text, text) is 'Raise a 400 validation error naming the field (SQLSTATE PT400, COLUMN = field).';

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
  'Refuse a media path that is not a name the API generates for a new upload, or that a user or listing photo already uses (so deleting one record can never remove a file another shows). Security definer: it must see every user''s and listing''s photo path, whatever the caller may see.';

create function api.health() returns jsonb
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object(
    'database', 'ok',
    'migrations', coalesce((select jsonb_agg(migration_id order by migration_id) from public._yoyo_migration), '[]'::jsonb))
$$;
comment on function api.health() is
  'Readiness: reachable database and the versioned migrations applied (GET /readyz compares them with the files it ships). Security definer: it reads yoyo''s bookkeeping table (public._yoyo_migration), which no client role may read; it reveals only migration ids.';

create function app.tg__set_updated_at() returns trigger
language plpgsql security invoker
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
comment on function app.tg__set_updated_at() is 'Trigger: keep updated_at current on every update.';

create function app.claim_uuid(p_value text) returns uuid
language sql immutable parallel safe security invoker
as $$
  -- Any other value matches nobody: a 401, not a 400.
  select case when p_value ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then p_value::uuid end
$$;
comment on function app.claim_uuid(text) is 'A JWT claim that should hold a UUID ("sub") as one, or null when it does not.';

create function app.check_session() returns void
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_claims jsonb := app.current_claims();
  v_ok boolean;
begin
  select u.is_active
         and u.role::text = v_claims ->> 'role'
         and u.session_epoch::text = coalesce(v_claims ->> 'sev', '0')
         and not u.ended_sessions ? (v_claims ->> 'sid')  -- null (no session) is no answer: refused
    into v_ok
    from app.users u
   where u.id = app.claim_uuid(v_claims ->> 'sub');
  if v_ok is not true then
    perform app.fail(401, 'Invalid or expired token.');
  end if;
end
$$;
comment on function app.check_session() is
  'Run by the API before each signed-in call: the token''s user must exist, be active, still hold the token''s role; the token''s session epoch ("sev") must be the user''s current session_epoch (revoke-all and deactivation bump it); and its session ("sid", a refresh-token family) must not have ended (users.ended_sessions: signed out, or ended by refresh-token reuse). Raises PT401 otherwise. Security definer: it reads the token''s user whatever the calling role may see or execute.';

create function app_private.defer(p_task text, p_args jsonb, p_lock text default null) returns bigint
language sql volatile security invoker
-- procrastinate's own functions and triggers name their tables without a schema.
set search_path = procrastinate, pg_catalog, pg_temp
as $$
  -- The queue is the task's prefix: payments, payouts, notifications, media (api/worker.py QUEUES).
  -- The job's origin, when the transaction has one: the request that caused it and its trace
  -- (nexus.request_id, nexus.traceparent: set by the API's and the worker's statements, api/db.py),
  -- which the worker takes back out of the args before the task runs (api/tracing.py job).
  select (procrastinate.procrastinate_defer_jobs_v1(array[
    row(split_part(p_task, '.', 1), p_task, 0, p_lock, null,
        p_args || coalesce((select pg_catalog.jsonb_build_object('_origin', o)
                              from pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                                     'request_id', nullif(pg_catalog.current_setting('nexus.request_id', true), ''),
                                     'traceparent', nullif(pg_catalog.current_setting('nexus.traceparent', true), ''))) o
                             where o <> '{}'), '{}'),
        null)::procrastinate.procrastinate_job_to_defer_v1]))[1]
$$;
comment on function app_private.defer(text, jsonb, text) is
  'Defer a job for the worker (python -m api.worker) in the current transaction: it exists exactly when the caller commits. p_task is a task name registered in api/worker.py (its prefix is the queue), p_args its JSON arguments; jobs with the same p_lock run one at a time. When the transaction says where it comes from (the settings nexus.request_id and nexus.traceparent, which the API sets for each request), the args also get _origin {request_id, traceparent}: the worker logs the job under that request id and continues its trace. Returns the job id (procrastinate.procrastinate_jobs).';

create function app.media_url(p_path text) returns text
language sql stable parallel safe security invoker
as $$
  select current_setting('nexus.media_url', true) || p_path
$$;
comment on function app.media_url(text) is
  'The URL of a stored file (photo) from its path under MEDIA_ROOT: the session setting nexus.media_url, which the API sets on each of its connections from MEDIA_URL (the one place it is configured), followed by the path. Null for a null path, or in a session that has not set it (in psql: set nexus.media_url = ''/media/'').';

create function app.photo_json(p_path text, p_width int, p_height int, p_size_bytes int, p_placeholder text,
                               p_variants jsonb)
returns jsonb
language sql stable security invoker
as $$
  -- One expression, no subquery: inlined into the caller's statement (a search page builds 20,
  -- a detail one per photo; a function called instead is parsed and planned on every call,
  -- tests/sql/test_function_calls.py). So the variants' URLs are written without unnesting
  -- them: jsonb writes each stored variant as {"path": "...", "width": w, "height": h} (keys
  -- by length), and "path": "x" becomes "url": "<MEDIA_URL>x". MEDIA_URL holds no quote or
  -- backslash (api/settings.py refuses them), so the text stays valid JSON.
  select case when p_path is not null then pg_catalog.jsonb_build_object(
    'url', app.media_url(p_path), 'width', p_width, 'height', p_height, 'size_bytes', p_size_bytes,
    'placeholder', p_placeholder,
    'variants', pg_catalog.replace(p_variants::text, '{"path": "',
                                   '{"url": "' || pg_catalog.current_setting('nexus.media_url', true))::jsonb)
  end
$$;
comment on function app.photo_json(text, int, int, int, text, jsonb) is
  'A photo as the API shows it: url (the original, re-encoded without metadata), width and height in pixels, size_bytes, placeholder (average colour, #rrggbb), variants [{url, width, height}] narrowest first (WebP, made by the worker; empty until then, when the original is the only file). Null for a null path. A frontend builds srcset from variants and the original.';

create function app.avatar_url(p_path text, p_variants jsonb) returns text
language sql stable security invoker
as $$
  select app.media_url(coalesce(p_variants -> 0 ->> 'path', p_path))
$$;
comment on function app.avatar_url(text, jsonb) is
  'A public profile''s photo_url: the narrowest variant of the profile photo once the worker has made it, else the original. Null without a photo.';
