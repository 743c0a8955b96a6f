/*
 * The owner sees and changes every row.
 *
 * RLS is forced on every table, so it binds the owner too; without a policy the owner
 * would see nothing. The owner is the DBA in psql and the definer of the few SECURITY
 * DEFINER functions (login, session checks, jobs), which must read past the caller's
 * policies. This file runs last and covers every table in app and app_private, new
 * ones included. The owner is whoever runs the migrations (current_user here).
 */

do $$
declare
  v record;
begin
  for v in
    select n.nspname, c.relname
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('app', 'app_private') and c.relkind in ('r', 'p')
  loop
    execute format('create policy all_as_owner on %I.%I to %I using (true) with check (true)',
                   v.nspname, v.relname, current_user);
  end loop;
end
$$;
