/*
 * OAuth / OpenID Connect sign-in (Google, Facebook): the rules of who a provider's user is here.
 *
 * Python (api/oauth.py) speaks the protocol: it redirects to the provider, exchanges the code,
 * verifies the ID token or asks the Graph `me` endpoint, and signs our access token. Everything
 * that decides anything lives here:
 *   - a pending flow (state + PKCE verifier + redirect URI) is stored by api.oauth_begin and
 *     consumed exactly once, within auth_settings.oauth_flow_seconds (default 10 minutes),
 *     by api.oauth_complete;
 *   - api.oauth_sign_in maps the provider's (provider, subject) to one of our users: a known
 *     identity signs in its user; otherwise a verified email that matches an account (any letter
 *     case) links the identity to it; otherwise a new guest is created (no password) and linked.
 *     An email the provider has not verified is never linked nor used to create an account
 *     (that would let anyone claim someone else's address).
 *
 * Guarantees: states are single use and expire; one (provider, subject) maps to one user, also
 * under concurrent first sign-ins; a deactivated user cannot sign in; the outcome has the same
 * shape as the password login's (app_private.sign_in_outcome / app_private.refusal from
 * 10_accounts.sql), so the API turns both into tokens the same way.
 * All three api functions run as anon only (the API calls them without a token), and are
 * SECURITY DEFINER because the flow and identity tables live in app_private.
 */

create function api.oauth_begin(p_provider text, p_state text, p_code_verifier text, p_redirect_uri text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_lifetime int := (app_private.auth_config()).oauth_flow_seconds;
begin
  if p_provider is null or p_provider !~ '^[a-z][a-z0-9_]{1,31}$' then
    perform app.fail(400, 'Unknown provider.', 'provider');
  end if;
  if p_state is null or p_state !~ '^[A-Za-z0-9_-]{22,128}$' then
    perform app.fail(400, 'Invalid state.', 'state');
  end if;
  -- RFC 7636: 43 to 128 characters of [A-Z a-z 0-9 - . _ ~].
  if p_code_verifier is null or p_code_verifier !~ '^[A-Za-z0-9._~-]{43,128}$' then
    perform app.fail(400, 'Invalid code verifier.', 'code_verifier');
  end if;
  if p_redirect_uri is null or p_redirect_uri !~ '^https?://[^\s]+$' or pg_catalog.length(p_redirect_uri) > 2000 then
    perform app.fail(400, 'Invalid redirect URI.', 'redirect_uri');
  end if;
  -- Opportunistic purge: abandoned flows never outlive their validity by long.
  delete from app_private.oauth_states where created_at < pg_catalog.now() - pg_catalog.make_interval(secs => v_lifetime);
  insert into app_private.oauth_states (state, provider, code_verifier, redirect_uri)
  values (p_state, p_provider, p_code_verifier, p_redirect_uri);
  return pg_catalog.jsonb_build_object('expires_in', v_lifetime);
end
$$;
comment on function api.oauth_begin(text, text, text, text) is
  'Start an OAuth sign-in (GET /api/auth/{provider}/login): remember the random state, its PKCE code verifier and the callback URI for auth_settings.oauth_flow_seconds (default 600), single use. Returns {"expires_in": seconds} (the API gives its state cookie that lifetime). Expired flows are purged on the way. Security definer: the flows live in app_private.oauth_states, which no client role may reach.';

create function api.oauth_complete(p_provider text, p_state text) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_result jsonb;
begin
  delete from app_private.oauth_states s
   where s.state = p_state
     and s.provider = p_provider
     and s.created_at >= pg_catalog.now() - pg_catalog.make_interval(secs => (app_private.auth_config()).oauth_flow_seconds)
  returning pg_catalog.jsonb_build_object('code_verifier', s.code_verifier, 'redirect_uri', s.redirect_uri)
    into v_result;
  if v_result is null then
    perform app.fail(400, 'Invalid or expired state.', 'state');
  end if;
  return v_result;
end
$$;
comment on function api.oauth_complete(text, text) is
  'Consume a pending OAuth sign-in by its state (the provider''s callback): returns {"code_verifier", "redirect_uri"} for the code exchange. A state works once, for auth_settings.oauth_flow_seconds (default 600), with the provider it was issued for; anything else is a 400 naming `state`. Security definer: the flows live in app_private.oauth_states, which no client role may reach.';

create function api.oauth_sign_in(
  p_provider text, p_subject text, p_email text, p_email_verified boolean, p_first_name text, p_last_name text)
returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_email text := nullif(pg_catalog.btrim(p_email), '');
  v_user_id uuid;
  v_user app.users;
begin
  if p_provider is null or p_provider !~ '^[a-z][a-z0-9_]{1,31}$' then
    perform app.fail(400, 'Unknown provider.', 'provider');
  end if;
  if p_subject is null or pg_catalog.length(p_subject) not between 1 and 255 then
    perform app.fail(400, 'The provider did not identify the user.', 'subject');
  end if;

  select i.user_id into v_user_id
    from app_private.oauth_identities i
   where i.provider = p_provider and i.subject = p_subject;

  if v_user_id is null then
    -- A new identity: only an address the provider vouches for may link or create an account.
    if v_email is null or p_email_verified is not true then
      return app_private.refusal(403, 'The provider did not share a verified email address for this account.');
    end if;

    select u.id into v_user_id from app.users u where pg_catalog.lower(u.email) = pg_catalog.lower(v_email);
    if v_user_id is null then
      insert into app.users (email, first_name, last_name, role)
      values (v_email,
              pg_catalog.left(coalesce(nullif(pg_catalog.btrim(p_first_name), ''),
                                       pg_catalog.split_part(v_email, '@', 1)), 100),
              pg_catalog.left(coalesce(nullif(pg_catalog.btrim(p_last_name), ''), '-'), 100),
              'guest')
      on conflict ((pg_catalog.lower(email))) do nothing
      returning id into v_user_id;
      if v_user_id is null then
        -- Created concurrently by another request: link to that account.
        select u.id into v_user_id from app.users u where pg_catalog.lower(u.email) = pg_catalog.lower(v_email);
      else
        insert into app_private.credentials (user_id, password_hash) values (v_user_id, null);
      end if;
    end if;
    if exists (select from app.users u where u.id = v_user_id and u.role = 'admin') then
      -- An administrator's account is never taken over by whoever controls the email at a provider.
      return app_private.refusal(403, 'This account cannot be linked to a provider; sign in with your password.');
    end if;

    insert into app_private.oauth_identities (provider, subject, user_id, email)
    values (p_provider, p_subject, v_user_id, v_email)
    on conflict (provider, subject) do nothing;
    -- Whoever linked first wins (two concurrent first sign-ins of one identity).
    select i.user_id into v_user_id
      from app_private.oauth_identities i
     where i.provider = p_provider and i.subject = p_subject;
  end if;

  select * into v_user from app.users u where u.id = v_user_id;
  if not v_user.is_active then
    return app_private.refusal(401, 'This account has been deactivated.');
  end if;

  return app_private.sign_in_outcome(v_user);
end
$$;
comment on function api.oauth_sign_in(text, text, text, boolean, text, text) is
  'Sign in with an identity a provider has vouched for (GET /api/auth/{provider}/callback, after the code exchange and ID-token check): a known (provider, subject) signs in its user; otherwise a verified email matching an account (any letter case) links the identity to it; otherwise a new guest without a password is created and linked. Returns the login outcome {"ok": true, "user_id", "role", "epoch", "refresh", "refresh_expires_in"}, or {"ok": false, "status", "detail"} for an unverified or missing email (403) or a deactivated account (401). Security definer: identities, credentials and refresh tokens live in app_private, which no client role may reach, and it creates users.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_parameter('provider', 'A configured sign-in provider, e.g. google or facebook.', '"string(1..40)"');
select app.api_operation('api.oauth_begin', rate => 'read', errors => '{502}');
select app.api_operation('api.oauth_sign_in', rate => 'read', response => '"Tokens"', errors => '{403, 502}',
  parameters => '{"code": {"required": true, "schema": "string(1..2000)", "description": "The provider''s authorization code."},
                  "state": {"required": true, "schema": "string(1..200)", "description": "The state of the flow begun at /login, as its cookie holds it."},
                  "error": {"type": "string", "maxLength": 200, "description": "Set by the provider when the sign-in was cancelled or refused: then the answer is 400."}}');
