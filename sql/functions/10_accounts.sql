/*
 * Accounts: sessions are checked here on every signed-in request.
 */

create trigger users_set_updated_at before update on app.users
  for each row execute function app.tg__set_updated_at();

create function app.check_session() returns void
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_claims jsonb := app.current_claims();
  v_ok boolean;
begin
  select u.is_active
         and u.role::text = v_claims ->> 'role'
         and u.session_epoch::text = coalesce(v_claims ->> 'sev', '0')
    into v_ok
    from app.users u
   where u.id = (v_claims ->> 'sub')::uuid;
  if v_ok is not true then
    perform app.fail(401, 'Invalid or expired token.');
  end if;
end
$$;
comment on function app.check_session() is
  'Run by the API before each signed-in call: the token''s user must exist, be active, still hold the token''s role, and the token''s session epoch ("sev") must be the user''s current session_epoch (revoke-all and deactivation bump it). Raises PT401 otherwise. SECURITY DEFINER: it reads users whatever the caller may see.';
grant execute on function app.check_session() to guest, host, admin;
