/*
 * Product search: GET /api/products/ — filters, full-text search, ordering, pages.
 *
 * Why this runs as the owner: under row-level security PostgreSQL will not use an index
 * for non-leakproof operators (numeric comparisons, ilike, @@), so every filter would scan.
 * api.product_list is therefore SECURITY DEFINER and writes the policies' visibility rule
 * into its statement (published; your own with host=me; any of a host's for admins).
 *
 * How: api.product_list validates its text parameters, then builds its statement from only
 * the filters present (app.product_filter_sql, app.product_list_sql), so each combination of
 * filters is planned on its own with the values known, and every filter and ordering can be
 * served by an index (tests/sql/test_catalog_plans.py pins this with EXPLAIN). Only the choice
 * of ids is planned per request: each result is app.product_json (21_products.sql), built in
 * the same statement by app.product_page, whose plan is kept for the session; the page is app.page.
 *
 * On the map (near, radius_km, bbox, ordering=distance, distance_km): PostGIS over the listings'
 * public points (app.products.map_point, sql/schema/0028_geo.sql), never the exact ones, through
 * GiST indexes. Facets (api.product_facets) count under the same filters in one statement. A
 * text search that full text matches nowhere falls back to trigram similarity (fuzzy).
 */

create function app.product_page(p_ids uuid[], p_distances float8[] default null, out results json, out n bigint)
language plpgsql stable security invoker
as $$
begin
  -- Every name qualified: called from statements run under search_path = pg_catalog, pg_temp.
  -- A search result shows the public point (no exact place: null), and with near its distance.
  select coalesce(pg_catalog.json_agg(app.product_json(p, c, h.first_name, h.photo_url,
                    (select pg_catalog.jsonb_agg(pa.amenity order by pa.amenity)
                       from app.product_amenities pa where pa.product_id = p.id),
                    null,
                    (select app.photo_json(ph.path, ph.width, ph.height, ph.size_bytes, ph.placeholder, ph.variants)
                       from app.product_photos ph where ph.product_id = p.id order by ph.position, ph.id limit 1),
                    false, null)
                  || case when p_distances is null then '{}'::jsonb
                          else pg_catalog.jsonb_build_object(
                                 'distance_km', pg_catalog.round(p_distances[s.n]) / 1000) end
                  order by s.n),
                  '[]'::json),
         pg_catalog.count(*)
    into results, n
  from pg_catalog.unnest(p_ids) with ordinality s(id, n)
  join app.products p on p.id = s.id
  join app.categories c on c.id = p.category_id
  left join app.public_profiles(array(select distinct p2.host_id from app.products p2 where p2.id = any(p_ids))) h
    on h.id = p.host_id;
end
$$;
comment on function app.product_page(uuid[], float8[]) is
  'One page of search results: the listings of p_ids in that order, each as app.product_json (with its host''s public profile and its public point; with p_distances, metres in the same order, also distance_km), as a JSON array, and how many there are. PL/pgSQL so that this statement, the same for every search, is planned once per session; only the choice of ids (app.product_list_sql''s page_sql) is planned per request. SECURITY INVOKER: run as the caller, RLS decides what it can read (api.product_list runs it as the owner).';

-- ---------------------------------------------------------------------------------
-- Counts kept by the database (app_private.catalog_counts, sql/schema/0018_catalog_counts.sql)
-- ---------------------------------------------------------------------------------

create function app.catalog_terms(p_search tsvector)
returns setof text
language sql immutable strict parallel safe
as $$
  select '' union all select pg_catalog.unnest(pg_catalog.tsvector_to_array(p_search))
$$;
comment on function app.catalog_terms(tsvector) is
  'The terms a published listing counts under in app_private.catalog_counts: '''' (every listing) and each lexeme of its search vector.';

create function app.tg_products__catalog_counts() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  -- One statement per write: + for each published listing written, - for each replaced or
  -- deleted, summed per (category, term); an update that changes no counted column sums to
  -- nothing. In key order, so concurrent writers lock the rows they share in the same order.
  -- (An upsert for the decrements too: a CHECK (listings >= 0) would refuse the proposed
  -- negative row before its conflict turns it into an update, so the table has none.)
  if tg_op = 'INSERT' then
    insert into app_private.catalog_counts as c (category_id, term, listings)
    select n.category_id, t.term, count(*)
    from added n, app.catalog_terms(n.search) t(term)
    where n.published
    group by 1, 2
    order by 1, 2
    on conflict (category_id, term) do update set listings = c.listings + excluded.listings;
  elsif tg_op = 'UPDATE' then
    insert into app_private.catalog_counts as c (category_id, term, listings)
    select d.category_id, d.term, sum(d.delta)
    from (select n.category_id, t.term, 1 as delta
          from added n, app.catalog_terms(n.search) t(term) where n.published
          union all
          select o.category_id, t.term, -1
          from removed o, app.catalog_terms(o.search) t(term) where o.published) d
    group by 1, 2
    having sum(d.delta) <> 0
    order by 1, 2
    on conflict (category_id, term) do update set listings = c.listings + excluded.listings;
  else
    insert into app_private.catalog_counts as c (category_id, term, listings)
    select o.category_id, t.term, -count(*)
    from removed o, app.catalog_terms(o.search) t(term)
    where o.published
    group by 1, 2
    order by 1, 2
    on conflict (category_id, term) do update set listings = c.listings + excluded.listings;
  end if;
  return null;
end
$$;
comment on function app.tg_products__catalog_counts() is
  'Statement trigger on app.products (inserts, updates, deletes, with their transition tables): keeps app_private.catalog_counts equal to the published listings per category and lexeme, in the writing transaction. Security definer: hosts and admins write listings, only the owner writes the counts (app_private.catalog_counts).';

create trigger catalog_counts_insert after insert on app.products
  referencing new table as added for each statement execute function app.tg_products__catalog_counts();
create trigger catalog_counts_update after update on app.products
  referencing old table as removed new table as added for each statement execute function app.tg_products__catalog_counts();
create trigger catalog_counts_delete after delete on app.products
  referencing old table as removed for each statement execute function app.tg_products__catalog_counts();

create function app.catalog_counts_rebuild() returns bigint
language plpgsql volatile security invoker
as $$
declare
  v_rows bigint;
begin
  -- No listing is written meanwhile (SHARE blocks writers and waits for those in flight), so
  -- the counts match the listings when the triggers take over.
  lock table app.products in share mode;
  delete from app_private.catalog_counts;
  insert into app_private.catalog_counts (category_id, term, listings)
  select p.category_id, t.term, count(*)
  from app.products p, app.catalog_terms(p.search) t(term)
  where p.published
  group by 1, 2;
  get diagnostics v_rows = row_count;
  return v_rows;
end
$$;
comment on function app.catalog_counts_rebuild() is
  'Recompute app_private.catalog_counts from app.products (published listings per category and lexeme); returns how many rows it holds. A migrate calls it (api/migrate.py), once the policies exist, when app.catalog_counts_definition() changed; a DBA may too. The owner''s: no client role may execute it.';

create function app.catalog_counts_definition() returns text
language sql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
  select md5(string_agg(d, E'\n' order by d))
    from (select pg_get_functiondef(p.oid)
            from pg_proc p
           where p.oid in ('app.catalog_terms(tsvector)'::regprocedure, 'app.tg_products__catalog_counts()'::regprocedure,
                           'app.catalog_counts_rebuild()'::regprocedure)
          union all
          select pg_get_triggerdef(t.oid)
            from pg_trigger t
           where t.tgrelid = 'app.products'::regclass and t.tgfoid = 'app.tg_products__catalog_counts()'::regprocedure
          union all
          select a.attname || ' ' || pg_get_expr(d.adbin, d.adrelid)
            from pg_attrdef d join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
           where d.adrelid = 'app.products'::regclass and a.attname = 'search') x(d)
$$;
comment on function app.catalog_counts_definition() is
  'A fingerprint of what the catalog counts mean: the functions and triggers that keep them and the listing''s search vector they count. api.migrate rebuilds app_private.catalog_counts only when it differs from app_private.code_state.counts_definition: a migrate that re-creates the triggers in its transaction (no write falls between) needs no rebuild otherwise.';

-- ---------------------------------------------------------------------------------
-- Where: near=lat,lng (with radius_km), bbox=minLng,minLat,maxLng,maxLat
-- ---------------------------------------------------------------------------------

create function app.parse_degrees(p_value text, p_field text, p_count int, p_form text) returns float8[]
language plpgsql stable security invoker
as $$
begin
  if p_value is null then
    return null;
  end if;
  if p_value !~ ('^[+-]?[0-9]{1,3}(\.[0-9]{1,20})?(,[+-]?[0-9]{1,3}(\.[0-9]{1,20})?){' || (p_count - 1) || '}$') then
    perform app.invalid(p_field, format('%s must be %s: decimal degrees separated by commas.', p_field, p_form));
  end if;
  return pg_catalog.string_to_array(p_value, ',')::float8[];
end
$$;
comment on function app.parse_degrees(text, text, int, text) is
  'Parse p_count decimal degrees separated by commas (no spaces, at most 20 decimals each), e.g. near=6.45,3.40; anything else is a 400 naming p_field, which says the expected form (p_form). Ranges are the caller''s to check. Null stays null.';

create function app.product_place_sql(p_near text, p_radius_km text, p_bbox text,
                                      out conditions text[], out distance text)
language plpgsql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_near float8[] := app.parse_degrees(p_near, 'near', 2, 'lat,lng');
  v_box float8[] := app.parse_degrees(p_bbox, 'bbox', 4, 'minLng,minLat,maxLng,maxLat');
  v_radius numeric;
  v_center text;
begin
  conditions := '{}';
  if v_near is not null then
    if abs(v_near[1]) > 90 then
      perform app.invalid('near', 'near: the latitude (first) must be between -90 and 90.');
    elsif abs(v_near[2]) > 180 then
      perform app.invalid('near', 'near: the longitude (second) must be between -180 and 180.');
    end if;
    -- Every name qualified: the statements run under search_path = pg_catalog, pg_temp.
    v_center := format('extensions.st_setsrid(extensions.st_makepoint(%s, %s), 4326)::extensions.geography',
                       v_near[2], v_near[1]);
    -- Metres on the sphere, from the public point: the KNN operator of products_map_point_idx.
    distance := format('(p.map_point operator(extensions.<->) %s)', v_center);
  end if;
  if p_radius_km is not null then
    if v_near is null then
      perform app.invalid('radius_km', 'Give near=lat,lng with radius_km.');
    end if;
    if p_radius_km !~ '^[0-9]{1,5}(\.[0-9]{1,6})?$' or p_radius_km::numeric <= 0 or p_radius_km::numeric > 500 then
      perform app.invalid('radius_km', 'radius_km must be a number of kilometres above 0 and at most 500.');
    end if;
    v_radius := p_radius_km::numeric;
    conditions := conditions || format('extensions.st_dwithin(p.map_point, %s, %s, false)', v_center, v_radius * 1000);
  elsif v_near is not null then
    conditions := conditions || 'p.map_point is not null'::text;  -- near: listings on the map, each with its distance
  end if;
  if v_box is not null then
    if abs(v_box[1]) > 180 or abs(v_box[3]) > 180 then
      perform app.invalid('bbox', 'bbox: longitudes (first and third) must be between -180 and 180.');
    elsif abs(v_box[2]) > 90 or abs(v_box[4]) > 90 then
      perform app.invalid('bbox', 'bbox: latitudes (second and fourth) must be between -90 and 90.');
    elsif v_box[2] > v_box[4] then
      perform app.invalid('bbox', 'bbox: the corners are swapped: minLat (second) is north of maxLat (fourth).');
    elsif v_box[2] = v_box[4] or v_box[1] = v_box[3] then
      perform app.invalid('bbox', 'bbox: the box has no area.');
    end if;
    -- A rectangle of longitudes and latitudes, as a map draws its viewport: geometry, not geography
    -- (whose edges would be great circles). West of east crosses the antimeridian (RFC 7946, 5.2):
    -- two rectangles, one each side.
    if v_box[1] < v_box[3] then
      conditions := conditions || format(
        'p.map_geom operator(extensions.&&) extensions.st_makeenvelope(%s, %s, %s, %s, 4326)',
        v_box[1], v_box[2], v_box[3], v_box[4]);
    else
      conditions := conditions || format(
        '(p.map_geom operator(extensions.&&) extensions.st_makeenvelope(%s, %s, 180, %s, 4326)'
        ' or p.map_geom operator(extensions.&&) extensions.st_makeenvelope(-180, %s, %s, %s, 4326))',
        v_box[1], v_box[2], v_box[4], v_box[2], v_box[3], v_box[4]);
    end if;
  end if;
end
$$;
comment on function app.product_place_sql(text, text, text) is
  'The place filters of the catalog search as SQL over app.products p, values validated and written as literals: near=lat,lng (with radius_km: within that many km, 0 < radius_km <= 500; without: listings that have a point), bbox=minLng,minLat,maxLng,maxLat (a rectangle of longitudes and latitudes, on map_geom; west greater than east crosses the antimeridian and is searched as two rectangles; south north of north is a 400); and distance, the metres from near to each listing''s public point (the KNN operator on map_point). Every one reads the public point, never the exact one.';

-- ---------------------------------------------------------------------------------
-- The filters, shared by the list and the facets
-- ---------------------------------------------------------------------------------

create function app.product_filter_sql(
  p_category text default null, p_search text default null, p_min_price text default null,
  p_max_price text default null, p_location text default null, p_guests text default null,
  p_amenities text default null, p_host text default null, p_check_in text default null,
  p_check_out text default null, p_near text default null, p_radius_km text default null,
  p_bbox text default null, p_fuzzy boolean default false,
  out cond text, out rank_key text, out distance text, out count_sql text, out estimate_sql text,
  out searched boolean, out walk_cond text)
language plpgsql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  v_me uuid := app.current_user_id();
  -- The caller's role: SET ROLE (the API's set_config('role', ...)) is not changed by
  -- SECURITY DEFINER, unlike current_user. 'none' is a direct owner session (a DBA).
  -- why: which rows (unpublished listings too) an admin sees: no grant can say it.
  v_sees_all boolean := current_setting('role') in ('admin', 'none');
  v_where text[] := '{}';
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
  v_place record;
  v_lexemes text[];
  v_term text;       -- the count's term in app_private.catalog_counts, when it can answer
  v_words text;
begin
  searched := false;
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
      searched := true;
      if p_fuzzy then
        -- Typo tolerance: what full-text search did not find, by trigrams of name and location
        -- (word similarity, pg_trgm.word_similarity_threshold: 0.6 by default), through their GIN
        -- trigram indexes. "Lisbn" finds "Alfama, Lisbon, Portugal".
        v_words := lower(btrim(p_search));
        v_where := v_where || format(
          '(%1$L operator(extensions.<%%) p.name or %1$L operator(extensions.<%%) p.location)', v_words);
        rank_key := format(
          'greatest(extensions.word_similarity(%1$L, p.name), extensions.word_similarity(%1$L, p.location))', v_words);
      else
        v_where := v_where || format('p.search @@ websearch_to_tsquery(''english'', %L)', p_search);
        rank_key := format('ts_rank(p.search, websearch_to_tsquery(''english'', %L))', p_search);
      end if;
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
  perform app.raise_errors(app.check_stay('{}', v_check_in, v_check_out, 3660, p_from_today => false,
                                          p_start_field => 'check_in', p_end_field => 'check_out'));
  if v_check_in is not null then
    v_where := v_where || format(
      'not exists (select from app.calendar_entries ce where ce.product_id = p.id and ce.stay && daterange(%L::date, %L::date))',
      v_check_in, v_check_out);
  end if;

  select * into v_place from app.product_place_sql(p_near, p_radius_km, p_bbox);
  distance := v_place.distance;
  if p_bbox is not null and p_radius_km is null then
    -- The same filter with the viewport out of the indexes' reach (IS TRUE is no operator an
    -- index serves): for a page of a dense area, walking the ordering's index and testing each
    -- listing (a rectangle test costs next to nothing) beats reading every listing of the area
    -- to sort them, and the planner cannot know the area is dense (PostGIS's statistics are a
    -- grid of cells far wider than a city: it guessed 100 listings in central Lagos for 4,700).
    -- api.product_list chooses by the count. (A radius is meant nearest first, by the index.)
    walk_cond := array_to_string(v_where || array(select '(' || c || ') is true' from unnest(v_place.conditions) c),
                                 E'\n    and ');
  end if;
  v_where := v_where || v_place.conditions;

  cond := coalesce(nullif(array_to_string(v_where, E'\n    and '), ''), 'true');
  -- The count. Of a category, a single word, both or neither over the public catalog, it is
  -- kept by the database (app_private.catalog_counts): exact at any size, one row read. Else
  -- the matches are counted up to 1,001, and the planner's estimate stands in above 1,000.
  if v_host is null and v_min is null and v_max is null and nullif(btrim(p_location), '') is null
     and v_guests is null and coalesce(cardinality(v_amenities), 0) = 0 and v_check_in is null
     and cardinality(v_place.conditions) = 0 and not p_fuzzy then
    if v_query is null or numnode(v_query) = 0 then
      v_term := '';
    else
      -- One word: the query is exactly that lexeme (no negation, phrase or second word).
      v_lexemes := tsvector_to_array(to_tsvector('english', p_search));
      if numnode(v_query) = 1 and cardinality(v_lexemes) = 1 and v_lexemes[1] !~ '[\\'']'
         and v_query = quote_literal(v_lexemes[1])::tsquery then
        v_term := v_lexemes[1];
      end if;
    end if;
  end if;
  if v_term is not null then
    count_sql := format('select coalesce(sum(c.listings), 0) from app_private.catalog_counts c where c.term = %L%s',
                        v_term, case when v_category is null then ''
                                     else format(' and c.category_id = %L::uuid', v_category) end);
  else
    count_sql := format('select count(*) from (select from app.products p where %s limit 1001) c', cond);
    estimate_sql := format('explain (format json) select from app.products p where %s', cond);
  end if;
end
$$;
comment on function app.product_filter_sql(text, text, text, text, text, text, text, text, text, text, text, text, text, boolean) is
  'The catalog search''s filters as one SQL condition over app.products p (cond; and walk_cond, the same with the place conditions where no index serves them, for a page of a dense area), built from only the filters present, values validated (a 400 naming the parameter) and written as literals, with the visibility rule of the policies on app.products for the calling role and user (published; your own with host=me; any of a host''s with host=<id> for admins). Also: rank_key, the relevance of a text search; distance, metres from near= (app.product_place_sql); count_sql, the count (read from app_private.catalog_counts, exact, when the filters are a category, a single word, both or neither; else the matches counted up to 1001) and estimate_sql (null when the count is exact: the EXPLAIN whose row estimate stands in above 1,000); searched, whether a text search filters. With p_fuzzy the text search is by trigram word similarity of name and location instead of full text (the fallback when full text finds nothing). Shared by app.product_list_sql and app.product_facets_sql.';

-- ---------------------------------------------------------------------------------
-- The list
-- ---------------------------------------------------------------------------------

create function app.product_list_sql(
  p_category text default null, p_search text default null, p_min_price text default null,
  p_max_price text default null, p_location text default null, p_guests text default null,
  p_amenities text default null, p_host text default null, p_ordering text default null,
  p_page text default null, p_page_size text default null, p_check_in text default null,
  p_check_out text default null, p_cursor text default null, p_near text default null,
  p_radius_km text default null, p_bbox text default null, p_fuzzy boolean default false,
  out page_sql text, out count_sql text, out estimate_sql text, out page_window app.page_window,
  out cursor_ordering text, out searched boolean, out fuzzy boolean, out walk_sql text)
language plpgsql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  f record;
  v_order text;
  v_rank text;
  v_key text;        -- the ordering's first key, as SQL
  v_key_text text;   -- that key as cursor text, as SQL
  v_key_literal text;
  v_name text;       -- the cursor's ordering without ~ and -
  v_desc boolean;
  v_cursor json;
  v_after text;
  v_cond text;
  v_rows text;       -- the page's rows (id, cursor key, distance), as SQL
  v_limit int;
  v_offset text;
  v_conds text[];
  v_sql text;
begin
  if p_cursor is not null and p_page is not null then
    perform app.invalid('cursor', 'Give page or cursor, not both.');
  end if;
  page_window := app.page_window(p_page, p_page_size);
  -- A cursor's text is base64url of JSON [ordering, key, id]; the ordering of a search read by
  -- similarity (the fuzzy fallback) starts with ~, and so does every page after it.
  if nullif(p_cursor, '') is not null then
    begin
      v_cursor := convert_from(decode(translate(p_cursor, '-_', '+/') || repeat('=', (4 - length(p_cursor) % 4) % 4),
                                      'base64'), 'utf8')::json;
      if json_typeof(v_cursor) <> 'array' or json_array_length(v_cursor) <> 3 then
        raise invalid_parameter_value;
      end if;
    exception when others then
      v_cursor := null;
    end;
    if v_cursor is null then
      perform app.invalid('cursor', 'Invalid cursor.');
    end if;
  end if;
  fuzzy := p_fuzzy or coalesce(v_cursor ->> 0 like '~%', false);

  select * into f from app.product_filter_sql(
    p_category => p_category, p_search => p_search, p_min_price => p_min_price, p_max_price => p_max_price,
    p_location => p_location, p_guests => p_guests, p_amenities => p_amenities, p_host => p_host,
    p_check_in => p_check_in, p_check_out => p_check_out, p_near => p_near, p_radius_km => p_radius_km,
    p_bbox => p_bbox, p_fuzzy => fuzzy);
  searched := f.searched;
  fuzzy := fuzzy and f.searched;
  count_sql := f.count_sql;
  estimate_sql := f.estimate_sql;
  if f.rank_key is not null then
    v_rank := f.rank_key || ' desc, p.id';
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
    when 'distance' then f.distance || ', p.id'
    when '' then coalesce(v_rank, 'p.created_at desc, p.id desc')
  end;
  if btrim(p_ordering) = 'distance' and f.distance is null then
    perform app.invalid('ordering', 'ordering=distance needs near=lat,lng.');
  end if;
  if v_order is null then
    perform app.invalid('ordering',
      'ordering must be one of price, -price, created_at, -created_at, rating, -rating, name, -name, distance.');
  end if;

  -- A cursor (keyset pagination): the page starts after the row it names, found through the
  -- ordering's index, so no row before it is read. Its text is base64url of JSON
  -- [ordering, key, id]; the key is exact text for its type (timestamps in microseconds since
  -- the epoch, so no session setting changes them; distances as float8, which prints exactly).
  if p_cursor is not null then
    cursor_ordering := case when fuzzy then '~' else '' end
                       || coalesce(nullif(btrim(p_ordering), ''), case when v_rank is null then '-created_at' else 'relevance' end);
    v_name := ltrim(ltrim(cursor_ordering, '~'), '-');
    v_desc := ltrim(cursor_ordering, '~') like '-%' or v_name = 'relevance';
    v_key := case v_name
      when 'price' then 'p.price_per_night' when 'created_at' then 'p.created_at' when 'rating' then 'p.rating_avg'
      when 'name' then 'p.name' when 'relevance' then f.rank_key when 'distance' then f.distance end;
    v_key_text := case when v_key = 'p.created_at' then '((extract(epoch from p.created_at) * 1000000)::bigint)::text'
                       else format('(%s)::text', v_key) end;
    if v_cursor is not null then
      begin
        v_key_literal := case v_name
          when 'created_at' then format('%L::timestamptz',
            timestamptz 'epoch' + (v_cursor ->> 1)::bigint * interval '1 microsecond')
          when 'name' then format('%L::text', v_cursor ->> 1)
          when 'relevance' then format('%L::real', (v_cursor ->> 1)::real)
          when 'distance' then format('%L::float8', (v_cursor ->> 1)::float8)
          else format('%L::numeric', (v_cursor ->> 1)::numeric) end;
        v_after := format('%L::uuid', (v_cursor ->> 2)::uuid);
      exception when others then
        v_key_literal := null;
      end;
      if v_key_literal is null or v_after is null then
        perform app.invalid('cursor', 'Invalid cursor.');
      end if;
      if v_cursor ->> 0 is distinct from cursor_ordering then
        perform app.invalid('cursor', 'This cursor belongs to another ordering: start again without it.');
      end if;
      v_after := case when v_name = 'relevance'  -- rank descending, id ascending
        then format('(%1$s < %2$s or (%1$s = %2$s and p.id > %3$s))', v_key, v_key_literal, v_after)
        else format('(%s, p.id) %s (%s, %s)', v_key, case when v_desc then '<' else '>' end, v_key_literal, v_after) end;
    end if;
  end if;

  -- The page statement; with place conditions and an ordering other than distance, a second one
  -- that walks the ordering's index (walk_sql, from f.walk_cond), for a dense area.
  v_conds := array[f.cond];
  if f.walk_cond is not null and coalesce(v_name, btrim(p_ordering), '') <> 'distance' then
    v_conds := v_conds || f.walk_cond;
  end if;
  foreach v_cond in array v_conds loop
    if p_cursor is null and f.distance is null then
      -- The page's ids in order (the only part planned for each request), then the listings
      -- as JSON by app.product_page, whose statement keeps its plan for the session.
      v_sql := format($sql$select r.results, r.n from app.product_page(array(
    select p.id
    from app.products p
    where %s
    order by %s
    limit %s offset %s)) r$sql$,
        v_cond, v_order, page_window.page_size, page_window.skip);
    else
      -- With a cursor: one row more than the page (whether a next page exists) and the last row's
      -- key and id. With near: each row's distance, for distance_km.
      v_limit := page_window.page_size + case when p_cursor is null then 0 else 1 end;
      v_offset := case when p_cursor is null and page_window.skip > 0 then format(' offset %s', page_window.skip) else '' end;
      v_rows := format('select p.id, %s as k, %s as d
                  from app.products p
                  where %s', coalesce(v_key_text, 'null::text'), coalesce(f.distance, 'null::float8'),
                       v_cond || coalesce(E'\n    and ' || v_after, ''));
      if coalesce(v_name, btrim(p_ordering), '') = 'distance' then
        -- Nearest first through the index (KNN), which orders by distance alone: the rows up to the
        -- page's last distance, ties included, then those by (distance, id).
        v_rows := format('select z.id, z.k, z.d from (%s
                  order by %s
                  fetch first %s rows with ties) z
                  order by z.d, z.id
                  limit %s%s', v_rows, f.distance, v_limit + case when p_cursor is null then page_window.skip else 0 end,
                         v_limit, v_offset);
      else
        v_rows := format('%s
                  order by %s
                  limit %s%s', v_rows, v_order, v_limit, v_offset);
      end if;
      v_sql := format($sql$select r.results, r.n%2$s
from (select count(*) as n, array_agg(x.id order by x.n) as ids, array_agg(x.k order by x.n) as keys,
             array_agg(x.d order by x.n) as ds
      from (select row_number() over () as n, y.id, y.k, y.d
            from (%1$s) y) x) q,
     app.product_page(coalesce(q.ids[1:%3$s], '{}'), %4$s) r$sql$,
        v_rows,
        case when p_cursor is null then '' else format(', q.n > %1$s, q.keys[%1$s], q.ids[%1$s]', page_window.page_size) end,
        page_window.page_size,
        case when f.distance is null then 'null' else format('q.ds[1:%s]', page_window.page_size) end);
    end if;
    if page_sql is null then
      page_sql := v_sql;
    else
      walk_sql := v_sql;
    end if;
  end loop;
end
$$;
comment on function app.product_list_sql(text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, boolean) is
  'The statements api.product_list runs, built from only the filters present (app.product_filter_sql: values validated, then quoted as literals): page_sql returns (results json, n) for one page (its ids chosen and ordered, then app.product_page; with near, each one''s distance too), and with a cursor (results, n, more, the last row''s key as text, its id), the page starting after the cursor''s row, found through the ordering''s index; cursor_ordering names the ordering a cursor belongs to (with ~ before it for a search read by similarity); walk_sql (with a place filter, unless by distance) is page_sql with the place conditions out of the indexes'' reach, which walks the ordering''s index: api.product_list runs it for an area of more than 1,000 matches; count_sql and estimate_sql count (see app.product_filter_sql); searched says whether a text search filters, fuzzy whether it is the similarity fallback (p_fuzzy, or a cursor of one). Same parameters as api.product_list; a bad value is a 400 naming the parameter. They carry the visibility rule of the policies on app.products for the calling role and user. Returns text only: EXPLAIN its page_sql as the owner to see exactly what the API runs. It reads the caller''s role as current_setting(''role''), which its SECURITY DEFINER caller api.product_list leaves alone.';

create function api.product_list(
  p_category text default null, p_search text default null, p_min_price text default null,
  p_max_price text default null, p_location text default null, p_guests text default null,
  p_amenities text default null, p_host text default null, p_ordering text default null,
  p_page text default null, p_page_size text default null, p_check_in text default null,
  p_check_out text default null, p_cursor text default null, p_near text default null,
  p_radius_km text default null, p_bbox text default null)
returns app.page
language plpgsql volatile security definer  -- volatile: EXPLAIN (the count estimate) is refused in stable functions
set search_path = pg_catalog, pg_temp
as $$
declare
  v record;
  v_fuzzy boolean := false;
  v_results json;
  v_rows bigint;
  v_count bigint;
  v_plan json;
  v_more boolean;
  v_last_key text;
  v_last_id uuid;
  v_page_sql text;
begin
  loop
    select * into v from app.product_list_sql(
      p_category => p_category, p_search => p_search, p_min_price => p_min_price, p_max_price => p_max_price,
      p_location => p_location, p_guests => p_guests, p_amenities => p_amenities, p_host => p_host,
      p_ordering => p_ordering, p_page => p_page, p_page_size => p_page_size,
      p_check_in => p_check_in, p_check_out => p_check_out, p_cursor => p_cursor,
      p_near => p_near, p_radius_km => p_radius_km, p_bbox => p_bbox, p_fuzzy => v_fuzzy);
    v_page_sql := v.page_sql;
    v_count := null;  -- counted for this statement (v) or not
    if v.walk_sql is not null then
      -- A place filter: count first (that count is needed for a full page anyway); an area
      -- with more than 1,000 matches is dense, and its page walks the ordering's index.
      execute v.count_sql into v_count;
      if v_count > 1000 then
        v_page_sql := v.walk_sql;
      end if;
    end if;
    if p_cursor is not null then
      execute v_page_sql into v_results, v_rows, v_more, v_last_key, v_last_id;
    else
      execute v_page_sql into v_results, v_rows;
    end if;
    -- Typo tolerance: a text search whose full text matches nothing at all (not merely a page
    -- past its matches) is searched again by similarity, and the page says so (fuzzy).
    exit when v_rows > 0 or v.fuzzy or not v.searched or nullif(p_cursor, '') is not null;
    if v_count is null then
      execute v.count_sql into v_count;
    end if;
    exit when v_count > 0;
    v_fuzzy := true;
  end loop;
  if p_cursor is not null then
    -- By cursor: count as a first page would (the rows before the cursor are unknown).
    if v_count is null then
      execute v.count_sql into v_count;
    end if;
    if v_count > 1000 and v.estimate_sql is not null then
      execute v.estimate_sql into v_plan;
      v_count := greatest((v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint, 1001);
    end if;
    return app.page(v.page_window, v_count, v_results,
      case when v_more then translate(rtrim(encode(convert_to(
        json_build_array(v.cursor_ordering, v_last_key, v_last_id)::text, 'utf8'), 'base64'), '='), E'+/\n', '-_') end,
      case when v.fuzzy then true end);
  end if;
  if v_rows < (v.page_window).page_size then
    -- a short page is the last one: the count is exact without counting
    v_count := (v.page_window).skip + v_rows;
  else
    if v_count is null then
      execute v.count_sql into v_count;
    end if;
    if v_count > 1000 and v.estimate_sql is not null then
      execute v.estimate_sql into v_plan;
      v_count := greatest((v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint, 1001,
                          (v.page_window).skip + v_rows + 1);
    end if;
  end if;
  return app.page(v.page_window, v_count, v_results, null, case when v.fuzzy then true end);
end
$$;
comment on function api.product_list(text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text) is
  'GET /api/products/ — search the published listings. Filters, all combinable: category (slug or id), search (full-text over name, location and description, web-search syntax such as "sea view" -hostel; ranked by relevance when no ordering is given; when full text matches nothing, the same words are matched by similarity to names and locations instead, so "Lisbn" finds Lisbon, and the page says "fuzzy": true), min_price and max_price (per night, any currency), location (any part, ignoring case), guests (capacity at least n), amenities (comma list of slugs, all required), host (a user id, or "me": your own listings, unpublished included), check_in and check_out (YYYY-MM-DD, both: only listings free for the whole stay [check_in, check_out)), near=lat,lng (listings with a point, each with distance_km; with radius_km, 0 to 500, only those within it), bbox=minLng,minLat,maxLng,maxLat (a map viewport; minLng greater than maxLng crosses the antimeridian; minLat above maxLat is a 400). Places are the listings'' public points, 150-400 m from the exact ones (which only the host and confirmed guests see), so a search says no more about where a listing is than its pin. ordering: price, -price, created_at, -created_at (default), rating, -rating, name, -name, distance (nearest first; needs near). page from 1, page_size default 20, at most 100. cursor instead of page (keyset pagination, for deep pages): empty for the first page, then the next_cursor of the page before; each page starts right after the last row of the previous one, so it costs what a first page costs (by distance, the nearer listings are read from the index again) and is stable while listings are added; a cursor belongs to its ordering. count is exact for a category, a single word, both or neither (the database keeps those counts as listings change, app_private.catalog_counts); with any other filter it is exact up to 1,000 matches and above that the planner''s estimate (at least 1,001, and never less than the listings already paged through), as counting every match of a broad search would cost more than the page itself. A page past the end is a 404; a bad value is a 400 naming the parameter. Anyone. Security definer: for speed; under row-level security PostgreSQL may not use an index for a non-leakproof operator (numeric >=, ilike, @@, the PostGIS operators), so most filters would scan the table; the statement, built only by app.product_list_sql from validated and quoted values, therefore runs as the owner and carries the same visibility rule as the policies.';

-- ---------------------------------------------------------------------------------
-- Facets: counts for a filter sidebar
-- ---------------------------------------------------------------------------------

create function app.product_facets_sql(
  p_category text default null, p_search text default null, p_min_price text default null,
  p_max_price text default null, p_location text default null, p_guests text default null,
  p_amenities text default null, p_host text default null, p_check_in text default null,
  p_check_out text default null, p_near text default null, p_radius_km text default null,
  p_bbox text default null, p_fuzzy boolean default false,
  out facets_sql text, out count_sql text, out searched boolean)
language plpgsql stable security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
  f record;
begin
  select * into f from app.product_filter_sql(
    p_category => p_category, p_search => p_search, p_min_price => p_min_price, p_max_price => p_max_price,
    p_location => p_location, p_guests => p_guests, p_amenities => p_amenities, p_host => p_host,
    p_check_in => p_check_in, p_check_out => p_check_out, p_near => p_near, p_radius_km => p_radius_km,
    p_bbox => p_bbox, p_fuzzy => p_fuzzy);
  searched := f.searched;
  count_sql := f.count_sql;
  -- One statement: the matches once (m), then every count from them. Prices are bucketed in
  -- the listings' own currencies, as min_price and max_price compare them.
  facets_sql := format($sql$with m as materialized (
  select p.id, p.category_id, p.price_per_night, p.price_cents, p.max_guests, p.amenity_slugs
  from app.products p
  where %s),
g as materialized (select m.max_guests, pg_catalog.count(*) as n from m group by m.max_guests),
b as (select pg_catalog.width_bucket(m.price_cents, '{0,2500,5000,7500,10000,15000,20000,30000,50000,100000}'::bigint[]) as i,
             pg_catalog.count(*) as n
      from m group by 1)
select pg_catalog.jsonb_build_object(
  'count', (select pg_catalog.count(*) from m),
  'categories', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                          'id', c.id, 'slug', c.slug, 'name', c.name, 'count', x.n) order by x.n desc, c.slug), '[]'::jsonb)
                 from (select m.category_id, pg_catalog.count(*) as n from m group by m.category_id) x
                 join app.categories c on c.id = x.category_id),
  'amenities', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                         'slug', a.slug, 'name', a.name, 'count', coalesce(x.n, 0)) order by coalesce(x.n, 0) desc, a.slug), '[]'::jsonb)
                from app.amenities a
                left join (select s.amenity, pg_catalog.count(*) as n
                           from m, pg_catalog.unnest(m.amenity_slugs) s(amenity) group by s.amenity) x
                  on x.amenity = a.slug),
  'price', (select pg_catalog.jsonb_build_object(
                     'min', pg_catalog.min(m.price_per_night)::text, 'max', pg_catalog.max(m.price_per_night)::text,
                     'buckets', (select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                          'min', (e.lo / 100.0)::numeric(12, 2)::text,
                                          'max', (e.hi / 100.0)::numeric(12, 2)::text,
                                          'count', coalesce(b.n, 0)) order by e.i)
                                 from rows from (
                                        pg_catalog.unnest('{0,2500,5000,7500,10000,15000,20000,30000,50000,100000}'::bigint[]),
                                        pg_catalog.unnest('{2500,5000,7500,10000,15000,20000,30000,50000,100000,null}'::bigint[]))
                                        with ordinality e(lo, hi, i)
                                 left join b on b.i = e.i))
            from m),
  'guests', (select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                      'min_guests', t.t, 'count', coalesce((select pg_catalog.sum(g.n) from g where g.max_guests >= t.t), 0)::bigint)
                    order by t.t)
             from pg_catalog.unnest('{1,2,3,4,5,6,8,10,12,16}'::int[]) t(t)))$sql$, f.cond);
end
$$;
comment on function app.product_facets_sql(text, text, text, text, text, text, text, text, text, text, text, text, text, boolean) is
  'The one statement api.product_facets runs: the listings matching the filters (app.product_filter_sql, the list''s) read once, then counted per category, per amenity, in price buckets and by capacity. searched and count_sql as app.product_filter_sql''s (for the similarity fallback). Returns text only: EXPLAIN it as the owner to see what the API runs.';

create function api.product_facets(
  p_category text default null, p_search text default null, p_min_price text default null,
  p_max_price text default null, p_location text default null, p_guests text default null,
  p_amenities text default null, p_host text default null, p_check_in text default null,
  p_check_out text default null, p_near text default null, p_radius_km text default null,
  p_bbox text default null)
returns jsonb
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v record;
  v_facets jsonb;
begin
  select * into v from app.product_facets_sql(
    p_category => p_category, p_search => p_search, p_min_price => p_min_price, p_max_price => p_max_price,
    p_location => p_location, p_guests => p_guests, p_amenities => p_amenities, p_host => p_host,
    p_check_in => p_check_in, p_check_out => p_check_out, p_near => p_near, p_radius_km => p_radius_km,
    p_bbox => p_bbox);
  execute v.facets_sql into v_facets;
  if (v_facets ->> 'count')::bigint > 0 or not v.searched then
    return v_facets || '{"fuzzy": false}'::jsonb;
  end if;
  -- As the list: a text search that full text matches nowhere is counted by similarity.
  select * into v from app.product_facets_sql(
    p_category => p_category, p_search => p_search, p_min_price => p_min_price, p_max_price => p_max_price,
    p_location => p_location, p_guests => p_guests, p_amenities => p_amenities, p_host => p_host,
    p_check_in => p_check_in, p_check_out => p_check_out, p_near => p_near, p_radius_km => p_radius_km,
    p_bbox => p_bbox, p_fuzzy => true);
  execute v.facets_sql into v_facets;
  return v_facets || '{"fuzzy": true}'::jsonb;
end
$$;
comment on function api.product_facets(text, text, text, text, text, text, text, text, text, text, text, text, text) is
  'GET /api/products/facets/ — counts for a filter sidebar, under the same filters as GET /api/products/ (every one of them; no ordering or pages): count (every match, exact), categories [{id, slug, name, count}] with at least one match, most first; amenities [{slug, name, count}], all of them, most first; price {min, max, buckets [{min, max, count}]}: ten buckets of the price per night in the listings'' own currencies (0-25, 25-50, 50-75, 75-100, 100-150, 150-200, 200-300, 300-500, 500-1000, 1000 and up: max null), min and max the cheapest and dearest match (null with none); guests [{min_guests, count}]: how many take at least 1, 2, 3, 4, 5, 6, 8, 10, 12, 16 guests (what guests= would find); fuzzy: true when a search''s full text matches nothing and these are the counts of the similarity fallback, as the list''s. Each count is of the matches of all the filters given (ask without category for the counts of the other categories). Read in one statement (app.product_facets_sql); cached and invalidated like the list. A bad value is a 400 naming the parameter. Anyone. Security definer: for speed, as api.product_list (an index for every filter under row-level security), with the same visibility rule.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_parameter('near', 'A place, to search around: latitude,longitude in decimal degrees, e.g. 6.45,3.40.', '{
  "type": "string", "pattern": "^[+-]?[0-9]{1,3}(\\.[0-9]{1,20})?,[+-]?[0-9]{1,3}(\\.[0-9]{1,20})?$",
  "examples": ["6.4541,3.3947"]}');
select app.api_parameter('radius_km', 'With near: only listings within this many km of it (above 0, at most 500).', '{
  "type": "string", "pattern": "^[0-9]{1,5}(\\.[0-9]{1,6})?$", "examples": ["5"]}');
select app.api_parameter('bbox', 'A map viewport: minLng,minLat,maxLng,maxLat in decimal degrees (west, south, east, north). West greater than east crosses the antimeridian; south north of north is a 400.', '{
  "type": "string",
  "pattern": "^[+-]?[0-9]{1,3}(\\.[0-9]{1,20})?(,[+-]?[0-9]{1,3}(\\.[0-9]{1,20})?){3}$",
  "examples": ["3.30,6.40,3.60,6.65"]}');
select app.api_operation('api.product_list', rate => 'read', response => '"Listing"', parameters => '{
  "category": {"type": "string", "description": "A category slug or id."},
  "search": {"type": "string", "description": "Full-text, web-search syntax: \"sea view\" -hostel. When full text matches nothing, by similarity to names and locations (the page says fuzzy: true)."},
  "min_price": "price", "max_price": "price",
  "location": {"type": "string", "description": "Any part of the location, ignoring case."},
  "guests": "integer(1..)",
  "amenities": {"type": "string", "description": "Comma-separated amenity slugs, all required."},
  "host": {"type": "string", "description": "A host''s id, or me."},
  "ordering": {"type": "string", "enum": ["price", "-price", "created_at", "-created_at", "rating", "-rating", "name", "-name", "distance", ""],
               "description": "Empty or absent: by relevance with search, else -created_at. distance: nearest first, needs near."},
  "check_in": {"type": "string", "format": "date", "description": "Free from this night (with check_out)."},
  "check_out": {"type": "string", "format": "date", "description": "Until this morning: after check_in, or 400."},
  "page": {"required": false, "schema": "integer(1..1000000)", "description": "The page to read, from 1; not with cursor (400)."},
  "cursor": {"type": "string", "description": "Keyset pagination instead of page (not with it: 400): empty for the first page, then the cursor in the previous page''s next URL. Each page starts after the last row of the one before (fast at any depth, stable under inserts); next then carries the cursor."}}');
select app.api_schema('Facets', 'Counts for a filter sidebar (api.product_facets): of the listings matching every filter given.', '{
  "count": "integer",
  "categories": {"type": "array", "items": {"id": "uuid", "slug": "string", "name": "string", "count": "integer"}},
  "amenities": {"type": "array", "items": {"slug": "string", "name": "string", "count": "integer"}},
  "price": {"min": "decimal?", "max": "decimal?",
            "buckets": {"type": "array", "items": {"min": "decimal", "max": "decimal?", "count": "integer"}}},
  "guests": {"type": "array", "items": {"min_guests": "integer", "count": "integer"}},
  "fuzzy": "boolean"}');
select app.api_operation('api.product_facets', rate => 'read', response => '"Facets"', parameters => '{
  "category": {"type": "string", "description": "A category slug or id."},
  "search": {"type": "string", "description": "As GET /api/products/ (with the same similarity fallback)."},
  "min_price": "price", "max_price": "price",
  "location": {"type": "string", "description": "Any part of the location, ignoring case."},
  "guests": "integer(1..)",
  "amenities": {"type": "string", "description": "Comma-separated amenity slugs, all required."},
  "host": {"type": "string", "description": "A host''s id, or me."},
  "check_in": {"type": "string", "format": "date", "description": "Free from this night (with check_out)."},
  "check_out": {"type": "string", "format": "date", "description": "Until this morning: after check_in, or 400."}}');
