/*
 * Rate limits: the token bucket every API request takes from, in its own round trip.
 *
 * The API takes the token as its login role, first in the statement that then switches to the
 * client's role (api/db.py CONTEXT): one statement per request instead of two, which is most of
 * what the limit cost the API (make bench prints the cost). STRICT: the API's internal calls
 * pass nulls and the function is not even entered.
 */

create function app.rate_take(p_class text, p_caller text) returns void
language plpgsql volatile strict security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_limit app_private.rate_limits;
  v_per_second double precision;
  v_tokens double precision;
begin
  select * into v_limit from app_private.rate_limits l where l.class = p_class and l.enabled;
  if not found then
    return;
  end if;
  v_per_second := v_limit.per_minute / 60.0;
  insert into app_private.rate_buckets as b (key, tokens, updated_at)
  values (p_class || ':' || p_caller, v_limit.capacity - 1, clock_timestamp())
  on conflict (key) do update
     set tokens = least(v_limit.capacity::double precision,
                        b.tokens + extract(epoch from clock_timestamp() - b.updated_at) * v_per_second) - 1,
         updated_at = clock_timestamp()
  returning b.tokens into v_tokens;
  if v_tokens < 0 then
    -- Refused: this transaction rolls back, so the refused request takes nothing.
    raise exception using
      errcode = 'PT429',
      message = 'Too many requests; slow down.',
      hint = format(E'Retry-After: %s\nRateLimit-Limit: %s\nRateLimit-Remaining: 0\nRateLimit-Reset: %s\nRateLimit-Policy: %s;w=%s',
                    greatest(1, ceil(-v_tokens / v_per_second))::int, v_limit.capacity,
                    greatest(1, ceil(-v_tokens / v_per_second))::int, v_limit.capacity,
                    ceil(v_limit.capacity / v_per_second)::int);
  end if;
end
$$;
comment on function app.rate_take(text, text) is
  'Take one token from the bucket of route class p_class and caller p_caller (u:<user id> or a:<client address>), run first in every API request''s round trip, by the API''s login role before it switches to the client''s (api/db.py). An empty bucket raises 429 with Retry-After and RateLimit-Limit, -Remaining, -Reset and -Policy (IETF draft) in the HINT, which api/errors.py turns into headers. Nulls (internal calls; STRICT) and classes without an enabled row are not limited. SECURITY DEFINER: the buckets are private.';

create function app_private.rate_buckets_purge() returns integer
language sql volatile security definer
set search_path = pg_catalog, pg_temp
as $$
  with gone as (delete from app_private.rate_buckets where updated_at < now() - interval '1 day' returning 1)
  select count(*)::int from gone
$$;
comment on function app_private.rate_buckets_purge() is 'Delete buckets idle for a day (they would be full anyway). Run by the minute job.';
