/*
 * Products (listings): how a listing looks, reading one, writing one, its photos.
 *
 * Why: hosts manage their own listings, admins manage all, everyone reads published ones.
 * Functions are SECURITY INVOKER and run as the caller's role, so the policies in
 * sql/policies/20_catalog.sql decide what each caller sees and may change; the functions
 * add clear 400/403/404/409 answers on top. One exception: app.public_profiles reads the
 * public part (first name, photo) of hosts. The search lives in 22_product_search.sql.
 *
 * One source for the listing JSON: app.product_json builds a listing for the detail and,
 * without description and photos, for each search result. Money leaves as decimal strings.
 *
 * Where a listing is (sql/schema/0028_geo.sql): the host gives latitude, longitude and an
 * address; they are kept in app.product_addresses, which row-level security shows to the
 * host, admins and guests with a confirmed stay only. Everyone else, and every search, sees
 * the public point, which a trigger here draws from the exact one (app.map_place).
 */

create trigger products_set_updated_at before update on app.products
  for each row execute function app.tg__set_updated_at();

-- ---------------------------------------------------------------------------------
-- How a listing looks
-- ---------------------------------------------------------------------------------

create function app.public_profiles(p_ids uuid[])
returns table (id uuid, first_name text, photo_url text)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
set plan_cache_mode = force_generic_plan
as $$
begin
  return query
  select u.id, u.first_name, app.avatar_url(u.photo_path, u.photo_variants)
  from app.users u
  where u.id = any(p_ids)
    and exists (select from app.products p where p.host_id = u.id);
end
$$;
comment on function app.public_profiles(uuid[]) is
  'The public profile (id, first name, photo URL; never email or phone) of those of the given users who host a listing. Security definer: users are otherwise visible only to themselves and admins. PL/pgSQL, not SQL: a SQL function with SET is never inlined and plans its query again on every call; PL/pgSQL keeps the plan for the session (~0.25 ms less per page of results), and a generic one: with an array parameter the plan cache would otherwise judge a plan for the values cheaper and plan again on every call (a third of a detail request''s time in PostgreSQL).';

create function app.product_json(p app.products, p_category app.categories, p_host_first_name text,
                                 p_host_photo_url text, p_amenities jsonb, p_photos jsonb, p_photo jsonb,
                                 p_full boolean, p_exact app.product_addresses)
returns jsonb
language sql stable security invoker
as $$
  -- No subquery and no FROM, so the planner inlines it into the statement that calls it (a
  -- SQL function it cannot inline is parsed and planned again on every call: that was 80 %
  -- of a detail request's time in PostgreSQL). The caller reads amenities and photos in its
  -- own statement. Every name qualified: called under search_path = pg_catalog, pg_temp.
  select pg_catalog.jsonb_build_object(
      'id', p.id, 'name', p.name, 'location', p.location,
      'price_per_night', p.price_per_night::text, 'currency', p.currency, 'max_guests', p.max_guests,
      'category', pg_catalog.jsonb_build_object('id', p_category.id, 'name', p_category.name, 'slug', p_category.slug),
      'amenities', coalesce(p_amenities, '[]'::jsonb),
      'rating_avg', p.rating_avg, 'rating_count', p.rating_count,
      'host', pg_catalog.jsonb_build_object('id', p.host_id, 'first_name', p_host_first_name, 'photo_url', p_host_photo_url),
      'cancellation_policy', p.cancellation_policy, 'published', p.published,
      'created_at', p.created_at, 'updated_at', p.updated_at,
      -- The exact point when the caller may read it (p_exact, a row RLS let through), else the
      -- public one: 5 decimals (about a metre) say no more than the point itself.
      'latitude', case when p_exact.latitude is not null then p_exact.latitude
                       else pg_catalog.round(p.map_latitude * 100000) / 100000 end,
      'longitude', case when p_exact.latitude is not null then p_exact.longitude
                        else pg_catalog.round(p.map_longitude * 100000) / 100000 end,
      'location_exact', p_exact.latitude is not null)
    || case
         when p_full then pg_catalog.jsonb_build_object('description', p.description,
                                                        'photos', coalesce(p_photos, '[]'::jsonb),
                                                        'address', p_exact.address)
         else pg_catalog.jsonb_build_object('photo', p_photo)
       end
$$;
comment on function app.product_json(app.products, app.categories, text, text, jsonb, jsonb, jsonb, boolean, app.product_addresses) is
  'A listing as the API shows it: category {id, name, slug}, amenity slugs (p_amenities), rating, the host''s public profile {id, first_name, photo_url}, price_per_night as a decimal string with its currency, latitude and longitude (the exact point from p_exact when given, location_exact true; else the public point, 150-400 m from it, or null); with p_full (the detail) also description, photos (p_photos: each app.photo_json with its id and position) and address (from p_exact, else null), otherwise (a search result) the first photo as photo (p_photo, app.photo_json: its variants give a thumbnail). The one source of the listing JSON; inlined into its caller''s statement, which reads amenities, photos and the exact place (app.product_detail, app.product_page).';

create function app.product_detail(p_id uuid) returns jsonb
language plpgsql stable security invoker
as $$
declare
  v_listing jsonb;
begin
  select app.product_json(p, c, h.first_name, h.photo_url,
           (select pg_catalog.jsonb_agg(pa.amenity order by pa.amenity)
              from app.product_amenities pa where pa.product_id = p.id),
           (select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('id', ph.id, 'position', ph.position)
                     || app.photo_json(ph.path, ph.width, ph.height, ph.size_bytes, ph.placeholder, ph.variants)
                   order by ph.position, ph.id)
              from app.product_photos ph where ph.product_id = p.id),
           null, true, a)
    into v_listing
  from app.products p
  join app.categories c on c.id = p.category_id
  left join app.public_profiles(array[p.host_id]) h on true
  -- Row-level security decides: the host, admins and a guest with a confirmed stay get the row.
  left join app.product_addresses a on a.product_id = p.id
  where p.id = p_id;
  return v_listing;
end
$$;
comment on function app.product_detail(uuid) is
  'A listing in full (app.product_json), or null when the caller may not see it; with its exact point and address when the caller may read them (app.product_addresses: its host, admins, a guest whose booking of it is confirmed or completed). PL/pgSQL so that its one statement is planned once per session.';

create function api.product_get(p_id text) returns jsonb
language sql stable security invoker
as $$
  select app.product_detail(app.parse_uuid(p_id))
$$;
comment on function api.product_get(text) is
  'GET /api/products/{id}/ — one listing in full: category {id, name, slug}, amenities (slugs), photos [{id, position, url, width, height, size_bytes, placeholder, variants}], rating_avg and rating_count, the host''s public profile {id, first_name, photo_url}, price_per_night as a decimal string with its currency; latitude and longitude: the exact point and the address (location_exact true) for its host, admins and a guest whose booking of it is confirmed or completed, else the public point, 150-400 m away from the exact one (the same every time), and address null. Unknown, malformed or unpublished-and-not-yours ids are 404. Anyone.';

-- ---------------------------------------------------------------------------------
-- Writing
-- ---------------------------------------------------------------------------------

create function app.product_access(p_id uuid) returns boolean
language plpgsql stable security invoker
as $$
declare
  v_product record;
  v_mine boolean;
begin
  -- The visibility rule of the policies, written out so SECURITY DEFINER callers (the
  -- calendar functions) get the same answer as invoker ones.
  select p.host_id, p.published into v_product from app.products p where p.id = p_id;
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
  -- why: "the listing's host or an admin" is about the row, which no grant can say.
  v_mine := coalesce(v_product.host_id = app.current_user_id(), false) or app.is_admin();
  if not (v_product.published or v_mine) then
    perform app.fail(404, 'Not found.');
  end if;
  return v_mine;
end
$$;
comment on function app.product_access(uuid) is
  'A 404 unless the caller may see the listing (published, or theirs, or they are an admin); otherwise whether they may change it (its host or an admin).';

create function app.product_owned(p_id uuid) returns void
language plpgsql stable security invoker
as $$
begin
  if not app.product_access(p_id) then
    perform app.fail(403, 'Only the listing''s host or an admin may change it.');
  end if;
end
$$;
comment on function app.product_owned(uuid) is
  'Check the caller may change a listing: 404 when they cannot see it (app.product_access), 403 when they see it but neither host it nor are an admin.';

create function app.product_write(p_id uuid, p_body jsonb, p_partial boolean) returns jsonb
language plpgsql volatile security invoker
as $$
declare
  v_errors jsonb := '{}';
  v_missing jsonb := '{}';  -- well formed, but names nothing that exists: 404 once the rest is valid
  v_required boolean := not p_partial;
  v_category uuid;
  v_amenities text[];
  v_unknown text;
  v_field text;
  v_id uuid := p_id;
begin
  if p_id is not null then
    perform app.product_owned(p_id);
  end if;

  v_errors := app.check_text(v_errors, p_body, 'name', 1, 200, v_required);
  v_errors := app.check_text(v_errors, p_body, 'description', 0, 10000, v_required);
  v_errors := app.check_text(v_errors, p_body, 'location', 1, 300, v_required);
  -- At most 10M a night: 365 nights must still fit a booking total (numeric(12,2)); covers NGN, KES, JPY.
  v_errors := app.check_number(v_errors, p_body, 'price_per_night', 0.01, 10000000, 2, v_required);
  v_errors := app.check_number(v_errors, p_body, 'max_guests', 1, 100, 0, v_required);
  v_errors := app.check_text(v_errors, p_body, 'currency', 3, 3);
  if not v_errors ? 'currency' and p_body ? 'currency'
     and not exists (select from app.currencies cu where cu.code = upper(btrim(p_body ->> 'currency'))) then
    v_missing := app.add_error(v_missing, 'currency', 'Must be a supported ISO 4217 code, e.g. USD.');
  end if;
  v_errors := app.check_text(v_errors, p_body, 'category', 1, 100, v_required);
  if not v_errors ? 'category' and p_body ? 'category' then
    v_category := app.category_find(p_body ->> 'category');
    if v_category is null then
      v_missing := app.add_error(v_missing, 'category', 'Unknown category: give a category id or slug.');
    end if;
  end if;
  v_errors := app.check_choice(v_errors, p_body, 'cancellation_policy',
                               enum_range(null::app.cancellation_policy)::text[]);
  v_errors := app.check_boolean(v_errors, p_body, 'published');
  if p_body ? 'amenities' then
    if jsonb_typeof(p_body -> 'amenities') <> 'array'
       or exists (select from jsonb_array_elements(p_body -> 'amenities') e where jsonb_typeof(e) <> 'string') then
      v_errors := app.add_error(v_errors, 'amenities', 'Must be a list of amenity slugs, e.g. ["wifi", "pool"].');
    else
      select coalesce(array_agg(distinct lower(btrim(e))), '{}') into v_amenities
        from jsonb_array_elements_text(p_body -> 'amenities') e;
      select a into v_unknown from unnest(v_amenities) a
       where not exists (select from app.amenities am where am.slug = a) limit 1;
      if v_unknown is not null then
        v_missing := app.add_error(v_missing, 'amenities', format('Unknown amenity: %s.', v_unknown));
      end if;
    end if;
  end if;
  -- Where it is: latitude and longitude together (both numbers, or both null to remove the
  -- point), and an address; kept private in app.product_addresses.
  foreach v_field in array array['latitude', 'longitude'] loop
    if jsonb_typeof(p_body -> v_field) not in ('number', 'null') then
      v_errors := app.add_error(v_errors, v_field, 'Must be a number of degrees.');
    elsif jsonb_typeof(p_body -> v_field) = 'number'
          and abs((p_body ->> v_field)::numeric) > (case v_field when 'latitude' then 90 else 180 end) then
      v_errors := app.add_error(v_errors, v_field, case v_field when 'latitude' then 'Must be between -90 and 90.'
                                                                else 'Must be between -180 and 180.' end);
    end if;
  end loop;
  if not (v_errors ? 'latitude' or v_errors ? 'longitude')
     and (jsonb_typeof(p_body -> 'latitude') is distinct from jsonb_typeof(p_body -> 'longitude')) then
    v_field := case when jsonb_typeof(p_body -> 'latitude') is null
                      or (jsonb_typeof(p_body -> 'latitude') = 'null' and p_body ? 'longitude')
                    then 'latitude' else 'longitude' end;
    v_errors := app.add_error(v_errors, v_field,
                              'Give latitude and longitude together: both numbers, or both null to remove the point.');
  end if;
  v_errors := app.check_text(v_errors, p_body, 'address', 1, 300, false, true);
  perform app.raise_errors(v_errors);
  perform app.raise_errors(v_missing, 404);

  if v_id is null then
    insert into app.products (host_id, category_id, name, description, location, price_per_night, currency,
                              max_guests, cancellation_policy, published)
    values (app.current_user_id(), v_category, btrim(p_body ->> 'name'), btrim(p_body ->> 'description'),
            btrim(p_body ->> 'location'), (p_body ->> 'price_per_night')::numeric,
            coalesce(upper(btrim(p_body ->> 'currency')), 'USD'), btrim(p_body ->> 'max_guests')::int,
            coalesce((p_body ->> 'cancellation_policy')::app.cancellation_policy, 'moderate'),
            coalesce((p_body ->> 'published')::boolean, true))
    returning id into v_id;
  else
    -- Always touch the row, so updated_at (and the ETag) move even for amenity-only changes.
    update app.products p
       set category_id = coalesce(v_category, p.category_id),
           name = coalesce(btrim(p_body ->> 'name'), p.name),
           description = coalesce(btrim(p_body ->> 'description'), p.description),
           location = coalesce(btrim(p_body ->> 'location'), p.location),
           price_per_night = coalesce((p_body ->> 'price_per_night')::numeric, p.price_per_night),
           currency = coalesce(upper(btrim(p_body ->> 'currency')), p.currency),
           max_guests = coalesce(btrim(p_body ->> 'max_guests')::int, p.max_guests),
           cancellation_policy = coalesce((p_body ->> 'cancellation_policy')::app.cancellation_policy,
                                          p.cancellation_policy),
           published = coalesce((p_body ->> 'published')::boolean, p.published)
     where p.id = v_id;
  end if;

  if v_amenities is not null then
    delete from app.product_amenities pa where pa.product_id = v_id and pa.amenity <> all(v_amenities);
    insert into app.product_amenities (product_id, amenity)
    select v_id, a from unnest(v_amenities) a
    except
    select pa.product_id, pa.amenity from app.product_amenities pa where pa.product_id = v_id;
  end if;
  if p_body ? 'latitude' or p_body ? 'address' then
    insert into app.product_addresses as a (product_id, latitude, longitude, address)
    values (v_id, (p_body ->> 'latitude')::float8, (p_body ->> 'longitude')::float8, btrim(p_body ->> 'address'))
    on conflict (product_id) do update
      set latitude = case when p_body ? 'latitude' then excluded.latitude else a.latitude end,
          longitude = case when p_body ? 'latitude' then excluded.longitude else a.longitude end,
          address = case when p_body ? 'address' then excluded.address else a.address end;
  end if;
  -- A statement of its own, so the (stable) read sees the row just written.
  return app.product_detail(v_id);
end
$$;
comment on function app.product_write(uuid, jsonb, boolean) is
  'Create (p_id null) or change a listing from a JSON body, and return it in full. Changing one needs its host or an admin (app.product_owned). Known fields only: name, description, location, price_per_night (0.01 to 10,000,000, at most 2 decimals; number or string), currency (a supported ISO 4217 code), max_guests (1-100), amenities (slugs; replaces the set), category (id or slug), cancellation_policy, published, latitude (-90 to 90) and longitude (-180 to 180), JSON numbers given together (both null removes the point), address (1-300 characters, or null; private, as is the exact point: app.product_addresses). Anything else (id, host, ratings, timestamps) is ignored; the host is always the caller. Unless p_partial, name, description, location, price_per_night, max_guests and category are required. Every bad field is reported at once (400); then every currency, category or amenity that does not exist (404 naming each).';

create function api.product_create(p_body jsonb) returns jsonb
language sql volatile security invoker
as $$
  select app.product_write(null, p_body, false)
$$;
comment on function api.product_create(jsonb) is
  'POST /api/products/ — list a place: {name, description, location, price_per_night, currency? (USD), max_guests, amenities? [slugs], category (id or slug), cancellation_policy? (moderate), published? (true), latitude? and longitude? (degrees, together), address?}. Where it is stays private: the exact point and the address are shown to the host, admins and guests with a confirmed stay; everyone else sees a public point 150-400 m away (the same every time). The host is the caller; ids, host, ratings and timestamps in the body are ignored. Returns the listing in full (201). Hosts and admins.';

create function api.product_replace(p_id text, p_body jsonb) returns jsonb
language sql volatile security invoker
as $$
  select app.product_write(app.parse_uuid(p_id), p_body, false)
$$;
comment on function api.product_replace(text, jsonb) is
  'PUT /api/products/{id}/ — change a listing, giving every required field (name, description, location, price_per_night, max_guests, category); optional fields left out stay as they are. The listing''s host or an admin; another host gets 403, a listing you cannot see 404.';

create function api.product_update(p_id text, p_body jsonb) returns jsonb
language sql volatile security invoker
as $$
  select app.product_write(app.parse_uuid(p_id), p_body, true)
$$;
comment on function api.product_update(text, jsonb) is
  'PATCH /api/products/{id}/ — change some fields of a listing (same fields and rules as POST; amenities, when given, replace the set). The listing''s host or an admin.';

create function api.product_delete(p_id text) returns void
language plpgsql volatile security invoker
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
begin
  perform app.product_owned(v_id);
  delete from app.products p where p.id = v_id;
exception when foreign_key_violation then
  perform app.fail(409, 'This listing has bookings, so it cannot be deleted; unpublish it instead.');
end
$$;
comment on function api.product_delete(text) is
  'DELETE /api/products/{id}/ — delete a listing with its amenities, photos and calendar (a listing with bookings cannot be deleted: 409; unpublish it instead). The listing''s host or an admin.';

-- ---------------------------------------------------------------------------------
-- Amenities, copied on the listing's row for the facets
-- ---------------------------------------------------------------------------------

create function app.tg_product_amenities__amenity_slugs() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- Once per statement, for the listings it touched (the transition tables that exist for this event).
  update app.products p
     set amenity_slugs = coalesce((select array_agg(pa.amenity order by pa.amenity)
                                   from app.product_amenities pa where pa.product_id = p.id), '{}')
   where p.id in (select t.product_id from changed t)
     and p.amenity_slugs is distinct from coalesce((select array_agg(pa.amenity order by pa.amenity)
                                                    from app.product_amenities pa where pa.product_id = p.id), '{}');
  return null;
end
$$;
comment on function app.tg_product_amenities__amenity_slugs() is
  'Statement trigger on app.product_amenities (inserts, updates and deletes, each with its transition table named changed): sets app.products.amenity_slugs of the listings touched to their sorted amenity slugs, in the writing transaction. Security definer: hosts write their listing''s amenities, not that copy (no client role may update the column).';

create trigger product_amenities_amenity_slugs_insert after insert on app.product_amenities
  referencing new table as changed for each statement execute function app.tg_product_amenities__amenity_slugs();
create trigger product_amenities_amenity_slugs_delete after delete on app.product_amenities
  referencing old table as changed for each statement execute function app.tg_product_amenities__amenity_slugs();
create trigger product_amenities_amenity_slugs_update after update on app.product_amenities
  referencing new table as changed for each statement execute function app.tg_product_amenities__amenity_slugs();

-- ---------------------------------------------------------------------------------
-- Where it is: the public point, drawn from the exact one
-- ---------------------------------------------------------------------------------

create trigger product_addresses_set_updated_at before update on app.product_addresses
  for each row execute function app.tg__set_updated_at();

create function app.map_place(p_id uuid, p_latitude float8, p_longitude float8,
                              out latitude float8, out longitude float8)
language sql stable security invoker
as $$
  -- An HMAC of the id with the secret gives two numbers in [0, 1): how far (between the
  -- settings' bounds) and in which direction the public point lies from the exact one.
  with h as (
    select pg_catalog.get_byte(d, 0) * 16777216::float8 + pg_catalog.get_byte(d, 1) * 65536 + pg_catalog.get_byte(d, 2) * 256
             + pg_catalog.get_byte(d, 3) as a,
           pg_catalog.get_byte(d, 4) * 16777216::float8 + pg_catalog.get_byte(d, 5) * 65536 + pg_catalog.get_byte(d, 6) * 256
             + pg_catalog.get_byte(d, 7) as b,
           s.offset_min_m, s.offset_max_m
    from app_private.map_settings s,
         extensions.hmac(pg_catalog.convert_to(p_id::text, 'utf8'), s.secret, 'sha256') d
  ), moved as (
    select extensions.st_project(
             extensions.st_setsrid(extensions.st_makepoint(p_longitude, p_latitude), 4326)::extensions.geography,
             h.offset_min_m + (h.offset_max_m - h.offset_min_m) * h.a / 4294967296,
             2 * pi() * h.b / 4294967296)::extensions.geometry as g
    from h
  )
  select extensions.st_y(g), extensions.st_x(g) from moved  -- a null point stays null (strict functions)
$$;
comment on function app.map_place(uuid, float8, float8) is
  'The public point of a listing whose exact point is (p_latitude, p_longitude): moved by a distance between app_private.map_settings.offset_min_m and offset_max_m, in a direction, both drawn from an HMAC-SHA256 of the listing id with map_settings.secret (so it is the same every time, and cannot be undone without the secret). Nulls for no point. The owner''s: it reads the secret.';

create function app.tg_product_addresses__map_point() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'DELETE' then
    update app.products p set map_latitude = null, map_longitude = null
     where p.id = old.product_id and p.map_latitude is not null;
  else
    update app.products p set map_latitude = m.latitude, map_longitude = m.longitude
      from app.map_place(new.product_id, new.latitude, new.longitude) m
     where p.id = new.product_id
       and (p.map_latitude, p.map_longitude) is distinct from (m.latitude, m.longitude);
  end if;
  return null;
end
$$;
comment on function app.tg_product_addresses__map_point() is
  'AFTER trigger on app.product_addresses: sets the listing''s public point (app.products.map_latitude, map_longitude; map_point follows) from its exact one (app.map_place), or clears it. Security definer: hosts write their listing''s exact place, only the owner reads the secret that moves it.';

create trigger product_addresses_map_point after insert or update of latitude, longitude or delete on app.product_addresses
  for each row execute function app.tg_product_addresses__map_point();

create function app.tg_map_settings__redraw() returns trigger
language plpgsql security invoker
as $$
begin
  update app.products p set map_latitude = m.latitude, map_longitude = m.longitude
    from app.product_addresses a, app.map_place(a.product_id, a.latitude, a.longitude) m
   where a.product_id = p.id and a.latitude is not null;
  return null;
end
$$;
comment on function app.tg_map_settings__redraw() is
  'AFTER UPDATE trigger on app_private.map_settings: draws every public point again with the new secret or bounds, in the DBA''s statement.';

create trigger map_settings_redraw after update on app_private.map_settings
  for each statement execute function app.tg_map_settings__redraw();

-- ---------------------------------------------------------------------------------
-- Photos
-- ---------------------------------------------------------------------------------

create function api.product_photo_add(p_id text, p_path text, p_content_type text, p_size_bytes int,
                                      p_width int, p_height int, p_placeholder text)
returns jsonb
language plpgsql volatile security invoker
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
  v_photo jsonb;
begin
  perform app.product_owned(v_id);
  perform app.check_media_path(p_path);
  if (select count(*) from app.product_photos ph where ph.product_id = v_id) >= 50 then
    perform app.fail(400, 'A listing has at most 50 photos; delete one first.', 'file');
  end if;
  insert into app.product_photos (product_id, path, content_type, size_bytes, width, height, placeholder, position)
  values (v_id, p_path, p_content_type, p_size_bytes, p_width, p_height, p_placeholder,
          coalesce((select max(ph.position) + 1 from app.product_photos ph where ph.product_id = v_id), 0))
  returning jsonb_build_object('id', id, 'position', position)
            || app.photo_json(path, width, height, size_bytes, placeholder, variants) into v_photo;
  return v_photo;
end
$$;
comment on function api.product_photo_add(text, text, text, int, int, int, text) is
  'POST /api/products/{id}/photos/ — add a photo (multipart field "file": a whole, still JPEG, PNG or WebP image, which the API decodes and stores re-encoded without its metadata (no EXIF, GPS, XMP), under a generated name, with its pixel size and average colour) after the listing''s others; returns the photo (201) with no variants yet: the worker makes them (media.make_variants) and the listing shows them once made, the original meanwhile. At most 50 per listing. The listing''s host or an admin.';

create function api.product_photo_delete(p_id text, p_photo_id text) returns void
language plpgsql volatile security invoker
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
  v_photo uuid := app.parse_uuid(p_photo_id);
  v_path text;
begin
  perform app.product_owned(v_id);
  delete from app.product_photos ph where ph.id = v_photo and ph.product_id = v_id returning ph.path into v_path;
  if v_path is null then
    perform app.fail(404, 'Not found.');
  end if;
end
$$;
comment on function api.product_photo_delete(text, text) is
  'DELETE /api/products/{id}/photos/{photo_id}/ — remove a photo from a listing (204); its files (original and variants) are removed from storage by a job after the commit (media.delete, retried). The listing''s host or an admin.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_schema('Listing', 'A listing as search shows it (app.product_json): its first photo, no description.', '{
  "id": "uuid", "name": "string", "location": "string", "price_per_night": "decimal", "currency": "string",
  "max_guests": "integer", "category": {"id": "uuid", "name": "string", "slug": "string"}, "amenities": "[string]",
  "rating_avg": "number?", "rating_count": "integer", "host": "PublicUser", "cancellation_policy": "flexible|moderate|strict",
  "published": "boolean", "created_at": "date-time", "updated_at": "date-time", "photo": "Image?",
  "latitude": "number?", "longitude": "number?", "location_exact": "boolean",
  "distance_km?": {"type": "number", "minimum": 0, "description": "From near=, to the public point, in km (3 decimals). Only when near is given."}}');
select app.api_schema('ListingDetail', 'A listing in full (app.product_json): its description and every photo.', '{
  "id": "uuid", "name": "string", "location": "string", "price_per_night": "decimal", "currency": "string",
  "max_guests": "integer", "category": {"id": "uuid", "name": "string", "slug": "string"}, "amenities": "[string]",
  "rating_avg": "number?", "rating_count": "integer", "host": "PublicUser", "cancellation_policy": "flexible|moderate|strict",
  "published": "boolean", "created_at": "date-time", "updated_at": "date-time", "description": "string", "photos": "[Photo]",
  "latitude": "number?", "longitude": "number?", "location_exact": "boolean", "address": "string?"}');
select app.api_schema('Photo', 'A listing photo (app.photo_json with its id and place in the order).', '{
  "id": "uuid", "position": "integer", "url": "string", "width": "integer?", "height": "integer?", "size_bytes": "integer?",
  "placeholder": "string?", "variants": "[ImageVariant]"}');
select app.api_operation('api.product_get', response => '"ListingDetail"');
select app.api_operation('api.product_create', response => '"ListingDetail"', errors => '{404}',
  body => '{"name": "string(1..200)", "description": "string(0..10000)", "location": "string(1..300)",
            "price_per_night": "decimal(0.01..10000000)", "max_guests": "integer(1..100)", "category": "string(1..100)",
            "currency?": "string(3..3)", "cancellation_policy?": "flexible|moderate|strict", "published?": "boolean",
            "latitude?": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
            "longitude?": {"type": ["number", "null"], "minimum": -180, "maximum": 180}, "address?": "string(1..300)?",
            "dependentRequired": {"latitude": ["longitude"], "longitude": ["latitude"]},
            "not": {"anyOf": [{"required": ["latitude", "longitude"], "properties": {"latitude": {"type": "null"}, "longitude": {"type": "number"}}},
                              {"required": ["latitude", "longitude"], "properties": {"latitude": {"type": "number"}, "longitude": {"type": "null"}}}]},
            "amenities?": "[string]"}',
  example => '{"name": "Flat by the lagoon", "description": "A bright flat.", "location": "Lekki, Lagos, Nigeria",
               "price_per_night": "120.00", "currency": "USD", "max_guests": 2, "category": "apartments",
               "amenities": ["wifi"], "cancellation_policy": "moderate",
               "latitude": 6.4474, "longitude": 3.4553, "address": "12 Admiralty Way, Lekki Phase 1"}');
select app.api_operation('api.product_replace', response => '"ListingDetail"', errors => '{404}',
  body => '{"name": "string(1..200)", "description": "string(0..10000)", "location": "string(1..300)",
            "price_per_night": "decimal(0.01..10000000)", "max_guests": "integer(1..100)", "category": "string(1..100)",
            "currency?": "string(3..3)", "cancellation_policy?": "flexible|moderate|strict", "published?": "boolean",
            "latitude?": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
            "longitude?": {"type": ["number", "null"], "minimum": -180, "maximum": 180}, "address?": "string(1..300)?",
            "dependentRequired": {"latitude": ["longitude"], "longitude": ["latitude"]},
            "not": {"anyOf": [{"required": ["latitude", "longitude"], "properties": {"latitude": {"type": "null"}, "longitude": {"type": "number"}}},
                              {"required": ["latitude", "longitude"], "properties": {"latitude": {"type": "number"}, "longitude": {"type": "null"}}}]},
            "amenities?": "[string]"}');
select app.api_operation('api.product_update', response => '"ListingDetail"', errors => '{404}',
  body => '{"name?": "string(1..200)", "description?": "string(0..10000)", "location?": "string(1..300)",
            "price_per_night?": "decimal(0.01..10000000)", "max_guests?": "integer(1..100)", "category?": "string(1..100)",
            "currency?": "string(3..3)", "cancellation_policy?": "flexible|moderate|strict", "published?": "boolean",
            "latitude?": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
            "longitude?": {"type": ["number", "null"], "minimum": -180, "maximum": 180}, "address?": "string(1..300)?",
            "dependentRequired": {"latitude": ["longitude"], "longitude": ["latitude"]},
            "not": {"anyOf": [{"required": ["latitude", "longitude"], "properties": {"latitude": {"type": "null"}, "longitude": {"type": "number"}}},
                              {"required": ["latitude", "longitude"], "properties": {"latitude": {"type": "number"}, "longitude": {"type": "null"}}}]},
            "amenities?": "[string]"}');
select app.api_operation('api.product_delete', errors => '{409}');
select app.api_operation('api.product_photo_add', rate => 'upload', response => '"Photo"', errors => '{409}');
select app.api_operation('api.product_photo_delete', parameters => '{"photo_id": "uuid"}');
