/*
 * Notifications: each user reads and marks read their own; nothing else is writable.
 *
 * Rows are made only by app_private.notify (as the owner, from triggers). A client role
 * may change read_at of its own rows and nothing else. Templates, settings and the local
 * email outbox are private (the owner: the worker and DBAs).
 */

grant select, update (read_at) on app.notifications to guest, host, admin;
create policy select_own on app.notifications for select to guest, host, admin
  using (user_id = (select app.current_user_id()));
create policy update_own on app.notifications for update to guest, host, admin
  using (user_id = (select app.current_user_id())) with check (user_id = (select app.current_user_id()));

-- Helpers the invoker functions need:
grant execute on function app.notification_json(app.notifications), app.notification_title(text, jsonb)
  to guest, host, admin;

-- The endpoints (api/routes.py, "notifications" block):
grant execute on function api.notification_list(text, text, text), api.notification_since(text),
  api.notification_read(text), api.notification_read_all(), api.notification_unread_count(),
  api.notification_preferences_get(), api.notification_preferences_set(jsonb)
  to guest, host, admin;
grant execute on function api.notification_dead(text, text), api.notification_resend(text) to admin;
