/*
 * Catalog: who may see and change currencies, categories, amenities, listings, photos.
 *
 * Everyone (anon included) reads currencies, categories, amenities and published
 * listings; a host also reads their own unpublished listings; admins read everything.
 * Listings are written by their host (host_id is the caller, checked here, not only in
 * the functions) or by an admin; categories by admins only. Ratings, ids and timestamps
 * are never in a client's column grants, so no body can write them. The owner's access
 * comes from sql/policies/99_owner.sql.
 */

-- app.currencies, app.amenities: reference data, read by everyone, changed by the owner.
grant select on app.currencies, app.amenities to anon, guest, host, admin;
create policy select_all on app.currencies for select to anon, guest, host, admin using (true);
create policy select_all on app.amenities for select to anon, guest, host, admin using (true);

-- app.categories: everyone reads; admins write.
grant select on app.categories to anon, guest, host, admin;
grant insert (name, slug, description), update (name, slug, description), delete on app.categories to admin;
create policy select_all on app.categories for select to anon, guest, host, admin using (true);
create policy insert_as_admin on app.categories for insert to admin with check (true);
create policy update_as_admin on app.categories for update to admin using (true) with check (true);
create policy delete_as_admin on app.categories for delete to admin using (true);

-- app.products: published ones public; hosts own theirs; admins all.
grant select on app.products to anon, guest, host, admin;
grant insert (host_id, category_id, name, description, location, price_per_night, currency, max_guests,
              cancellation_policy, published)
  on app.products to host, admin;
grant update (category_id, name, description, location, price_per_night, currency, max_guests,
              cancellation_policy, published)
  on app.products to host, admin;
grant delete on app.products to host, admin;
create policy select_published on app.products for select to anon, guest, host, admin using (published);
create policy select_own on app.products for select to host
  using (host_id = (select app.current_user_id()));
create policy insert_own on app.products for insert to host, admin
  with check (host_id = (select app.current_user_id()));
create policy update_own on app.products for update to host
  using (host_id = (select app.current_user_id()))
  with check (host_id = (select app.current_user_id()));
create policy delete_own on app.products for delete to host
  using (host_id = (select app.current_user_id()));
create policy all_as_admin on app.products for all to admin using (true) with check (true);

-- app.product_addresses: where a listing exactly is. Its host, admins, and a guest whose booking
-- of it is confirmed or completed read it; anonymous callers and everyone else see no row (anon
-- holds the grant so that a listing's detail can join it, and RLS answers with nothing).
grant select on app.product_addresses to anon, guest, host, admin;
grant insert (product_id, latitude, longitude, address), update (latitude, longitude, address), delete
  on app.product_addresses to host, admin;
create policy select_own on app.product_addresses for select to host
  using (exists (select from app.products p
                 where p.id = product_addresses.product_id and p.host_id = (select app.current_user_id())));
create policy select_booked on app.product_addresses for select to guest, host
  using (exists (select from app.bookings b
                 where b.product_id = product_addresses.product_id and b.guest_id = (select app.current_user_id())
                   and b.status in ('confirmed', 'completed')));
create policy insert_own on app.product_addresses for insert to host
  with check (exists (select from app.products p
                      where p.id = product_addresses.product_id and p.host_id = (select app.current_user_id())));
create policy update_own on app.product_addresses for update to host
  using (exists (select from app.products p
                 where p.id = product_addresses.product_id and p.host_id = (select app.current_user_id())))
  with check (exists (select from app.products p
                      where p.id = product_addresses.product_id and p.host_id = (select app.current_user_id())));
create policy delete_own on app.product_addresses for delete to host
  using (exists (select from app.products p
                 where p.id = product_addresses.product_id and p.host_id = (select app.current_user_id())));
create policy all_as_admin on app.product_addresses for all to admin using (true) with check (true);

-- app.product_amenities: which amenities a listing has is not sensitive; changed with the listing.
grant select on app.product_amenities to anon, guest, host, admin;
grant insert (product_id, amenity), delete on app.product_amenities to host, admin;
create policy select_all on app.product_amenities for select to anon, guest, host, admin using (true);
create policy insert_own on app.product_amenities for insert to host
  with check (exists (select from app.products p
                      where p.id = product_id and p.host_id = (select app.current_user_id())));
create policy delete_own on app.product_amenities for delete to host
  using (exists (select from app.products p
                 where p.id = product_id and p.host_id = (select app.current_user_id())));
create policy all_as_admin on app.product_amenities for all to admin using (true) with check (true);

-- app.product_photos: visible with their listing; changed by its host or an admin.
grant select on app.product_photos to anon, guest, host, admin;
grant insert (product_id, path, content_type, size_bytes, width, height, placeholder, position), delete
  on app.product_photos to host, admin;
create policy select_visible on app.product_photos for select to anon, guest, host, admin
  using (exists (select from app.products p where p.id = product_id));
create policy insert_own on app.product_photos for insert to host
  with check (exists (select from app.products p
                      where p.id = product_id and p.host_id = (select app.current_user_id())));
create policy delete_own on app.product_photos for delete to host
  using (exists (select from app.products p
                 where p.id = product_id and p.host_id = (select app.current_user_id())));
create policy all_as_admin on app.product_photos for all to admin using (true) with check (true);

-- Functions. Helpers are granted to the roles whose api functions call them.
grant execute on function
  app.category_find(text), app.category_json(app.categories), app.category_target(text),
  app.public_profiles(uuid[]),
  app.product_json(app.products, app.categories, text, text, jsonb, jsonb, jsonb, boolean, app.product_addresses),
  app.product_detail(uuid), app.product_access(uuid), app.product_page(uuid[], float8[]),
  app.parse_degrees(text, text, int, text), app.product_place_sql(text, text, text),
  app.product_filter_sql(text, text, text, text, text, text, text, text, text, text, text, text, text, boolean),
  app.product_list_sql(text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, boolean),
  app.product_facets_sql(text, text, text, text, text, text, text, text, text, text, text, text, text, boolean),
  api.category_list(text, text), api.category_get(text), api.amenity_list(text, text),
  api.product_list(text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text),
  api.product_facets(text, text, text, text, text, text, text, text, text, text, text, text, text),
  api.product_get(text)
  to anon, guest, host, admin;
grant execute on function
  app.product_owned(uuid), app.product_write(uuid, jsonb, boolean),
  api.product_create(jsonb), api.product_replace(text, jsonb), api.product_update(text, jsonb),
  api.product_delete(text), api.product_photo_add(text, text, text, int, int, int, text), api.product_photo_delete(text, text)
  to host, admin;
grant execute on function
  app.category_write(uuid, jsonb, boolean),
  api.category_create(jsonb), api.category_replace(text, jsonb), api.category_update(text, jsonb),
  api.category_delete(text)
  to admin;
