/*
 * Accounts: who may see and change users.
 *
 * A signed-in user sees and edits only their own row, and only the profile columns
 * (column-level grants); admins see all and may change role and activity. Anonymous
 * requests see no user. app_private tables are granted to no client role at all: only
 * SECURITY DEFINER functions (owned by the owner) reach them.
 */

grant select on app.users to guest, host, admin;
grant update (first_name, last_name, phone_number, preferences, photo_path, photo_size_bytes, photo_width, photo_height,
  photo_placeholder, photo_variants) on app.users to guest, host, admin;
grant update (role, is_active) on app.users to admin;

create policy select_own on app.users for select to guest, host
  using (id = (select app.current_user_id()));
create policy update_own on app.users for update to guest, host
  using (id = (select app.current_user_id()))
  with check (id = (select app.current_user_id()));
create policy all_as_admin on app.users for all to admin
  using (true) with check (true);

grant execute on function app.user_json(app.users), app.end_sessions(uuid) to guest, host, admin;
grant execute on function app.profile_errors(jsonb, boolean), app.preferences_problem(jsonb) to anon, guest, host, admin;

grant execute on function api.register(jsonb), api.login(jsonb, text), api.token_refresh(jsonb),
  api.token_revoke(jsonb)
  to anon, guest, host, admin;
grant execute on function api.token_revoke_all(), api.me(), api.me_update(jsonb), api.me_deactivate(),
  api.me_set_photo(text, text, int, int, int, text), api.me_remove_photo()
  to guest, host, admin;
grant execute on function api.become_host() to guest;
grant execute on function api.user_list(text, text, text, text, text), api.user_update(text, jsonb) to admin;
