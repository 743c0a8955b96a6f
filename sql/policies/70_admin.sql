/*
 * Admin: the dashboard's extra reads and the audit log. All admin-only; the dashboard's
 * writes are the API's own functions (their grants are in the domain files).
 */

grant execute on function api.audit_list(text, text, text, text, text), api.admin_overview(),
  api.admin_products(text, text, text, text, text, text, text, text), api.admin_user(text), api.user_sessions_end(text),
  api.admin_booking(text), api.admin_payment(text), api.admin_system()
  to admin;
grant execute on function api.server_error_record(text, text, text, int) to api_internal;
-- app.tg__audit and app_private.audit_log stay with the owner: the trigger writes, api.audit_list reads.
