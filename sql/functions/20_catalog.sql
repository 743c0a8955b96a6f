/*
 * Catalog: categories, amenities, products (listings) and their photos.
 *
 * Why: everyone browses the catalog; hosts manage their own listings; admins manage
 * everything. Functions here are SECURITY INVOKER and run as the caller's role, so
 * the policies in sql/policies/catalog.sql decide what each caller sees and may
 * change; the functions add clear 400/403/404/409 answers on top. Two exceptions:
 * app.public_profiles reads the public part (first name, photo) of hosts, and the
 * search (api.product_list) runs as the owner with the policies' visibility rule
 * written into its statement, because under RLS PostgreSQL will not use an index for
 * non-leakproof operators (numeric comparisons, ilike, @@), so every filter would scan.
 *
 * Search: api.product_list validates its text parameters, then builds its statement
 * from only the filters present (app.product_list_sql), so each combination of
 * filters is planned on its own with the values known, and every filter and ordering
 * can be served by an index (tests/sql/test_catalog_plans.py pins this with EXPLAIN).
 * JSON is built by PostgreSQL in the same statement. Money leaves as decimal strings.
 */

create trigger categories_set_updated_at before update on app.categories
  for each row execute function app.tg__set_updated_at();
create trigger products_set_updated_at before update on app.products
  for each row execute function app.tg__set_updated_at();

create function app.body_text(p_body jsonb, p_field text, p_min int, p_max int) returns text
language plpgsql stable security invoker
as $$
declare
  v_text text;
begin
  if not p_body ? p_field then
    return null;
  end if;
  if jsonb_typeof(p_body -> p_field) = 'null' then
    perform app.invalid(p_field, 'This field may not be null.');
  end if;
  if jsonb_typeof(p_body -> p_field) <> 'string' then
    perform app.invalid(p_field, format('%s must be a string.', p_field));
  end if;
  v_text := btrim(p_body ->> p_field);
  if length(v_text) < p_min then
    perform app.invalid(p_field, 'This field may not be blank.');
  end if;
  if length(v_text) > p_max then
    perform app.invalid(p_field, format('%s must be at most %s characters.', p_field, p_max));
  end if;
  return v_text;
end
$$;
comment on function app.body_text(jsonb, text, int, int) is
  'A string field of a JSON body, trimmed, between p_min and p_max characters; null when the key is absent; otherwise a 400 naming the field.';

create function app.body_scalar(p_body jsonb, p_field text) returns text
language plpgsql stable security invoker
as $$
begin
  if not p_body ? p_field then
    return null;
  end if;
  if jsonb_typeof(p_body -> p_field) not in ('number', 'string') then
    perform app.invalid(p_field, case when jsonb_typeof(p_body -> p_field) = 'null'
                                      then 'This field may not be null.'
                                      else format('%s must be a number.', p_field) end);
  end if;
  return p_body ->> p_field;
end
$$;
comment on function app.body_scalar(jsonb, text) is
  'A number field of a JSON body as text (a JSON number or a numeric string, for exact decimals); null when absent; a 400 naming the field when null or of another type.';

create function app.slugify(p_text text) returns text
language sql immutable strict parallel safe security invoker
as $$
  select left(btrim(regexp_replace(lower(p_text), '[^a-z0-9]+', '-', 'g'), '-'), 100)
$$;
comment on function app.slugify(text) is
  'A URL slug from a name: lowercase ASCII letters and digits, other runs become single hyphens ("Beach Houses!" -> "beach-houses").';

-- ---------------------------------------------------------------------------------
-- Categories
-- ---------------------------------------------------------------------------------

create function app.category_find(p_ref text) returns uuid
language plpgsql stable security invoker
as $$
declare
  v_id uuid;
begin
  if p_ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select c.id into v_id from app.categories c where c.id = p_ref::uuid;
  else
    select c.id into v_id from app.categories c where c.slug = lower(btrim(p_ref));
  end if;
  return v_id;
end
$$;
comment on function app.category_find(text) is 'The id of the category with this id or slug, or null.';

create function app.category_json(p_category app.categories) returns json
language sql stable security invoker
as $$
  select json_build_object(
    'id', p_category.id, 'name', p_category.name, 'slug', p_category.slug,
    'description', p_category.description,
    'created_at', p_category.created_at, 'updated_at', p_category.updated_at)
$$;
comment on function app.category_json(app.categories) is 'A category as the API shows it.';

create function api.category_list(p_page text default null, p_page_size text default null)
returns table (count bigint, page int, page_size int, results json)
language plpgsql stable security invoker
as $$
declare
  v_page int;
  v_size int;
begin
  select b.page, b.page_size into v_page, v_size from app.parse_page(p_page, p_page_size) b;
  return query
    select (select count(*) from app.categories), v_page, v_size,
           coalesce(json_agg(app.category_json(c) order by c.name, c.id), '[]'::json)
    from (select * from app.categories order by name, id limit v_size offset (v_page - 1) * v_size) c;
  if v_page > 1 and not exists (select from app.categories offset (v_page - 1) * v_size) then
    perform app.fail(404, 'Invalid page.', 'page');
  end if;
end
$$;
comment on function api.category_list(text, text) is
  'GET /api/categories/ — every category, by name, paginated ({count, next, previous, results}). Anyone.';

create function api.category_get(p_id text) returns json
language sql stable security invoker
as $$
  select app.category_json(c) from app.categories c where c.id = app.category_find(p_id)
$$;
comment on function api.category_get(text) is
  'GET /api/categories/{id or slug}/ — one category by id or slug; 404 when there is none. Anyone.';

create function app.category_write(p_id uuid, p_body jsonb, p_partial boolean) returns json
language plpgsql volatile security invoker
as $$
declare
  v_name text;
  v_slug text;
  v_description text;
  v_row app.categories;
begin
  if not p_partial and not p_body ? 'name' then
    perform app.invalid('name', 'This field is required.');
  end if;
  v_name := app.body_text(p_body, 'name', 1, 100);
  v_slug := lower(app.body_text(p_body, 'slug', 1, 100));
  v_description := app.body_text(p_body, 'description', 0, 2000);
  if v_slug is not null and v_slug !~ '^[a-z0-9]+(-[a-z0-9]+)*$' then
    perform app.invalid('slug', 'Use lowercase letters, digits and single hyphens, e.g. beach-houses.');
  end if;
  if p_id is null and v_slug is null then
    v_slug := app.slugify(v_name);
    if v_slug = '' then
      perform app.invalid('slug', 'The name has no letters or digits to make a slug from; give a slug.');
    end if;
  end if;
  if exists (select from app.categories c where lower(c.name) = lower(v_name) and c.id is distinct from p_id) then
    perform app.fail(409, 'A category with this name already exists.', 'name');
  end if;
  if exists (select from app.categories c where c.slug = v_slug and c.id is distinct from p_id) then
    perform app.fail(409, 'A category with this slug already exists.', 'slug');
  end if;

  if p_id is null then
    insert into app.categories (name, slug, description)
    values (v_name, v_slug, coalesce(v_description, ''))
    returning * into v_row;
  else
    update app.categories c
       set name = coalesce(v_name, c.name),
           slug = coalesce(v_slug, c.slug),
           description = coalesce(v_description, c.description)
     where c.id = p_id
    returning * into v_row;
  end if;
  return app.category_json(v_row);
end
$$;
comment on function app.category_write(uuid, jsonb, boolean) is
  'Create (p_id null) or change a category from a JSON body {name, slug?, description?}: validates each field (400 naming it), generates the slug from the name when creating without one, and answers 409 for a name or slug already taken. Admins only (by grants and policies).';

create function api.category_create(p_body jsonb) returns json
language sql volatile security invoker
as $$
  select app.category_write(null, p_body, false)
$$;
comment on function api.category_create(jsonb) is
  'POST /api/categories/ — create a category {name, slug?, description?}; the slug is generated from the name when absent; a taken name or slug is a 409. Admins.';

create function app.category_target(p_ref text) returns uuid
language plpgsql stable security invoker
as $$
declare
  v_id uuid := app.category_find(p_ref);
begin
  if v_id is null then
    perform app.fail(404, 'Not found.');
  end if;
  return v_id;
end
$$;
comment on function app.category_target(text) is 'The id of the category a path names (id or slug), or a 404.';

create function api.category_replace(p_id text, p_body jsonb) returns json
language sql volatile security invoker
as $$
  select app.category_write(app.category_target(p_id), p_body, false)
$$;
comment on function api.category_replace(text, jsonb) is
  'PUT /api/categories/{id or slug}/ — replace a category: name required, slug and description optional (unchanged when absent). Admins.';

create function api.category_update(p_id text, p_body jsonb) returns json
language sql volatile security invoker
as $$
  select app.category_write(app.category_target(p_id), p_body, true)
$$;
comment on function api.category_update(text, jsonb) is
  'PATCH /api/categories/{id or slug}/ — change some of name, slug, description. Admins.';

create function api.category_delete(p_id text) returns void
language plpgsql volatile security invoker
as $$
declare
  v_id uuid := app.category_target(p_id);
begin
  if exists (select from app.products p where p.category_id = v_id) then
    perform app.fail(409, 'This category still has listings; move or delete them first.');
  end if;
  delete from app.categories c where c.id = v_id;
end
$$;
comment on function api.category_delete(text) is
  'DELETE /api/categories/{id or slug}/ — delete a category; 409 while any listing is in it. Admins.';

create function api.amenity_list(p_page text default null, p_page_size text default null)
returns table (count bigint, page int, page_size int, results json)
language plpgsql stable security invoker
as $$
declare
  v_page int;
  v_size int;
begin
  select b.page, b.page_size into v_page, v_size from app.parse_page(p_page, p_page_size) b;
  if v_page > 1 and not exists (select from app.amenities offset (v_page - 1) * v_size) then
    perform app.fail(404, 'Invalid page.', 'page');
  end if;
  return query
    select (select count(*) from app.amenities), v_page, v_size,
           coalesce(json_agg(json_build_object('slug', a.slug, 'name', a.name) order by a.slug), '[]'::json)
    from (select * from app.amenities order by slug limit v_size offset (v_page - 1) * v_size) a;
end
$$;
comment on function api.amenity_list(text, text) is
  'GET /api/amenities/ — the amenities a listing can offer ({slug, name}, by slug), paginated. Clients send and receive the slugs. Anyone.';

-- ---------------------------------------------------------------------------------
-- Products: reading
-- ---------------------------------------------------------------------------------

create function app.public_profiles(p_ids uuid[])
returns table (id uuid, first_name text, photo_url text)
language sql stable security definer
set search_path = pg_catalog, pg_temp
as $$
  select u.id, u.first_name, '/media/' || u.photo_path
  from app.users u
  where u.id = any(p_ids)
    and exists (select from app.products p where p.host_id = u.id)
$$;
comment on function app.public_profiles(uuid[]) is
  'The public profile (id, first name, photo URL; never email or phone) of those of the given users who host a listing. SECURITY DEFINER: users are otherwise visible only to themselves and admins.';

create function app.product_detail(p_id uuid) returns json
language plpgsql stable security invoker
as $$
begin
  return (
    select json_build_object(
      'id', p.id, 'name', p.name, 'description', p.description, 'location', p.location,
      'price_per_night', p.price_per_night::text, 'currency', p.currency, 'max_guests', p.max_guests,
      'category', json_build_object('id', c.id, 'name', c.name, 'slug', c.slug),
      'amenities', coalesce((select json_agg(pa.amenity order by pa.amenity)
                               from app.product_amenities pa where pa.product_id = p.id), '[]'::json),
      'photos', coalesce((select json_agg(json_build_object('id', ph.id, 'url', '/media/' || ph.path,
                                                            'position', ph.position)
                                          order by ph.position, ph.id)
                            from app.product_photos ph where ph.product_id = p.id), '[]'::json),
      'rating_avg', p.rating_avg, 'rating_count', p.rating_count,
      'host', json_build_object('id', p.host_id, 'first_name', h.first_name, 'photo_url', h.photo_url),
      'cancellation_policy', p.cancellation_policy, 'published', p.published,
      'created_at', p.created_at, 'updated_at', p.updated_at)
    from app.products p
    join app.categories c on c.id = p.category_id
    left join app.public_profiles(array[p.host_id]) h on true
    where p.id = p_id);
end
$$;
comment on function app.product_detail(uuid) is
  'A listing as the API shows it in full (category, amenity slugs, photos, rating, host''s public profile; money as decimal strings), or null when the caller may not see it.';

create function api.product_get(p_id text) returns json
language sql stable security invoker
as $$
  select app.product_detail(app.parse_uuid(p_id))
$$;
comment on function api.product_get(text) is
  'GET /api/products/{id}/ — one listing in full: category {id, name, slug}, amenities (slugs), photos [{id, url, position}], rating_avg and rating_count, the host''s public profile {id, first_name, photo_url}, price_per_night as a decimal string with its currency. Unknown, malformed or unpublished-and-not-yours ids are 404. Anyone.';

create function app.product_list_sql(
  p_category text default null, p_search text default null, p_min_price text default null,
  p_max_price text default null, p_location text default null, p_guests text default null,
  p_amenities text default null, p_host text default null, p_ordering text default null,
  p_page text default null, p_page_size text default null, p_check_in text default null,
  p_check_out text default null,
  out page_sql text, out count_sql text, out estimate_sql text, out page int, out page_size int)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_me uuid := app.current_user_id();
  -- The caller's role: SET ROLE (the API's set_config('role', ...)) is not changed by
  -- SECURITY DEFINER, unlike current_user. 'none' is a direct owner session (a DBA).
  v_sees_all boolean := current_setting('role') in ('admin', 'none');
  v_where text[] := '{}';
  v_order text;
  v_rank text;
  v_category uuid;
  v_query tsquery;
  v_min numeric;
  v_max numeric;
  v_guests int;
  v_amenity text;
  v_amenities text[];
  v_host uuid;
  v_check_in date;
  v_check_out date;
  v_cond text;
begin
  select b.page, b.page_size into page, page_size from app.parse_page(p_page, p_page_size) b;

  if p_category is not null then
    v_category := app.category_find(p_category);
    if v_category is null then
      perform app.invalid('category', 'Unknown category.');
    end if;
    v_where := v_where || format('p.category_id = %L::uuid', v_category);
  end if;

  if nullif(btrim(p_search), '') is not null then
    if length(p_search) > 200 then
      perform app.invalid('search', 'search must be at most 200 characters.');
    end if;
    v_query := websearch_to_tsquery('english', p_search);
    if numnode(v_query) > 0 then  -- only stop words: no text filter
      v_where := v_where || format('p.search @@ websearch_to_tsquery(''english'', %L)', p_search);
      v_rank := format('ts_rank(p.search, websearch_to_tsquery(''english'', %L)) desc, p.id', p_search);
    end if;
  end if;

  v_min := app.parse_price(p_min_price, 'min_price');
  v_max := app.parse_price(p_max_price, 'max_price');
  if v_min > v_max then
    perform app.invalid('max_price', 'max_price must not be below min_price.');
  end if;
  -- On price_cents (bigint): its comparisons are leakproof, so the planner has statistics.
  if v_min is not null then
    v_where := v_where || format('p.price_cents >= %s', (v_min * 100)::bigint);
  end if;
  if v_max is not null then
    v_where := v_where || format('p.price_cents <= %s', (v_max * 100)::bigint);
  end if;

  if nullif(btrim(p_location), '') is not null then
    if length(p_location) > 200 then
      perform app.invalid('location', 'location must be at most 200 characters.');
    end if;
    -- Any part of the location, ignoring case; % _ and \ in the input match themselves.
    v_where := v_where || format('p.location ilike %L',
                                 '%' || regexp_replace(btrim(p_location), '([\\%_])', '\\\1', 'g') || '%');
  end if;

  v_guests := app.parse_int(p_guests, 'guests', 1, 100);
  if v_guests is not null then
    v_where := v_where || format('p.max_guests >= %s', v_guests);
  end if;

  if p_amenities is not null then
    select array_agg(distinct a) into v_amenities
    from unnest(string_to_array(lower(p_amenities), ',')) s(x), btrim(s.x) a
    where a <> '';
    foreach v_amenity in array coalesce(v_amenities, '{}') loop
      if not exists (select from app.amenities am where am.slug = v_amenity) then
        perform app.invalid('amenities', format('Unknown amenity: %s.', v_amenity));
      end if;
      v_where := v_where || format(
        'exists (select from app.product_amenities pa where pa.product_id = p.id and pa.amenity = %L)', v_amenity);
    end loop;
  end if;

  if p_host is not null then
    if lower(btrim(p_host)) = 'me' then
      v_host := v_me;
      if v_host is null then
        perform app.invalid('host', 'Sign in to list your own listings.');
      end if;
    else
      v_host := app.parse_uuid(btrim(p_host), 'host', 400);
    end if;
    v_where := v_where || format('p.host_id = %L::uuid', v_host);
  end if;
  -- Visibility, exactly as the policies on app.products grant it (the statement runs as
  -- the owner, see api.product_list): the catalog shows published listings; a host
  -- listing their own (host=me or their id) and admins filtering by host also see
  -- unpublished ones.
  if v_host is null or (v_host is distinct from v_me and not v_sees_all) then
    v_where := v_where || 'p.published'::text;
  end if;

  v_check_in := app.parse_date(p_check_in, 'check_in');
  v_check_out := app.parse_date(p_check_out, 'check_out');
  if (v_check_in is null) <> (v_check_out is null) then
    perform app.invalid(case when v_check_in is null then 'check_in' else 'check_out' end,
                        'Give both check_in and check_out, or neither.');
  end if;
  if v_check_in is not null then
    if v_check_out <= v_check_in then
      perform app.invalid('check_out', 'check_out must be after check_in.');
    end if;
    if v_check_out - v_check_in > 3660 then
      perform app.invalid('check_out', 'A stay is at most 3660 nights.');
    end if;
    v_where := v_where || format(
      'not exists (select from app.calendar_entries ce where ce.product_id = p.id and ce.stay && daterange(%L::date, %L::date))',
      v_check_in, v_check_out);
  end if;

  v_order := case coalesce(btrim(p_ordering), '')
    when 'price' then 'p.price_per_night, p.id'
    when '-price' then 'p.price_per_night desc, p.id desc'
    when 'created_at' then 'p.created_at, p.id'
    when '-created_at' then 'p.created_at desc, p.id desc'
    when 'rating' then 'p.rating_avg, p.id'
    when '-rating' then 'p.rating_avg desc, p.id desc'
    when 'name' then 'p.name, p.id'
    when '-name' then 'p.name desc, p.id desc'
    when '' then coalesce(v_rank, 'p.created_at desc, p.id desc')
  end;
  if v_order is null then
    perform app.invalid('ordering',
      'ordering must be one of price, -price, created_at, -created_at, rating, -rating, name, -name.');
  end if;

  v_cond := coalesce(nullif(array_to_string(v_where, E'\n    and '), ''), 'true');
  page_sql := format($sql$with s as (
  select row_number() over () as n, q.*
  from (
    select p.id, p.host_id, p.category_id, p.name, p.location, p.price_per_night, p.currency,
           p.max_guests, p.cancellation_policy, p.published, p.rating_avg, p.rating_count,
           p.created_at, p.updated_at
    from app.products p
    where %s
    order by %s
    limit %s offset %s) q)
select coalesce(json_agg(json_build_object(
         'id', s.id, 'name', s.name, 'location', s.location,
         'price_per_night', s.price_per_night::text, 'currency', s.currency, 'max_guests', s.max_guests,
         'category', json_build_object('id', c.id, 'name', c.name, 'slug', c.slug),
         'amenities', coalesce((select json_agg(pa.amenity order by pa.amenity)
                                  from app.product_amenities pa where pa.product_id = s.id), '[]'::json),
         'photo', (select '/media/' || ph.path from app.product_photos ph
                    where ph.product_id = s.id order by ph.position, ph.id limit 1),
         'rating_avg', s.rating_avg, 'rating_count', s.rating_count,
         'host', json_build_object('id', s.host_id, 'first_name', h.first_name, 'photo_url', h.photo_url),
         'cancellation_policy', s.cancellation_policy, 'published', s.published,
         'created_at', s.created_at, 'updated_at', s.updated_at) order by s.n), '[]'::json) as results,
       count(*) as n
from s
join app.categories c on c.id = s.category_id
left join app.public_profiles(array(select distinct s.host_id from s)) h on h.id = s.host_id$sql$,
    v_cond, v_order, page_size, (page - 1) * page_size);
  count_sql := format('select count(*) from (select from app.products p where %s limit 1001) c', v_cond);
  estimate_sql := format('explain (format json) select from app.products p where %s', v_cond);
end
$$;
comment on function app.product_list_sql(text, text, text, text, text, text, text, text, text, text, text, text, text) is
  'The statements api.product_list runs, built from only the filters present (values validated, then quoted as literals): page_sql returns (results json, n) for one page; count_sql counts matches up to 1001; estimate_sql is the EXPLAIN whose row estimate stands in above that. Same parameters as api.product_list; a bad value is a 400 naming the parameter. They carry the visibility rule of the policies on app.products for the calling role and user (published; your own with host=me; any of a host''s with host=<id> for admins). Returns text only: EXPLAIN its page_sql as the owner to see exactly what the API runs. SECURITY DEFINER only to read the caller''s role as api.product_list does (current_setting(''role''), which SECURITY DEFINER leaves alone).';

create function api.product_list(
  p_category text default null, p_search text default null, p_min_price text default null,
  p_max_price text default null, p_location text default null, p_guests text default null,
  p_amenities text default null, p_host text default null, p_ordering text default null,
  p_page text default null, p_page_size text default null, p_check_in text default null,
  p_check_out text default null)
returns table (count bigint, page int, page_size int, results json)
language plpgsql volatile security definer  -- volatile: EXPLAIN (the count estimate) is refused in stable functions
set search_path = pg_catalog, pg_temp
as $$
declare
  v record;
  v_results json;
  v_rows bigint;
  v_count bigint;
  v_plan json;
begin
  select * into v from app.product_list_sql(
    p_category => p_category, p_search => p_search, p_min_price => p_min_price, p_max_price => p_max_price,
    p_location => p_location, p_guests => p_guests, p_amenities => p_amenities, p_host => p_host,
    p_ordering => p_ordering, p_page => p_page, p_page_size => p_page_size,
    p_check_in => p_check_in, p_check_out => p_check_out);
  execute v.page_sql into v_results, v_rows;
  if v_rows = 0 and v.page > 1 then
    perform app.fail(404, 'Invalid page.', 'page');
  end if;
  if v_rows < v.page_size then
    -- a short page is the last one: the count is exact without counting
    v_count := (v.page - 1)::bigint * v.page_size + v_rows;
  else
    execute v.count_sql into v_count;
    if v_count > 1000 then
      execute v.estimate_sql into v_plan;
      v_count := greatest((v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint, 1001,
                          (v.page - 1)::bigint * v.page_size + v_rows + 1);
    end if;
  end if;
  return query select v_count, v.page, v.page_size, v_results;
end
$$;
comment on function api.product_list(text, text, text, text, text, text, text, text, text, text, text, text, text) is
  'GET /api/products/ — search the published listings. Filters, all combinable: category (slug or id), search (full-text over name, location and description, web-search syntax such as "sea view" -hostel; ranked by relevance when no ordering is given), min_price and max_price (per night, any currency), location (any part, ignoring case), guests (capacity at least n), amenities (comma list of slugs, all required), host (a user id, or "me": your own listings, unpublished included), check_in and check_out (YYYY-MM-DD, both: only listings free for the whole stay [check_in, check_out)). ordering: price, -price, created_at, -created_at (default), rating, -rating, name, -name. page from 1, page_size default 20, at most 100. count is exact up to 1,000 matches; above that it is the planner''s estimate (at least 1,001, and never less than the listings already paged through), as counting every match of a broad search would cost more than the page itself. A page past the end is a 404; a bad value is a 400 naming the parameter. Anyone. SECURITY DEFINER for speed: under row-level security PostgreSQL may not use an index for a non-leakproof operator (numeric >=, ilike, @@), so most filters would scan the table; the statement, built only by app.product_list_sql from validated and quoted values, therefore runs as the owner and carries the same visibility rule as the policies.';

-- ---------------------------------------------------------------------------------
-- Products: writing
-- ---------------------------------------------------------------------------------

create function app.product_owned(p_id uuid) returns void
language plpgsql stable security invoker
as $$
declare
  v_host uuid;
begin
  select p.host_id into v_host from app.products p where p.id = p_id;
  if not found then
    perform app.fail(404, 'Not found.');
  end if;
  if v_host is distinct from app.current_user_id() and not app.is_admin() then
    perform app.fail(403, 'Only the listing''s host or an admin may change it.');
  end if;
end
$$;
comment on function app.product_owned(uuid) is
  'Check the caller may change a listing: 404 when they cannot see it, 403 when they see it but neither host it nor are an admin.';

create function app.product_write(p_id uuid, p_body jsonb, p_partial boolean) returns uuid
language plpgsql volatile security invoker
as $$
declare
  v_field text;
  v_name text;
  v_description text;
  v_location text;
  v_price numeric;
  v_currency text;
  v_guests int;
  v_category uuid;
  v_policy app.cancellation_policy;
  v_published boolean;
  v_amenities text[];
  v_id uuid := p_id;
  v_raw text;
begin
  if not p_partial then
    foreach v_field in array array['name', 'description', 'location', 'price_per_night', 'max_guests', 'category'] loop
      if not p_body ? v_field then
        perform app.invalid(v_field, 'This field is required.');
      end if;
    end loop;
  end if;

  v_name := app.body_text(p_body, 'name', 1, 200);
  v_description := app.body_text(p_body, 'description', 0, 10000);
  v_location := app.body_text(p_body, 'location', 1, 300);

  v_price := app.parse_price(app.body_scalar(p_body, 'price_per_night'), 'price_per_night');
  if v_price > 10000000 then
    -- 365 nights must still fit a booking total (numeric(12,2)); 10M covers NGN, KES, JPY prices
    perform app.invalid('price_per_night', 'At most 10000000 per night.');
  end if;

  v_raw := app.body_scalar(p_body, 'max_guests');
  if v_raw is not null then
    if v_raw !~ '^\s*[0-9]{1,3}\s*$' or v_raw::int not between 1 and 100 then
      perform app.invalid('max_guests', 'max_guests must be a whole number from 1 to 100.');
    end if;
    v_guests := v_raw::int;
  end if;

  v_currency := upper(app.body_text(p_body, 'currency', 1, 3));
  if v_currency is not null and not exists (select from app.currencies cu where cu.code = v_currency) then
    perform app.invalid('currency', 'currency must be a supported ISO 4217 code, e.g. USD.');
  end if;

  v_raw := app.body_text(p_body, 'category', 1, 100);
  if v_raw is not null then
    v_category := app.category_find(v_raw);
    if v_category is null then
      perform app.invalid('category', 'Unknown category: give a category id or slug.');
    end if;
  end if;

  v_raw := app.body_text(p_body, 'cancellation_policy', 1, 20);
  if v_raw is not null then
    if v_raw not in ('flexible', 'moderate', 'strict') then
      perform app.invalid('cancellation_policy', 'cancellation_policy must be flexible, moderate or strict.');
    end if;
    v_policy := v_raw::app.cancellation_policy;
  end if;

  if p_body ? 'published' then
    if jsonb_typeof(p_body -> 'published') <> 'boolean' then
      perform app.invalid('published', 'published must be true or false.');
    end if;
    v_published := (p_body ->> 'published')::boolean;
  end if;

  if p_body ? 'amenities' then
    if jsonb_typeof(p_body -> 'amenities') <> 'array'
       or exists (select from jsonb_array_elements(p_body -> 'amenities') e where jsonb_typeof(e) <> 'string') then
      perform app.invalid('amenities', 'amenities must be a list of amenity slugs, e.g. ["wifi", "pool"].');
    end if;
    select coalesce(array_agg(distinct lower(btrim(e))), '{}') into v_amenities
    from jsonb_array_elements_text(p_body -> 'amenities') e;
    select a into v_raw from unnest(v_amenities) a
    where not exists (select from app.amenities am where am.slug = a) limit 1;
    if found then
      perform app.invalid('amenities', format('Unknown amenity: %s.', v_raw));
    end if;
  end if;

  if v_id is null then
    insert into app.products (host_id, category_id, name, description, location, price_per_night, currency,
                              max_guests, cancellation_policy, published)
    values (app.current_user_id(), v_category, v_name, v_description, v_location, v_price,
            coalesce(v_currency, 'USD'), v_guests, coalesce(v_policy, 'moderate'), coalesce(v_published, true))
    returning id into v_id;
  else
    -- Always touch the row, so updated_at (and the ETag) move even for amenity-only changes.
    update app.products p
       set category_id = coalesce(v_category, p.category_id),
           name = coalesce(v_name, p.name),
           description = coalesce(v_description, p.description),
           location = coalesce(v_location, p.location),
           price_per_night = coalesce(v_price, p.price_per_night),
           currency = coalesce(v_currency, p.currency),
           max_guests = coalesce(v_guests, p.max_guests),
           cancellation_policy = coalesce(v_policy, p.cancellation_policy),
           published = coalesce(v_published, p.published)
     where p.id = v_id;
    if not found then
      perform app.fail(403, 'Only the listing''s host or an admin may change it.');
    end if;
  end if;

  if v_amenities is not null then
    delete from app.product_amenities pa where pa.product_id = v_id and pa.amenity <> all(v_amenities);
    insert into app.product_amenities (product_id, amenity)
    select v_id, a from unnest(v_amenities) a
    except
    select pa.product_id, pa.amenity from app.product_amenities pa where pa.product_id = v_id;
  end if;
  return v_id;
end
$$;
comment on function app.product_write(uuid, jsonb, boolean) is
  'Create (p_id null) or change a listing from a JSON body. Known fields only: name, description, location, price_per_night (positive, at most 2 decimals; number or string), currency, max_guests (1-100), amenities (slugs; replaces the set), category (id or slug), cancellation_policy, published. Anything else (id, host, ratings, timestamps) is ignored; the host is always the caller. Unless p_partial, the fields name, description, location, price_per_night, max_guests and category are required. Each bad field is a 400 naming it.';

create function api.product_create(p_body jsonb) returns json
language plpgsql volatile security invoker
as $$
declare
  v_id uuid := app.product_write(null, p_body, false);
begin
  -- A statement of its own, so the (stable) read sees the row just written.
  return app.product_detail(v_id);
end
$$;
comment on function api.product_create(jsonb) is
  'POST /api/products/ — list a place: {name, description, location, price_per_night, currency? (USD), max_guests, amenities? [slugs], category (id or slug), cancellation_policy? (moderate), published? (true)}. The host is the caller; ids, host, ratings and timestamps in the body are ignored. Returns the listing in full (201). Hosts and admins.';

create function api.product_replace(p_id text, p_body jsonb) returns json
language plpgsql volatile security invoker
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
begin
  perform app.product_owned(v_id);
  perform app.product_write(v_id, p_body, false);
  return app.product_detail(v_id);
end
$$;
comment on function api.product_replace(text, jsonb) is
  'PUT /api/products/{id}/ — change a listing, giving every required field (name, description, location, price_per_night, max_guests, category); optional fields left out stay as they are. The listing''s host or an admin; another host gets 403, a listing you cannot see 404.';

create function api.product_update(p_id text, p_body jsonb) returns json
language plpgsql volatile security invoker
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
begin
  perform app.product_owned(v_id);
  perform app.product_write(v_id, p_body, true);
  return app.product_detail(v_id);
end
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
end
$$;
comment on function api.product_delete(text) is
  'DELETE /api/products/{id}/ — delete a listing with its amenities, photos and calendar (a listing with bookings cannot be deleted: 409; unpublish it instead). The listing''s host or an admin.';

create function api.product_photo_add(p_id text, p_path text, p_content_type text, p_size_bytes int)
returns json
language plpgsql volatile security invoker
as $$
declare
  v_id uuid := app.parse_uuid(p_id);
  v_photo json;
begin
  perform app.product_owned(v_id);
  perform app.check_media_path(p_path);
  if (select count(*) from app.product_photos ph where ph.product_id = v_id) >= 50 then
    perform app.fail(400, 'A listing has at most 50 photos; delete one first.', 'file');
  end if;
  insert into app.product_photos (product_id, path, content_type, size_bytes, position)
  values (v_id, p_path, p_content_type, p_size_bytes,
          coalesce((select max(ph.position) + 1 from app.product_photos ph where ph.product_id = v_id), 0))
  returning json_build_object('id', id, 'url', '/media/' || path, 'position', position) into v_photo;
  return v_photo;
end
$$;
comment on function api.product_photo_add(text, text, text, int) is
  'POST /api/products/{id}/photos/ — add a photo (multipart field "file": JPEG, PNG or WebP, checked by content and size by the API, stored under a generated name) after the listing''s others; returns {id, url, position} (201). At most 50 per listing. The listing''s host or an admin.';

create function api.product_photo_delete(p_id text, p_photo_id text) returns json
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
  return json_build_object('path', v_path);
end
$$;
comment on function api.product_photo_delete(text, text) is
  'DELETE /api/products/{id}/photos/{photo_id}/ — remove a photo from a listing (204); returns {path} of the file, which the API may then delete from storage. The listing''s host or an admin.';
