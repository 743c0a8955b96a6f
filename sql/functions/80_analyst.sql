/*
 * The analyst's limits, enforced from outside its session.
 *
 * The analyst logs in with psql for read-only, time-limited queries on the analytics views. Its
 * limits cannot be made unchangeable inside PostgreSQL 15 (any role may SET statement_timeout,
 * and ALTER ROLE itself SET ...), so the worker runs app_private.enforce_analyst_limits() every
 * few seconds as the owner (a member of analyst, so it may signal the analyst's backends):
 *   - a statement running past analyst_settings.statement_seconds is cancelled;
 *   - a transaction idle past idle_in_transaction_seconds has its session ended (it held a
 *     snapshot and locks, which would hold back vacuum and a migration);
 *   - the role's defaults (read-only, the two timeouts), and nothing else, are put back.
 * A limit is thus exceeded by at most the worker's period (api/worker.py, ANALYST_CHECK_SECONDS).
 */

create function app_private.analyst_config() returns app_private.analyst_settings
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select s from app_private.analyst_settings s where s.id
$$;
comment on function app_private.analyst_config() is 'The analyst''s limits (app_private.analyst_settings).';

create function app_private.analyst_defaults() returns text[]
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select array['default_transaction_read_only=on',
               format('statement_timeout=%ss', (app_private.analyst_config()).statement_seconds),
               format('idle_in_transaction_session_timeout=%ss', (app_private.analyst_config()).idle_in_transaction_seconds)]
$$;
comment on function app_private.analyst_defaults() is
  'The analyst role''s session defaults as pg_db_role_setting lists them: read-only transactions and the two timeouts of app_private.analyst_settings.';

create function app_private.analyst_defaults_apply() returns boolean
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_setting record;
begin
  -- Already exactly the defaults (role-wide, nothing per database): nothing to do.
  if (select coalesce(array_agg(c order by c), '{}') from pg_db_role_setting s, unnest(s.setconfig) c
       where s.setrole = 'analyst'::regrole and s.setdatabase = 0)
       = (select array_agg(c order by c) from unnest(app_private.analyst_defaults()) c)
     and not exists (select from pg_db_role_setting s where s.setrole = 'analyst'::regrole and s.setdatabase <> 0) then
    return false;
  end if;
  for v_setting in select d.datname from pg_db_role_setting s join pg_database d on d.oid = s.setdatabase
                    where s.setrole = 'analyst'::regrole loop
    execute format('alter role analyst in database %I reset all', v_setting.datname);
  end loop;
  alter role analyst reset all;
  execute format('alter role analyst set statement_timeout = %L', (app_private.analyst_config()).statement_seconds || 's');
  execute format('alter role analyst set idle_in_transaction_session_timeout = %L',
                 (app_private.analyst_config()).idle_in_transaction_seconds || 's');
  alter role analyst set default_transaction_read_only = on;
  return true;
end
$$;
comment on function app_private.analyst_defaults_apply() is
  'Make the analyst role''s session defaults exactly app_private.analyst_defaults() (whatever the analyst set with ALTER ROLE, role-wide or per database, is reset); true when something had to change. Owner only: run by a migrate that re-applies the code and by app_private.enforce_analyst_limits (the worker, every 5 seconds).';

create function app_private.enforce_analyst_limits() returns jsonb
language plpgsql volatile security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_cfg app_private.analyst_settings := app_private.analyst_config();
  v_canceled int;
  v_ended int;
begin
  select count(*) filter (where pg_cancel_backend(a.pid)) into v_canceled
    from pg_stat_activity a
   where a.usename = 'analyst' and a.state = 'active'
     and a.query_start < clock_timestamp() - make_interval(secs => v_cfg.statement_seconds);
  select count(*) filter (where pg_terminate_backend(a.pid)) into v_ended
    from pg_stat_activity a
   where a.usename = 'analyst' and a.state like 'idle in transaction%'
     and a.state_change < clock_timestamp() - make_interval(secs => v_cfg.idle_in_transaction_seconds);
  return jsonb_build_object('canceled', v_canceled, 'ended', v_ended, 'defaults_restored', app_private.analyst_defaults_apply());
end
$$;
comment on function app_private.enforce_analyst_limits() is
  'Hold the analyst to app_private.analyst_settings whatever it set for itself: cancel its statements running past statement_seconds, end its sessions idle in a transaction past idle_in_transaction_seconds, and restore its role defaults. Returns {canceled, ended, defaults_restored}. Run by the worker every few seconds as the owner (a member of analyst); from psql: select app_private.enforce_analyst_limits();';
