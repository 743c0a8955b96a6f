/*
 * Calendar sync: who may call what. Feeds and export tokens live in app_private, out of every
 * client role's reach: the SECURITY DEFINER functions in sql/functions/32_calendar_sync.sql
 * check the caller (the listing's host or an admin) and show them; the export by token is for
 * anyone who holds the token. No table grant here.
 */

-- The secret export URL is the credential: anyone may present it.
grant execute on function api.calendar_export(text) to anon, guest, host, admin;

-- The listing's host or an admin (app.product_owned inside each).
grant execute on function api.product_ical_export(text, text), api.product_ical_export_rotate(text, text),
  api.calendar_feed_list(text, text, text), api.calendar_feed_add(text, jsonb), api.calendar_feed_delete(text, text)
  to host, admin;
-- app_private.calendar_schedule, calendar_feed_plan and calendar_feed_apply are the worker's (the owner).
