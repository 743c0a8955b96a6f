/*
 * Bookings and the calendar: who may read what. Every write goes through the
 * SECURITY DEFINER functions in sql/functions/30_bookings.sql, which check the caller
 * explicitly, so no client role holds insert/update/delete on these tables.
 */

-- app.calendar_entries: the taken ranges are public (the catalog's free-dates filter runs
-- as anon); ids, reasons and who created them are not.
grant select (product_id, stay) on app.calendar_entries to anon, guest, host, admin;
create policy select_all on app.calendar_entries for select to anon, guest, host, admin using (true);

-- app.bookings: the guest sees their own, the host those of their listings, admins all.
grant select on app.bookings to guest, host, admin;
create policy select_own on app.bookings for select to guest, host, admin
  using (guest_id = (select app.current_user_id()));
create policy select_as_host on app.bookings for select to guest, host, admin
  using (host_id = (select app.current_user_id()));
create policy select_as_admin on app.bookings for select to admin using (true);

-- Functions. Helpers the invoker functions need:
grant execute on function app.booking_check_in(date),
  app.booking_refund(app.cancellation_policy, numeric, timestamptz, boolean, timestamptz, integer)
  to anon, guest, host, admin;
grant execute on function app.booking_json(app.bookings) to guest, host, admin;

-- The endpoints (api/routes.py, "bookings" block):
grant execute on function api.booking_create(jsonb, text), api.booking_get(text),
  api.booking_list(text, text, text, text, text, text, text, text, text), api.booking_confirm(text),
  api.booking_cancel(text, jsonb)
  to guest, host, admin;
grant execute on function api.product_availability(text, text, text) to anon, guest, host, admin;
grant execute on function api.product_block_dates(text, jsonb), api.product_unblock_dates(text, text)
  to host, admin;
-- app.booking_for_party(text) runs only inside the SECURITY DEFINER transitions (as the owner);
-- app.run_booking_jobs(timestamptz) and app_private.* stay with the owner.
