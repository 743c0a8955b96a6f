/*
 * Rate limits: each request takes a token in its first statement, before the switch to the
 * client's role (api/db.py CONTEXT), so the login role may call app.rate_take: the one thing it
 * may do besides switching roles. The function is SECURITY DEFINER; nothing else reaches the
 * buckets. The client roles keep EXECUTE for callers that switch role first (the bench's
 * pgbench transaction starts its sessions as anon). The API process debits what its workers
 * admitted under their leases as api_internal (app.rate_settle).
 */

grant usage on schema app to authenticator;
grant execute on function app.rate_take(text, text) to authenticator, anon, guest, host, admin;
grant execute on function app.rate_settle(text[], text[], integer[]) to api_internal;
