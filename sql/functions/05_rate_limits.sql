/*
 * Rate limits: the token bucket every API request takes from, in its own round trip, or
 * admitted under its worker's lease and debited afterwards in a batch (app.rate_settle).
 *
 * The API takes the token as its login role, first in the statement that then switches to the
 * client's role (api/db.py CONTEXT): one statement per request instead of two, which is most of
 * what the limit cost the API (make bench prints the cost). STRICT: the API's internal calls
 * pass nulls and the function is not even entered.
 */

create function app_private.rate_spend(p_limit app_private.rate_limits, p_caller text, p_count integer)
returns double precision
language plpgsql volatile security invoker  -- plpgsql: its plan is cached per session (a sql one is planned per call)
as $$
declare
  v_tokens double precision;
begin
  insert into app_private.rate_buckets as b (key, tokens, updated_at)
  values (p_limit.class || ':' || p_caller, p_limit.capacity - p_count, clock_timestamp())
  on conflict (key) do update
     set tokens = least(p_limit.capacity::double precision,
                        b.tokens + extract(epoch from clock_timestamp() - b.updated_at) * p_limit.per_minute / 60.0)
                  - p_count,
         updated_at = clock_timestamp()
  returning b.tokens into v_tokens;
  return v_tokens;
end
$$;
comment on function app_private.rate_spend(app_private.rate_limits, text, integer) is
  'Refill the bucket of (p_limit.class, p_caller) for the time since it was last spent, then take p_count tokens; the tokens left (below zero when more were taken than it held). The one place buckets are written: app.rate_take and app.rate_settle call it as their owner.';

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
  v_tokens := app_private.rate_spend(v_limit, p_caller, 1);
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
  'Take one token from the bucket of route class p_class and caller p_caller (u:<user id> or a:<client address>), run first in every API request''s round trip, by the API''s login role before it switches to the client''s (api/db.py). An empty bucket raises 429 with Retry-After and RateLimit-Limit, -Remaining, -Reset and -Policy (IETF draft) in the HINT, which api/errors.py turns into headers. Nulls (internal calls; STRICT) and classes without an enabled row are not limited. Security definer: the buckets are in app_private, which no client role may reach.';

create function app.rate_settle(p_classes text[], p_callers text[], p_counts integer[]) returns jsonb
language plpgsql volatile security definer
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
  v_result jsonb;
begin
  -- Set-based: one update and one insert for the whole batch (a loop cost several times as much
  -- per caller). PL/pgSQL so that the statement is planned once per session: as a SQL function
  -- (with SET) it was planned on every call, ~15 ms under load, more than the batch itself.
  with spent as (
    select s.class, s.caller, s.class || ':' || s.caller as key, sum(s.n)::integer as n, l.capacity, l.per_minute
      from unnest(p_classes, p_callers, p_counts) as s(class, caller, n)
      join app_private.rate_limits l on l.class = s.class and l.enabled
     group by s.class, s.caller, l.capacity, l.per_minute
  ), updated as (
    update app_private.rate_buckets b
       set tokens = least(s.capacity::double precision,
                          b.tokens + extract(epoch from clock_timestamp() - b.updated_at) * s.per_minute / 60.0)
                    - s.n,
           updated_at = clock_timestamp()
      from spent s
     where b.key = s.key
    returning s.class, s.caller, b.tokens
  ), inserted as (
    -- New buckets. Another worker settling the same new caller at the same moment: subtract ours
    -- from its row (what ours would have held, capacity - n, says how much we spent).
    insert into app_private.rate_buckets as b (key, tokens, updated_at)
    select s.key, s.capacity - s.n, clock_timestamp()
      from spent s
     where not exists (select from updated u where u.class = s.class and u.caller = s.caller)
    on conflict (key) do update
       set tokens = b.tokens - ((select l.capacity from app_private.rate_limits l
                                  where l.class = split_part(b.key, ':', 1)) - excluded.tokens)
    returning b.key, b.tokens
  )
  select jsonb_build_object(
    'leases', (select coalesce(jsonb_object_agg(l.class, l.lease), '{}') from app_private.rate_limits l
                where l.enabled and l.lease > 0),
    'blocked', coalesce((select jsonb_agg(jsonb_build_array(u.class, u.caller)) from updated u where u.tokens < 1), '[]')
               || coalesce((select jsonb_agg(jsonb_build_array(s.class, s.caller)) from inserted i
                              join spent s on s.key = i.key where i.tokens < 1), '[]'))
    into v_result;
  return v_result;
end
$$;
comment on function app.rate_settle(text[], text[], integer[]) is
  'Debit the requests an API worker admitted under its leases (p_counts[i] for class p_classes[i] and caller p_callers[i]) from their buckets, in one transaction a few times a second (api/ratelimit.py). Returns {"leases": {class: lease} for the enabled classes with a lease, "blocked": [[class, caller], ...] whose bucket is now empty}; the worker sends those callers'' next requests through app.rate_take, which refuses them with its 429 until the bucket refills. Security definer: the buckets are in app_private, which no client role may reach; only api_internal may call it.';

create function app_private.rate_buckets_purge() returns integer
language sql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
  with gone as (delete from app_private.rate_buckets where updated_at < now() - interval '1 day' returning 1)
  select count(*)::int from gone
$$;
comment on function app_private.rate_buckets_purge() is 'Delete buckets idle for a day (they would be full anyway). Run by the minute job.';
