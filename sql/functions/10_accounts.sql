/*
 * Accounts: registration, password sign-in with throttling, refresh-token rotation with
 * reuse detection, sign-out, profiles, and the admin's user management.
 *
 * Guarantees:
 *   - a password is stored only as a bcrypt hash (pgcrypto, cost auth_settings.bcrypt_cost) in app_private;
 *     over 72 bytes it is refused, never silently truncated;
 *   - wrong password and unknown email take the same path and give the same answer;
 *   - refresh tokens are stored as SHA-256 hashes; each use rotates; a second use of
 *     one revokes its whole family; concurrent uses serialise on the row lock;
 *   - sign-in outcomes are RETURNED ({"ok": false, "status": 401, ...}), not raised, so
 *     what they record (a failed attempt, a revoked family) is committed;
 *   - a user reads and changes only their own row and only the profile columns;
 *     role, email, activity and ids change only through these functions.
 */

create trigger users_set_updated_at before update on app.users
  for each row execute function app.tg__set_updated_at();

create function app_private.auth_config() returns app_private.auth_settings
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select s from app_private.auth_settings s where s.id
$$;
comment on function app_private.auth_config() is
  'The account settings row (app_private.auth_settings): bcrypt cost, refresh-token lifetime, sign-in throttling, OAuth flow lifetime.';

create function app.user_json(p_user app.users) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', p_user.id,
    'email', p_user.email,
    'first_name', p_user.first_name,
    'last_name', p_user.last_name,
    'phone_number', p_user.phone_number,
    'role', p_user.role,
    'photo_url', app.media_url(p_user.photo_path),
    'photo', app.photo_json(p_user.photo_path, p_user.photo_width, p_user.photo_height, p_user.photo_size_bytes,
                            p_user.photo_placeholder, p_user.photo_variants),
    'preferences', p_user.preferences,
    'is_active', p_user.is_active,
    'created_at', p_user.created_at,
    'updated_at', p_user.updated_at)
$$;
comment on function app.user_json(app.users) is
  'A user as its owner or an admin sees it (never any password or token field).';

create function app.preferences_problem(p_value jsonb) returns text
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  -- The shape the contract declares (app.api_operation('api.me_update') below): flat settings,
  -- plus the notification choices that api.notification_preferences_set keeps, nothing deeper.
  select case
    when jsonb_typeof(p_value) <> 'object' then 'Must be a JSON object.'
    when pg_column_size(p_value) > 8192 then 'At most 8 KiB.'
    when (select count(*) from jsonb_object_keys(p_value)) > 50 then 'At most 50 settings.'
    when exists (select from jsonb_object_keys(p_value) k where k !~ '^[A-Za-z][A-Za-z0-9_.-]{0,63}$') then
      'Names are 1-64 letters, digits, _ . or -, starting with a letter.'
    when exists (select from jsonb_each(p_value) e
                  where e.key <> 'notifications'
                    and (jsonb_typeof(e.value) not in ('string', 'number', 'boolean', 'null')
                         or length(e.value #>> '{}') > 500)) then
      'Each setting is text (at most 500 characters), a number, true, false or null; only notifications holds more.'
    when p_value ? 'notifications' and (
           jsonb_typeof(p_value -> 'notifications') <> 'object'
           or exists (select from jsonb_each(p_value -> 'notifications') t
                       where jsonb_typeof(t.value) <> 'object'
                          or not exists (select from app_private.notification_types nt where nt.type = t.key)
                          or exists (select from jsonb_each(t.value) c
                                      where c.key not in ('email', 'in_app') or jsonb_typeof(c.value) <> 'boolean'))) then
      'notifications is {"<type>": {"email": true|false, "in_app": true|false}} for the types GET /api/users/me/notification-preferences/ lists.'
  end
$$;
comment on function app.preferences_problem(jsonb) is
  'Why a profile''s preferences are unacceptable, or null: a JSON object of at most 50 named settings (8 KiB), each text up to 500 characters, a number, a boolean or null, except notifications: {"<type>": {"email": bool, "in_app": bool}} for known types. So no client stores arbitrary depth or size. Security definer: the notification type names are in app_private.notification_types, which no client role may read.';

create function app.profile_errors(p_body jsonb, p_partial boolean) returns jsonb
language plpgsql stable security invoker
as $$
declare
  v_errors jsonb := '{}';
begin
  v_errors := app.check_text(v_errors, p_body, 'first_name', 1, 100, p_required => not p_partial);
  v_errors := app.check_text(v_errors, p_body, 'last_name', 1, 100, p_required => not p_partial);
  -- Blank (or null) clears it, as the writes store it (nullif(btrim(...), '')): the contract's PHONE pattern.
  if jsonb_typeof(p_body -> 'phone_number') <> 'null'
     and (jsonb_typeof(p_body -> 'phone_number') <> 'string' or (p_body ->> 'phone_number') !~ '^( *|\+?[0-9 ()-]{6,20})$') then
    v_errors := app.add_error(v_errors, 'phone_number',
      'Enter a phone number: digits, spaces, ()- and an optional leading +, 6 to 20 characters (blank to remove it).');
  end if;
  if p_body ? 'preferences' then
    v_errors := app.add_error(v_errors, 'preferences', app.preferences_problem(p_body -> 'preferences'));
  end if;
  return v_errors;
end
$$;
comment on function app.profile_errors(jsonb, boolean) is
  'Every problem with the profile fields of a request body (first_name and last_name 1-100 characters, phone_number (blank or null: none), preferences as app.preferences_problem describes), as an errors object for app.raise_errors; p_partial: only the fields present are checked.';

create function app_private.hash_password(p_password text) returns text
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
  select extensions.crypt(p_password, extensions.gen_salt('bf', (app_private.auth_config()).bcrypt_cost))
$$;
comment on function app_private.hash_password(text) is 'bcrypt hash of a password (the caller has checked its length).';

create function app_private.password_errors(p_password jsonb) returns text
language sql immutable security invoker
as $$
  select case
    when jsonb_typeof(p_password) is distinct from 'string' then 'This field is required.'
    when length(p_password #>> '{}') < 8 then 'At least 8 characters.'
    when octet_length(p_password #>> '{}') > 72 then 'At most 72 bytes (bcrypt''s limit; nothing is truncated).'
  end
$$;
comment on function app_private.password_errors(jsonb) is 'Why a password is unacceptable, or null: at least 8 characters, at most 72 bytes.';

create function app_private.issue_refresh(p_user_id uuid, p_family uuid default null) returns jsonb
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_token text := rtrim(translate(encode(extensions.gen_random_bytes(32), 'base64'), '+/', '-_'), '=');
  v_ttl int := (app_private.auth_config()).refresh_ttl_seconds;
  v_family uuid := coalesce(p_family, gen_random_uuid());
begin
  insert into app_private.refresh_tokens (user_id, family_id, token_hash, expires_at)
  values (p_user_id, v_family, sha256(convert_to(v_token, 'UTF8')), now() + make_interval(secs => v_ttl));
  return jsonb_build_object('refresh', v_token, 'refresh_expires_in', v_ttl, 'session', v_family);
end
$$;
comment on function app_private.issue_refresh(uuid, uuid) is
  'Issue a refresh token for a user (a new session, i.e. token family, unless p_family is given); stores only its SHA-256 and returns {refresh, refresh_expires_in, session (the family id: the access token''s "sid")}. From psql, a session to sign a test token for: select app_private.issue_refresh(''<user uuid>'') ->> ''session'';';

create function app_private.sign_in_outcome(p_user app.users, p_family uuid default null) returns jsonb
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
  select jsonb_build_object('ok', true, 'user_id', p_user.id, 'role', p_user.role, 'epoch', p_user.session_epoch)
         || app_private.issue_refresh(p_user.id, p_family)
$$;
comment on function app_private.sign_in_outcome(app.users, uuid) is
  'The successful sign-in outcome the API turns into tokens: {ok, user_id, role, epoch (the JWT "sev"), session (the JWT "sid"), refresh, refresh_expires_in}.';

create function app_private.refusal(p_status int, p_detail text, p_retry_after int default null) returns jsonb
language sql immutable security invoker
as $$
  select jsonb_strip_nulls(jsonb_build_object('ok', false, 'status', p_status, 'detail', p_detail, 'retry_after', p_retry_after))
$$;
comment on function app_private.refusal(int, text, int) is 'A refused sign-in outcome: {ok: false, status, detail, retry_after?}; returned (not raised) so its bookkeeping commits.';

create function app_private.end_session(p_family uuid) returns void
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
  -- Its refresh tokens stop working, and its access tokens with them (app.check_session reads
  -- ended_sessions on the row it fetches anyway). Entries older than a day are dropped: no
  -- access token lives that long.
  update app_private.refresh_tokens set revoked_at = now() where family_id = p_family and revoked_at is null;
  update app.users u
     set ended_sessions = jsonb_build_object(p_family::text, extract(epoch from now())::bigint)
                          || coalesce((select jsonb_object_agg(e.key, e.value) from jsonb_each(u.ended_sessions) e
                                        where (e.value #>> '{}')::bigint > extract(epoch from now() - interval '1 day')), '{}')
   where u.id = (select t.user_id from app_private.refresh_tokens t where t.family_id = p_family limit 1)
$$;
comment on function app_private.end_session(uuid) is
  'End one sign-in session (a refresh-token family): revoke its refresh tokens and record it in the user''s ended_sessions, so its access tokens are refused at once. Used by sign-out (api.token_revoke) and refresh-token reuse (api.token_refresh).';

create function app.end_sessions(p_user_id uuid) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- No signed-in user at all: the owner in psql.
  -- why: "the user themself or an admin" is about the row, which no grant can say (sign-out calls it too).
  if app.current_user_id() is not null and p_user_id <> app.current_user_id() and not app.is_admin() then
    perform app.fail(403, 'You may only end your own sessions.');
  end if;
  update app.users set session_epoch = session_epoch + 1 where id = p_user_id;
  update app_private.refresh_tokens set revoked_at = now()
   where user_id = p_user_id and revoked_at is null;
end
$$;
comment on function app.end_sessions(uuid) is
  'End every session of a user: bump session_epoch (access tokens stop working) and revoke all refresh tokens. Allowed for the user themself, an admin, or the owner in psql. Security definer: it revokes refresh tokens in app_private.refresh_tokens and bumps users.session_epoch, which no client role may write.';

-- ---------------------------------------------------------------------------------------
-- Registration and sign-in
-- ---------------------------------------------------------------------------------------

create function api.register(p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_errors jsonb := app.profile_errors(p_body, false);
  v_email text := btrim(p_body ->> 'email');
  v_role text := coalesce(p_body ->> 'role', 'guest');
  v_password_error text := app_private.password_errors(p_body -> 'password');
  v_user app.users;
begin
  if jsonb_typeof(p_body -> 'email') is distinct from 'string'
     or v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' or length(v_email) > 254 then
    v_errors := app.add_error(v_errors, 'email', 'Enter a valid email address.');
  end if;
  if v_password_error is not null then
    v_errors := app.add_error(v_errors, 'password', v_password_error);
  end if;
  v_errors := app.check_choice(v_errors, p_body, 'role', array['guest', 'host']);
  perform app.raise_errors(v_errors);

  if exists (select from app.users where lower(email) = lower(v_email)) then
    perform app.fail(409, 'An account with this email already exists.', 'email');
  end if;
  insert into app.users (email, first_name, last_name, phone_number, role)
  values (v_email, btrim(p_body ->> 'first_name'), btrim(p_body ->> 'last_name'),
          nullif(btrim(p_body ->> 'phone_number'), ''), v_role::app.user_role)
  returning * into v_user;
  insert into app_private.credentials (user_id, password_hash)
  values (v_user.id, app_private.hash_password(p_body ->> 'password'));
  return app.user_json(v_user);
exception
  when unique_violation then
    perform app.fail(409, 'An account with this email already exists.', 'email');
end
$$;
comment on function api.register(jsonb) is
  'Sign up as a guest or host. Body: {email, password (8+ characters, at most 72 bytes), first_name, last_name, role? (guest|host, default guest), phone_number?}. Returns the new user (no password fields). Email is unique regardless of letter case (409); admins are never self-registered (role admin is a 400). Security definer: it stores the password hash in app_private.credentials and inserts the user, neither of which a client role may do.';

create function api.login(p_body jsonb, p_client_addr text default null) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_cfg app_private.auth_settings := app_private.auth_config();
  v_window interval := make_interval(secs => v_cfg.throttle_window_seconds);
  v_email text := btrim(p_body ->> 'email');
  v_password text := p_body ->> 'password';
  v_addr inet := case when p_client_addr ~ '^[0-9a-fA-F:.]+$' then p_client_addr::inet end;
  v_user app.users;
  v_hash text;
  v_matches boolean;
  v_oldest timestamptz;
  v_errors jsonb := '{}';
begin
  if jsonb_typeof(p_body -> 'email') is distinct from 'string' or v_email = '' then
    v_errors := app.add_error(v_errors, 'email', 'This field is required.');
  end if;
  if jsonb_typeof(p_body -> 'password') is distinct from 'string' or v_password = '' then
    v_errors := app.add_error(v_errors, 'password', 'This field is required.');
  end if;
  perform app.raise_errors(v_errors);

  -- Throttle: too many recent failures for this email (since its last success) or this address.
  select min(a.attempted_at) into v_oldest
    from (select attempted_at from app_private.login_attempts
           where lower(email) = lower(v_email) and not succeeded and attempted_at > now() - v_window
             and attempted_at > coalesce((select max(attempted_at) from app_private.login_attempts
                                           where lower(email) = lower(v_email) and succeeded), '-infinity')
           order by attempted_at desc
           limit v_cfg.throttle_max_failures_per_email) a
   having count(*) >= v_cfg.throttle_max_failures_per_email;
  if v_oldest is null and v_addr is not null then
    select min(a.attempted_at) into v_oldest
      from (select attempted_at from app_private.login_attempts
             where client_addr = v_addr and not succeeded and attempted_at > now() - v_window
             order by attempted_at desc
             limit v_cfg.throttle_max_failures_per_address) a
     having count(*) >= v_cfg.throttle_max_failures_per_address;
  end if;
  if v_oldest is not null then
    insert into app_private.login_attempts (email, client_addr, succeeded) values (v_email, v_addr, false);
    return app_private.refusal(429, 'Too many failed sign-in attempts. Try again later.',
      greatest(1, ceil(extract(epoch from (v_oldest + v_window - now()))))::int);
  end if;

  select u.* into v_user from app.users u where lower(u.email) = lower(v_email);
  select c.password_hash into v_hash from app_private.credentials c where c.user_id = v_user.id;
  -- Exactly one bcrypt on every path, so the time taken does not tell whether the email has an
  -- account: an unknown email, an account without a password (OAuth only) and an over-long
  -- password hash against a fresh salt of the configured cost, as long as checking a real hash.
  v_matches := extensions.crypt(v_password, coalesce(v_hash, extensions.gen_salt('bf', v_cfg.bcrypt_cost))) = v_hash;
  if v_matches is not true or octet_length(v_password) > 72 or not v_user.is_active then
    insert into app_private.login_attempts (email, client_addr, succeeded) values (v_email, v_addr, false);
    return app_private.refusal(401, 'No active account found with the given credentials.');
  end if;
  insert into app_private.login_attempts (email, client_addr, succeeded) values (v_email, v_addr, true);
  return app_private.sign_in_outcome(v_user);
end
$$;
comment on function api.login(jsonb, text) is
  'Sign in with {email, password}. Returns an outcome the API turns into {access, refresh, token_type, expires_in}: wrong password, unknown email and deactivated account give the same 401 in the same time (one bcrypt each); 5 failures for an email (or 20 for a client address) within 15 minutes give 429 with Retry-After. Every attempt is recorded. Security definer: it reads password hashes (app_private.credentials) and records every attempt (app_private.login_attempts), which no client role may reach.';

create function api.token_refresh(p_body jsonb) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_token app_private.refresh_tokens;
  v_user app.users;
begin
  if jsonb_typeof(p_body -> 'refresh') is distinct from 'string' then
    perform app.fail(400, 'This field is required.', 'refresh');
  end if;
  select t.* into v_token from app_private.refresh_tokens t
   where t.token_hash = sha256(convert_to(p_body ->> 'refresh', 'UTF8'))
   for update;
  if v_token.id is null or v_token.revoked_at is not null or v_token.expires_at <= now() then
    return app_private.refusal(401, 'Invalid or expired refresh token.');
  end if;
  if v_token.used_at is not null then
    -- Reuse of a rotated token: someone else may hold it. End the whole family.
    perform app_private.end_session(v_token.family_id);
    return app_private.refusal(401, 'Invalid or expired refresh token.');
  end if;
  select u.* into v_user from app.users u where u.id = v_token.user_id and u.is_active;
  if v_user.id is null then
    return app_private.refusal(401, 'Invalid or expired refresh token.');
  end if;
  update app_private.refresh_tokens set used_at = now() where id = v_token.id;
  return app_private.sign_in_outcome(v_user, v_token.family_id);
end
$$;
comment on function api.token_refresh(jsonb) is
  'Exchange {refresh} for a new access token and a new refresh token (rotation). Presenting an already-used refresh token revokes its whole family (the session begun by that sign-in: its access tokens stop working too) and is a 401. Security definer: refresh tokens live in app_private.refresh_tokens, which no client role may reach.';

create function api.token_revoke(p_body jsonb) returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if p_body ? 'refresh' and jsonb_typeof(p_body -> 'refresh') <> 'string' then
    perform app.fail(400, 'Must be a string.', 'refresh');
  end if;
  perform app_private.end_session(t.family_id) from app_private.refresh_tokens t
   where t.token_hash = sha256(convert_to(coalesce(p_body ->> 'refresh', ''), 'UTF8'));
end
$$;
comment on function api.token_revoke(jsonb) is
  'Sign out: revoke the session (token family) of {refresh}; its access tokens stop working at once (app.check_session). Succeeds for any string, so it reveals nothing about the token; a refresh that is not a string is a 400. Security definer: refresh tokens live in app_private.refresh_tokens, which no client role may reach.';

create function api.token_revoke_all() returns void
language sql volatile security invoker
as $$
  select app.end_sessions(app.current_user_id())
$$;
comment on function api.token_revoke_all() is 'Sign out everywhere: every access and refresh token of the signed-in user stops working.';

-- ---------------------------------------------------------------------------------------
-- The signed-in user's own profile
-- ---------------------------------------------------------------------------------------

create function api.me() returns jsonb
language sql stable security invoker
as $$
  select app.user_json(u) from app.users u where u.id = app.current_user_id()
$$;
comment on function api.me() is 'The signed-in user''s own profile, private fields included.';

create function api.me_update(p_body jsonb) returns jsonb
language plpgsql volatile security invoker
as $$
declare
  v_user app.users;
begin
  perform app.raise_errors(app.profile_errors(p_body, true));
  update app.users u set
    first_name = case when p_body ? 'first_name' then btrim(p_body ->> 'first_name') else u.first_name end,
    last_name = case when p_body ? 'last_name' then btrim(p_body ->> 'last_name') else u.last_name end,
    phone_number = case when p_body ? 'phone_number' then nullif(btrim(p_body ->> 'phone_number'), '') else u.phone_number end,
    preferences = case when p_body ? 'preferences' then p_body -> 'preferences' else u.preferences end
  where u.id = app.current_user_id()
  returning * into v_user;
  return app.user_json(v_user);
end
$$;
comment on function api.me_update(jsonb) is
  'Update the signed-in user''s profile: first_name, last_name, phone_number, preferences (flat settings and notification choices, as app.preferences_problem describes; at most 8 KiB). Any other field (id, email, role, timestamps) is ignored.';

create function api.me_deactivate() returns void
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- The profile photo goes with the account (its files by the job app.tg_users__media defers).
  update app.users
     set is_active = false, photo_path = null, photo_size_bytes = null, photo_width = null, photo_height = null,
         photo_placeholder = null, photo_variants = '[]'
   where id = app.current_user_id();
  perform app.end_sessions(app.current_user_id());
end
$$;
comment on function api.me_deactivate() is 'DELETE /api/users/me/ — close the signed-in user''s account: it can no longer sign in, every token stops working, and its profile photo is deleted (the files by a job after the commit). An admin can reactivate it. Security definer: only admins may update users.is_active, and ending the sessions revokes refresh tokens in app_private.';

create function api.me_remove_photo() returns void
language sql volatile security invoker
as $$
  -- The files go by the job app.tg_users__media defers.
  update app.users u
     set photo_path = null, photo_size_bytes = null, photo_width = null, photo_height = null,
         photo_placeholder = null, photo_variants = '[]'
   where u.id = app.current_user_id()
$$;
comment on function api.me_remove_photo() is
  'DELETE /api/users/me/photo/ — remove the signed-in user''s profile photo (204); its files (original and variants) are deleted from storage by a job after the commit.';

create function api.me_set_photo(p_path text, p_content_type text, p_size_bytes int, p_width int, p_height int,
                                 p_placeholder text)
returns jsonb
language plpgsql volatile security invoker
as $$
declare
  v_user jsonb;
begin
  perform app.check_media_path(p_path);
  -- The previous photo's files go by a job after the commit (app.tg_users__media), its variants with it.
  update app.users u
     set photo_path = p_path, photo_size_bytes = p_size_bytes, photo_width = p_width, photo_height = p_height,
         photo_placeholder = p_placeholder, photo_variants = '[]'
   where u.id = app.current_user_id()
  returning app.user_json(u) into v_user;
  return v_user;
end
$$;
comment on function api.me_set_photo(text, text, int, int, int, text) is
  'PUT /api/users/me/photo/ — set the signed-in user''s profile photo. The API has already decoded the image whole (a still JPEG, PNG or WebP within the size and pixel limits) and stored it re-encoded without its metadata under p_path in the media storage, with its pixel size and average colour; the worker makes its variants, and removes the previous photo''s files.';

create function api.become_host() returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_user app.users;
begin
  update app.users set role = 'host'
   where id = app.current_user_id() and role = 'guest' and is_active
  returning * into v_user;
  if v_user.id is null then
    perform app.fail(409, 'Only an active guest can become a host.');
  end if;
  return app_private.sign_in_outcome(v_user);
end
$$;
comment on function api.become_host() is
  'Turn the signed-in guest into a host. Returns fresh tokens carrying the host role (tokens with the old role stop working). Security definer: only admins may update users.role, and the new tokens come from app_private (app_private.sign_in_outcome).';

-- ---------------------------------------------------------------------------------------
-- Admin: user management
-- ---------------------------------------------------------------------------------------

create function api.user_list(p_search text default null, p_role text default null,
                               p_page text default null, p_page_size text default null, p_active text default null)
returns app.page
language plpgsql stable security invoker
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  if p_role is not null and p_role not in ('guest', 'host', 'admin') then
    perform app.invalid('role', 'Choose guest, host or admin.');
  end if;
  if p_active is not null and p_active not in ('true', 'false') then
    perform app.invalid('active', 'Must be true or false.');
  end if;
  select coalesce(max(x.total), 0), coalesce(json_agg(app.user_json(x.u) order by (x.u).created_at desc, (x.u).id), '[]')
    into v_count, v_results
    from (select u, count(*) over () as total
            from app.users u
           where (p_role is null or u.role = p_role::app.user_role)
             and (p_active is null or u.is_active = p_active::boolean)
             and (p_search is null or u.email ilike '%' || p_search || '%'
                  or (u.first_name || ' ' || u.last_name) ilike '%' || p_search || '%')
           order by u.created_at desc, u.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.user_list(text, text, text, text, text) is
  'Admin: list users, newest first. Filters: search (email or name, any part, ignoring case), role, active (true|false). Paginated (page, page_size up to 100).';

create function api.user_update(p_id text, p_body jsonb) returns jsonb
language plpgsql volatile security invoker
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
  v_before app.users;
  v_user app.users;
  v_errors jsonb := '{}';
begin
  v_errors := app.check_choice(v_errors, p_body, 'role', array['guest', 'host', 'admin']);
  v_errors := app.check_boolean(v_errors, p_body, 'active');
  perform app.raise_errors(v_errors);
  select * into v_before from app.users where id = v_id;
  if v_before.id is null then
    perform app.fail(404, 'Not found.');
  end if;
  update app.users u set
    role = coalesce((p_body ->> 'role')::app.user_role, u.role),
    is_active = coalesce((p_body ->> 'active')::boolean, u.is_active)
  where u.id = v_id
  returning * into v_user;
  if v_user.role <> v_before.role or (v_before.is_active and not v_user.is_active) then
    perform app.end_sessions(v_id);
    select * into v_user from app.users where id = v_id;
  end if;
  return app.user_json(v_user);
end
$$;
comment on function api.user_update(text, jsonb) is
  'Admin: change a user''s role (guest|host|admin) or activity ({"active": false} deactivates). A role change or deactivation ends the user''s sessions.';

create function app_private.create_admin(p_email text, p_password text,
                                         p_first_name text default 'Admin', p_last_name text default 'User')
returns uuid
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_error text := app_private.password_errors(to_jsonb(p_password));
  v_id uuid;
begin
  if v_error is not null then
    raise exception 'password: %', v_error using errcode = '22023';
  end if;
  insert into app.users (email, first_name, last_name, role)
  values (btrim(p_email), p_first_name, p_last_name, 'admin')
  on conflict (lower(email)) do update set role = 'admin', is_active = true
  returning id into v_id;
  insert into app_private.credentials (user_id, password_hash)
  values (v_id, app_private.hash_password(p_password))
  on conflict (user_id) do update set password_hash = excluded.password_hash, updated_at = now();
  return v_id;
end
$$;
comment on function app_private.create_admin(text, text, text, text) is
  'Owner only (make createadmin, or psql): create an administrator, or promote and reset the password of an existing account with that email. Admins are never self-registered.';

-- ---------------------------------------------------------------------------------------
-- The contract (OpenAPI; sql/functions/03_contract.sql): what these functions take and return
-- ---------------------------------------------------------------------------------------

select app.api_schema('User', 'A user as they and admins see them (app.user_json): private fields included, never a password.', '{
  "id": "uuid", "email": "email", "first_name": "string", "last_name": "string", "phone_number": "string?",
  "role": "guest|host|admin", "photo_url": "string?", "photo": "Image?", "preferences": {"type": "object"}, "is_active": "boolean",
  "created_at": "date-time", "updated_at": "date-time"}');
select app.api_schema('Tokens', 'A signed-in session: a short-lived access token (the Bearer) and a rotating refresh token.', '{
  "access": "string", "refresh": "string", "token_type": {"type": "string", "const": "Bearer"}, "expires_in": "integer",
  "refresh_expires_in": "integer?", "user": {"id": "uuid", "role": "guest|host|admin"}}');
select app.api_schema('PublicUser', 'Another user as anyone may see them: first name and photo only.', '{
  "id": "uuid", "first_name": "string", "photo_url": "string?"}');

select app.api_operation('api.register', rate => 'signup', response => '"User"', errors => '{409}',
  body => '{"email": "email", "password": {"type": "string", "minLength": 8, "maxLength": 72, "description": "8 characters or more, at most 72 bytes (UTF-8)."}, "first_name": "string(1..100)", "last_name": "string(1..100)",
            "role?": "guest|host", "phone_number?": {"type": ["string", "null"], "pattern": "^( *|\\+?[0-9 ()-]{6,20})$"}}',
  example => '{"email": "ada@example.com", "password": "correct horse battery", "first_name": "Ada", "last_name": "Lovelace", "role": "guest"}');
select app.api_operation('api.login', response => '"Tokens"',
  body => '{"email": "string(1..)", "password": "string(1..)"}',
  example => '{"email": "ada@example.com", "password": "correct horse battery"}');
select app.api_operation('api.token_refresh', response => '"Tokens"', body => '{"refresh": "string"}');
select app.api_operation('api.token_revoke', body => '{"refresh?": "string"}');
select app.api_operation('api.token_revoke_all');
select app.api_operation('api.me', response => '"User"');
select app.api_operation('api.me_update', response => '"User"',
  body => '{"first_name?": "string(1..100)", "last_name?": "string(1..100)", "phone_number?": {"type": ["string", "null"], "pattern": "^( *|\\+?[0-9 ()-]{6,20})$"},
            "preferences?": {"type": "object", "maxProperties": 50,
              "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_.-]{0,63}$"},
              "properties": {"notifications": {"type": "object", "additionalProperties": {"type": "object",
                "properties": {"email": {"type": "boolean"}, "in_app": {"type": "boolean"}}, "additionalProperties": false},
                "propertyNames": {"$ref": "#/components/schemas/NotificationType"}}},
              "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": 500}}}');
select app.api_operation('api.me_deactivate');
select app.api_operation('api.me_set_photo', rate => 'upload', response => '"User"');
select app.api_operation('api.me_remove_photo');
select app.api_operation('api.become_host', response => '"Tokens"', errors => '{409}');
select app.api_operation('api.user_list', response => '"User"',
  parameters => '{"search": {"type": "string", "description": "Any part of the email or the name, ignoring case."}, "role": "guest|host|admin", "active": {"type": "string", "enum": ["true", "false"]}}');
select app.api_operation('api.user_update', response => '"User"', body => '{"role?": "guest|host|admin", "active?": "boolean"}');
