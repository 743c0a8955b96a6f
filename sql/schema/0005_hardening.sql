/*
 * 0005 hardening: a role for calls only the API may make, and unique photo paths.
 *
 * Why: a few SECURITY DEFINER functions act on facts that only the API process can
 * establish (an OAuth provider verified an identity; a PKCE verifier may be handed
 * back for a state). Granted to anon, anyone able to call api functions as anon could
 * assert those facts. They are granted to `api_internal` instead: NOLOGIN, reachable
 * only by the authenticator's SET ROLE, used by api/oauth.py for exactly these calls.
 *
 * Photo files are named by the API (random, unique); a path recorded twice would let
 * deleting one record remove a file the other still shows. Unique indexes forbid it.
 */

do $$
begin
  if not exists (select from pg_roles where rolname = 'api_internal') then
    create role api_internal nologin noinherit;
  end if;
end
$$;
grant api_internal to authenticator;
grant usage on schema api, app to api_internal;
comment on role api_internal is 'Calls only the API process may make, on facts it verified itself (OAuth identities, PKCE verifiers). Reachable only through the authenticator; no client role has it.';

create unique index product_photos_path_key on app.product_photos (path);
create unique index users_photo_path_key on app.users (photo_path);
