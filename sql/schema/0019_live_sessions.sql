/*
 * 0019 live sessions: an access token lives only as long as the sign-in session it came from.
 *
 * Why: an access token carried only its user's session epoch, which revoke-all, deactivation
 * and demotion bump; signing out one session (POST /api/token/revoke/, the dashboard's sign-out)
 * and refresh-token reuse revoke only that session's refresh-token family, so its access token
 * still answered 200 for up to ACCESS_TOKEN_TTL. Access tokens now name their session (claim
 * "sid": the refresh-token family), and ending a session records it on the user's row, which
 * app.check_session reads anyway: the check costs no extra probe on any signed-in request
 * (a probe of the refresh tokens cost ~15 us per request; measured in bench/README.md).
 *
 * Guarantees after this file: every user has an (empty) record of ended sessions.
 */

alter table app.users add column ended_sessions jsonb not null default '{}'
  check (jsonb_typeof(ended_sessions) = 'object');
comment on column app.users.ended_sessions is
  'Sessions of this user ended within the last day, {"<session id>": <epoch seconds when ended>}: an access token whose "sid" is here is refused at once (app.check_session). Kept a day, past any access token''s life (ACCESS_TOKEN_TTL is at most a day); written only by app_private.end_session. Private.';
