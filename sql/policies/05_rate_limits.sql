/*
 * Rate limits: each request takes a token as the client role it runs as (api/db.py
 * SET_CONTEXT switches the role, then calls app.rate_take). Nothing else reaches the buckets.
 */

grant execute on function app.rate_take(text, text) to anon, guest, host, admin;
