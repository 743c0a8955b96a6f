/*
 * 0019 live sessions: an access token lives only as long as the sign-in session it came from.
 *
 * Why: an access token carried only its user's session epoch, which revoke-all, deactivation
 * and demotion bump; signing out one session (POST /api/token/revoke/, the dashboard's sign-out)
 * and refresh-token reuse revoke only that session's refresh-token family, so its access token
 * still answered 200 for up to ACCESS_TOKEN_TTL. Access tokens now name their session (claim
 * "sid": the refresh-token family) and app.check_session requires a live token in that family.
 *
 * Guarantees after this file: "is this session live?" is one probe of this partial index
 * (family, expiry) over the unrevoked tokens only, however many rotations a family has had.
 */

create index refresh_tokens_live_family_idx on app_private.refresh_tokens (family_id, expires_at)
  where revoked_at is null;
comment on index app_private.refresh_tokens_live_family_idx is
  'The live sessions: unrevoked refresh tokens by family and expiry; app.check_session probes it on every signed-in request.';
