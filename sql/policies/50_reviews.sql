/*
 * Reviews: who may read them and call the review functions.
 *
 * Reviews are written only by the SECURITY DEFINER functions in sql/functions/50_reviews.sql,
 * so no client role holds insert, update or delete on app.reviews. Visible reviews are
 * public; a hidden one stays readable by its author, the listing's host and admins.
 */

grant select on app.reviews to anon, guest, host, admin;
create policy select_visible on app.reviews for select to anon, guest, host, admin using (hidden_at is null);
create policy select_own on app.reviews for select to guest, host, admin
  using (guest_id = (select app.current_user_id()));
create policy select_as_host on app.reviews for select to host, admin
  using (host_id = (select app.current_user_id()));
create policy select_as_admin on app.reviews for select to admin using (true);

-- Helpers the invoker functions need:
grant execute on function app.reviewer_profiles(uuid[]), app.review_json(app.reviews, text, text),
  app.review_detail(uuid)
  to anon, guest, host, admin;

-- The endpoints (api/routes.py, "reviews" block):
grant execute on function api.product_reviews(text, text, text, text) to anon, guest, host, admin;
grant execute on function api.review_list(text, text, text, text) to guest, host, admin;
grant execute on function api.review_create(text, jsonb) to guest, host, admin;
grant execute on function api.review_update(text, jsonb) to guest, host, admin;
grant execute on function api.review_respond(text, jsonb) to guest, host, admin;
grant execute on function api.review_hide(text, jsonb), api.review_unhide(text) to admin;
