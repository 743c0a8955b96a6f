/*
 * Categories and amenities: the catalog's reference data.
 *
 * Why: listings belong to a category (apartment, villa, ...) and offer amenities (wifi,
 * pool, ...). Everyone reads both; admins manage categories; amenities are reference data
 * the owner maintains. Functions are SECURITY INVOKER: the policies in
 * sql/policies/20_catalog.sql decide who may change what; the functions add clear
 * 400/404/409 answers on top.
 */

create trigger categories_set_updated_at before update on app.categories
  for each row execute function app.tg__set_updated_at();

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

create function app.category_json(p_category app.categories) returns jsonb
language sql stable security invoker
as $$
  select jsonb_build_object(
    'id', p_category.id, 'name', p_category.name, 'slug', p_category.slug,
    'description', p_category.description,
    'created_at', p_category.created_at, 'updated_at', p_category.updated_at)
$$;
comment on function app.category_json(app.categories) is 'A category as the API shows it.';

create function api.category_list(p_page text default null, p_page_size text default null)
returns app.page
language plpgsql stable security invoker
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  select coalesce(max(x.total), 0), coalesce(json_agg(app.category_json(x.c) order by (x.c).name, (x.c).id), '[]')
    into v_count, v_results
    from (select c, count(*) over () as total
            from app.categories c
           order by c.name, c.id
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.category_list(text, text) is
  'GET /api/categories/ — every category, by name, paginated ({count, next, previous, results}). Anyone.';

create function api.category_get(p_id text) returns jsonb
language sql stable security invoker
as $$
  select app.category_json(c) from app.categories c where c.id = app.category_find(p_id)
$$;
comment on function api.category_get(text) is
  'GET /api/categories/{id or slug}/ — one category by id or slug; 404 when there is none. Anyone.';

create function app.category_write(p_id uuid, p_body jsonb, p_partial boolean) returns jsonb
language plpgsql volatile security invoker
as $$
declare
  v_errors jsonb := '{}';
  v_name text;
  v_slug text;
  v_constraint text;
  v_row app.categories;
begin
  v_errors := app.check_text(v_errors, p_body, 'name', 1, 100, p_required => not p_partial);
  v_errors := app.check_text(v_errors, p_body, 'slug', 1, 100);
  v_errors := app.check_text(v_errors, p_body, 'description', 0, 2000);
  v_name := btrim(p_body ->> 'name');
  v_slug := lower(btrim(p_body ->> 'slug'));
  if v_errors ? 'slug' then
    null;
  elsif v_slug !~ '^[a-z0-9]+(-[a-z0-9]+)*$' then
    v_errors := app.add_error(v_errors, 'slug', 'Use lowercase letters, digits and single hyphens, e.g. beach-houses.');
  elsif p_id is null and v_slug is null and not v_errors ? 'name' then
    v_slug := app.slugify(v_name);
    if v_slug = '' then
      v_errors := app.add_error(v_errors, 'slug', 'The name has no letters or digits to make a slug from; give a slug.');
    end if;
  end if;
  perform app.raise_errors(v_errors);

  if exists (select from app.categories c where lower(c.name) = lower(v_name) and c.id is distinct from p_id) then
    perform app.fail(409, 'A category with this name already exists.', 'name');
  end if;
  if exists (select from app.categories c where c.slug = v_slug and c.id is distinct from p_id) then
    perform app.fail(409, 'A category with this slug already exists.', 'slug');
  end if;

  begin
    if p_id is null then
      insert into app.categories (name, slug, description)
      values (v_name, v_slug, coalesce(btrim(p_body ->> 'description'), ''))
      returning * into v_row;
    else
      update app.categories c
         set name = coalesce(v_name, c.name),
             slug = coalesce(v_slug, c.slug),
             description = coalesce(btrim(p_body ->> 'description'), c.description)
       where c.id = p_id
      returning * into v_row;
    end if;
  exception when unique_violation then
    -- Taken by a concurrent request between the checks above and this write.
    get stacked diagnostics v_constraint = constraint_name;
    perform app.fail(409, 'A category with this name or slug already exists.',
                     case v_constraint when 'categories_slug_key' then 'slug' else 'name' end);
  end;
  return app.category_json(v_row);
end
$$;
comment on function app.category_write(uuid, jsonb, boolean) is
  'Create (p_id null) or change a category from a JSON body {name, slug?, description?}: reports every invalid field at once (400), generates the slug from the name when creating without one, and answers 409 for a name or slug already taken. Admins only (by grants and policies).';

create function api.category_create(p_body jsonb) returns jsonb
language sql volatile security invoker
as $$
  select app.category_write(null, p_body, false)
$$;
comment on function api.category_create(jsonb) is
  'POST /api/categories/ — create a category {name, slug?, description?}; the slug is generated from the name when absent; a taken name or slug is a 409. Admins.';

create function api.category_replace(p_id text, p_body jsonb) returns jsonb
language sql volatile security invoker
as $$
  select app.category_write(app.category_target(p_id), p_body, false)
$$;
comment on function api.category_replace(text, jsonb) is
  'PUT /api/categories/{id or slug}/ — replace a category: name required, slug and description optional (unchanged when absent). Admins.';

create function api.category_update(p_id text, p_body jsonb) returns jsonb
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
exception when foreign_key_violation then
  -- A listing the caller cannot see (someone's unpublished one) still uses it.
  perform app.fail(409, 'This category still has listings; move or delete them first.');
end
$$;
comment on function api.category_delete(text) is
  'DELETE /api/categories/{id or slug}/ — delete a category; 409 while any listing is in it. Admins.';

create function api.amenity_list(p_page text default null, p_page_size text default null)
returns app.page
language plpgsql stable security invoker
as $$
declare
  v_window app.page_window := app.page_window(p_page, p_page_size);
  v_count bigint;
  v_results json;
begin
  select coalesce(max(x.total), 0),
         coalesce(json_agg(jsonb_build_object('slug', x.slug, 'name', x.name) order by x.slug), '[]')
    into v_count, v_results
    from (select a.slug, a.name, count(*) over () as total
            from app.amenities a
           order by a.slug
           limit v_window.page_size offset v_window.skip) x;
  return app.page(v_window, v_count, v_results);
end
$$;
comment on function api.amenity_list(text, text) is
  'GET /api/amenities/ — the amenities a listing can offer ({slug, name}, by slug), paginated. Clients send and receive the slugs. Anyone.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_schema('Category', 'A listing category (app.category_json).', '{
  "id": "uuid", "name": "string", "slug": "string", "description": "string",
  "created_at": "date-time", "updated_at": "date-time"}');
select app.api_schema('Amenity', 'Something a listing can offer; clients send and receive the slug.', '{"slug": "string", "name": "string"}');
select app.api_operation('api.category_list', response => '"Category"');
select app.api_operation('api.category_create', response => '"Category"', errors => '{409}',
  body => '{"name": "string(1..100)", "slug?": {"type": "string", "maxLength": 100, "pattern": "^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$", "description": "Lowercase letters, digits and single hyphens (e.g. beach-houses); made from the name when left out."}, "description?": "string(0..2000)"}',
  example => '{"name": "Beach houses", "slug": "beach-houses", "description": "By the sea."}');
select app.api_operation('api.category_get', response => '"Category"',
  parameters => '{"id": {"type": "string", "description": "The id or the slug."}}');
select app.api_operation('api.category_replace', response => '"Category"', errors => '{409}',
  parameters => '{"id": {"type": "string", "description": "The id or the slug."}}',
  body => '{"name": "string(1..100)", "slug?": {"type": "string", "maxLength": 100, "pattern": "^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$", "description": "Lowercase letters, digits and single hyphens (e.g. beach-houses); made from the name when left out."}, "description?": "string(0..2000)"}');
select app.api_operation('api.category_update', response => '"Category"', errors => '{409}',
  parameters => '{"id": {"type": "string", "description": "The id or the slug."}}',
  body => '{"name?": "string(1..100)", "slug?": {"type": "string", "maxLength": 100, "pattern": "^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$", "description": "Lowercase letters, digits and single hyphens (e.g. beach-houses); made from the name when left out."}, "description?": "string(0..2000)"}');
select app.api_operation('api.category_delete', errors => '{409}',
  parameters => '{"id": {"type": "string", "description": "The id or the slug."}}');
select app.api_operation('api.amenity_list', response => '"Amenity"');
