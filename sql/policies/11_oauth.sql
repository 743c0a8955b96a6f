/*
 * OAuth sign-in: who may call the flow's functions.
 *
 * Starting a flow asserts nothing, so anonymous callers may (GET /api/auth/{provider}/login).
 * Completing one hands back a PKCE verifier, and signing in asserts that a provider vouched
 * for an identity: only the API process can establish those facts, so they are granted to
 * api_internal (NOLOGIN, reachable only through the authenticator; see
 * sql/schema/0005_hardening.sql), never to a client role.
 */

grant execute on function api.oauth_begin(text, text, text, text) to anon;
grant execute on function api.oauth_complete(text, text) to api_internal;
grant execute on function api.oauth_sign_in(text, text, text, boolean, text, text) to api_internal;
