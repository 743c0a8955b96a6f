/*
 * Product search: GET /api/products/ — filters, full-text search, ordering, pages.
 *
 * Why this runs as the owner: under row-level security PostgreSQL will not use an index
 * for non-leakproof operators (numeric comparisons, ilike, @@), so every filter would scan.
 * api.product_list is therefore SECURITY DEFINER and writes the policies' visibility rule
 * into its statement (published; your own with host=me; any of a host's for admins).
 *
 * How: api.product_list validates its text parameters, then builds its statement from only
 * the filters present (app.product_list_sql), so each combination of filters is planned on
 * its own with the values known, and every filter and ordering can be served by an index
 * (tests/sql/test_catalog_plans.py pins this with EXPLAIN). Only the choice of ids is
 * planned per request: each result is app.product_json (21_products.sql), built in the
 * same statement by app.product_page, whose plan is kept for the session; the page is app.page.
 */

create function app.product_page(p_ids uuid[], out results json, out n bigint)
language plpgsql stable security invoker
as $$
begin
  -- Every name qualified: called from statements run under search_path = pg_catalog, pg_temp.
  select coalesce(pg_catalog.json_agg(app.product_json(p, c, h.first_name, h.photo_url,
                    (select pg_catalog.jsonb_agg(pa.amenity order by pa.amenity)
                       from app.product_amenities pa where pa.product_id = p.id),
                    null,
                    (select app.photo_json(ph.path, ph.width, ph.height, ph.size_bytes, ph.placeholder, ph.variants)
                       from app.product_photos ph where ph.product_id = p.id order by ph.position, ph.id limit 1),
                    false) order by s.n),
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
comment on function app.product_page(uuid[]) is
  'One page of search results: the listings of p_ids in that order, each as app.product_json (with its host''s public profile), as a JSON array, and how many there are. PL/pgSQL so that this statement, the same for every search, is planned once per session; only the choice of ids (app.product_list_sql''s page_sql) is planned per request. SECURITY INVOKER: run as the caller, RLS decides what it can read (api.product_list runs it as the owner).';

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
  'Recompute app_private.catalog_counts from app.products (published listings per category and lexeme); returns how many rows it holds. Every migrate calls it (api/migrate.py), once the policies exist; a DBA may too. The owner''s: no client role may execute it.';

create function app.product_list_sql(
  p_category text default null, p_search text default null, p_min_price text default null,
  p_max_price text default null, p_location text default null, p_guests text default null,
  p_amenities text default null, p_host text default null, p_ordering text default null,
  p_page text default null, p_page_size text default null, p_check_in text default null,
  p_check_out text default null, p_cursor text default null,
  out page_sql text, out count_sql text, out estimate_sql text, out page_window app.page_window,
  out cursor_ordering text)
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
  v_order text;
  v_rank text;
  v_rank_key text;
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
  v_key text;        -- the ordering's first key, as SQL
  v_key_text text;   -- that key as cursor text, as SQL
  v_key_literal text;
  v_desc boolean;
  v_cursor json;
  v_after text;
  v_lexemes text[];
  v_term text;       -- the count's term in app_private.catalog_counts, when it can answer
begin
  if p_cursor is not null and p_page is not null then
    perform app.invalid('cursor', 'Give page or cursor, not both.');
  end if;
  page_window := app.page_window(p_page, p_page_size);

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
      v_rank_key := format('ts_rank(p.search, websearch_to_tsquery(''english'', %L))', p_search);
      v_rank := v_rank_key || ' desc, p.id';
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

  -- A cursor (keyset pagination): the page starts after the row it names, found through the
  -- ordering's index, so no row before it is read. Its text is base64url of JSON
  -- [ordering, key, id]; the key is exact text for its type (timestamps in microseconds since
  -- the epoch, so no session setting changes them).
  if p_cursor is not null then
    cursor_ordering := coalesce(nullif(btrim(p_ordering), ''), case when v_rank is null then '-created_at' else 'relevance' end);
    v_desc := cursor_ordering like '-%' or cursor_ordering = 'relevance';
    v_key := case ltrim(cursor_ordering, '-')
      when 'price' then 'p.price_per_night' when 'created_at' then 'p.created_at' when 'rating' then 'p.rating_avg'
      when 'name' then 'p.name' when 'relevance' then v_rank_key end;
    v_key_text := case when v_key = 'p.created_at' then '((extract(epoch from p.created_at) * 1000000)::bigint)::text'
                       else format('(%s)::text', v_key) end;
    if p_cursor <> '' then
      begin
        v_cursor := convert_from(decode(translate(p_cursor, '-_', '+/') || repeat('=', (4 - length(p_cursor) % 4) % 4),
                                        'base64'), 'utf8')::json;
        if json_typeof(v_cursor) <> 'array' or json_array_length(v_cursor) <> 3 then
          raise invalid_parameter_value;
        end if;
        v_key_literal := case ltrim(cursor_ordering, '-')
          when 'created_at' then format('%L::timestamptz',
            timestamptz 'epoch' + (v_cursor ->> 1)::bigint * interval '1 microsecond')
          when 'name' then format('%L::text', v_cursor ->> 1)
          when 'relevance' then format('%L::real', (v_cursor ->> 1)::real)
          else format('%L::numeric', (v_cursor ->> 1)::numeric) end;
        v_after := format('%L::uuid', (v_cursor ->> 2)::uuid);
      exception when others then
        v_cursor := null;
      end;
      if v_cursor is null or v_key_literal is null or v_after is null then
        perform app.invalid('cursor', 'Invalid cursor.');
      end if;
      if v_cursor ->> 0 is distinct from cursor_ordering then
        perform app.invalid('cursor', 'This cursor belongs to another ordering: start again without it.');
      end if;
      v_after := case when cursor_ordering = 'relevance'  -- rank descending, id ascending
        then format('(%1$s < %2$s or (%1$s = %2$s and p.id > %3$s))', v_key, v_key_literal, v_after)
        else format('(%s, p.id) %s (%s, %s)', v_key, case when v_desc then '<' else '>' end, v_key_literal, v_after) end;
    end if;
  end if;

  v_cond := coalesce(nullif(array_to_string(v_where, E'\n    and '), ''), 'true');
  -- The page's ids in order (the only part planned for each request), then the listings
  -- as JSON by app.product_page, whose statement keeps its plan for the session.
  page_sql := format($sql$select r.results, r.n from app.product_page(array(
    select p.id
    from app.products p
    where %s
    order by %s
    limit %s offset %s)) r$sql$,
    v_cond, v_order, page_window.page_size, page_window.skip);
  if p_cursor is not null then
    -- One row more than the page: whether a next page exists; the last row's key and id.
    page_sql := format($sql$select r.results, r.n, q.n > %3$s, q.keys[%3$s], q.ids[%3$s]
from (select count(*) as n, array_agg(x.id order by x.n) as ids, array_agg(x.k order by x.n) as keys
      from (select row_number() over () as n, y.id, y.k
            from (select p.id, %4$s as k
                  from app.products p
                  where %1$s
                  order by %2$s
                  limit %3$s + 1) y) x) q,
     app.product_page(coalesce(q.ids[1:%3$s], '{}')) r$sql$,
      coalesce(v_cond || coalesce(E'\n    and ' || v_after, ''), 'true'), v_order, page_window.page_size, v_key_text);
  end if;
  -- The count. Of a category, a single word, both or neither over the public catalog, it is
  -- kept by the database (app_private.catalog_counts): exact at any size, one row read. Else
  -- the matches are counted up to 1,001, and the planner's estimate stands in above 1,000.
  if v_host is null and v_min is null and v_max is null and nullif(btrim(p_location), '') is null
     and v_guests is null and coalesce(cardinality(v_amenities), 0) = 0 and v_check_in is null then
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
    count_sql := format('select count(*) from (select from app.products p where %s limit 1001) c', v_cond);
    estimate_sql := format('explain (format json) select from app.products p where %s', v_cond);
  end if;
end
$$;
comment on function app.product_list_sql(text, text, text, text, text, text, text, text, text, text, text, text, text, text) is
  'The statements api.product_list runs, built from only the filters present (values validated, then quoted as literals): page_sql returns (results json, n) for one page (its ids chosen and ordered, then app.product_page), and with a cursor (results, n, more, the last row''s key as text, its id), the page starting after the cursor''s row, found through the ordering''s index; cursor_ordering names the ordering a cursor belongs to; count_sql is the count: read from app_private.catalog_counts (exact) when the filters are a category, a single word, both or neither, else the matches counted up to 1001; estimate_sql (null when the count is exact) is the EXPLAIN whose row estimate stands in above 1,000. Same parameters as api.product_list; a bad value is a 400 naming the parameter. They carry the visibility rule of the policies on app.products for the calling role and user (published; your own with host=me; any of a host''s with host=<id> for admins). Returns text only: EXPLAIN its page_sql as the owner to see exactly what the API runs. It reads the caller''s role as current_setting(''role''), which its SECURITY DEFINER caller api.product_list leaves alone.';

create function api.product_list(
  p_category text default null, p_search text default null, p_min_price text default null,
  p_max_price text default null, p_location text default null, p_guests text default null,
  p_amenities text default null, p_host text default null, p_ordering text default null,
  p_page text default null, p_page_size text default null, p_check_in text default null,
  p_check_out text default null, p_cursor text default null)
returns app.page
language plpgsql volatile security definer  -- volatile: EXPLAIN (the count estimate) is refused in stable functions
set search_path = pg_catalog, pg_temp
as $$
declare
  v record;
  v_results json;
  v_rows bigint;
  v_count bigint;
  v_plan json;
  v_more boolean;
  v_last_key text;
  v_last_id uuid;
begin
  select * into v from app.product_list_sql(
    p_category => p_category, p_search => p_search, p_min_price => p_min_price, p_max_price => p_max_price,
    p_location => p_location, p_guests => p_guests, p_amenities => p_amenities, p_host => p_host,
    p_ordering => p_ordering, p_page => p_page, p_page_size => p_page_size,
    p_check_in => p_check_in, p_check_out => p_check_out, p_cursor => p_cursor);
  if p_cursor is not null then
    -- By cursor: count as a first page would (the rows before the cursor are unknown).
    execute v.page_sql into v_results, v_rows, v_more, v_last_key, v_last_id;
    execute v.count_sql into v_count;
    if v_count > 1000 and v.estimate_sql is not null then
      execute v.estimate_sql into v_plan;
      v_count := greatest((v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint, 1001);
    end if;
    return app.page(v.page_window, v_count, v_results,
      case when v_more then translate(rtrim(encode(convert_to(
        json_build_array(v.cursor_ordering, v_last_key, v_last_id)::text, 'utf8'), 'base64'), '='), E'+/\n', '-_') end);
  end if;
  execute v.page_sql into v_results, v_rows;
  if v_rows < (v.page_window).page_size then
    -- a short page is the last one: the count is exact without counting
    v_count := (v.page_window).skip + v_rows;
  else
    execute v.count_sql into v_count;
    if v_count > 1000 and v.estimate_sql is not null then
      execute v.estimate_sql into v_plan;
      v_count := greatest((v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint, 1001,
                          (v.page_window).skip + v_rows + 1);
    end if;
  end if;
  return app.page(v.page_window, v_count, v_results);
end
$$;
comment on function api.product_list(text, text, text, text, text, text, text, text, text, text, text, text, text, text) is
  'GET /api/products/ — search the published listings. Filters, all combinable: category (slug or id), search (full-text over name, location and description, web-search syntax such as "sea view" -hostel; ranked by relevance when no ordering is given), min_price and max_price (per night, any currency), location (any part, ignoring case), guests (capacity at least n), amenities (comma list of slugs, all required), host (a user id, or "me": your own listings, unpublished included), check_in and check_out (YYYY-MM-DD, both: only listings free for the whole stay [check_in, check_out)). ordering: price, -price, created_at, -created_at (default), rating, -rating, name, -name. page from 1, page_size default 20, at most 100. cursor instead of page (keyset pagination, for deep pages): empty for the first page, then the next_cursor of the page before; each page starts right after the last row of the previous one, so it costs what a first page costs and is stable while listings are added; a cursor belongs to its ordering. count is exact for a category, a single word, both or neither (the database keeps those counts as listings change, app_private.catalog_counts); with any other filter it is exact up to 1,000 matches and above that the planner''s estimate (at least 1,001, and never less than the listings already paged through), as counting every match of a broad search would cost more than the page itself. A page past the end is a 404; a bad value is a 400 naming the parameter. Anyone. Security definer: for speed; under row-level security PostgreSQL may not use an index for a non-leakproof operator (numeric >=, ilike, @@), so most filters would scan the table; the statement, built only by app.product_list_sql from validated and quoted values, therefore runs as the owner and carries the same visibility rule as the policies.';

-- The contract (OpenAPI; sql/functions/03_contract.sql).
select app.api_operation('api.product_list', rate => 'read', response => '"Listing"', parameters => '{
  "category": {"type": "string", "description": "A category slug or id."},
  "search": {"type": "string", "description": "Full-text, web-search syntax: \"sea view\" -hostel."},
  "min_price": "price", "max_price": "price",
  "location": {"type": "string", "description": "Any part of the location, ignoring case."},
  "guests": "integer(1..)",
  "amenities": {"type": "string", "description": "Comma-separated amenity slugs, all required."},
  "host": {"type": "string", "description": "A host''s id, or me."},
  "ordering": {"type": "string", "enum": ["price", "-price", "created_at", "-created_at", "rating", "-rating", "name", "-name", ""],
               "description": "Empty or absent: by relevance with search, else -created_at."},
  "check_in": {"type": "string", "format": "date", "description": "Free from this night (with check_out)."},
  "check_out": {"type": "string", "format": "date", "description": "Until this morning: after check_in, or 400."},
  "page": {"required": false, "schema": "integer(1..1000000)", "description": "The page to read, from 1; not with cursor (400)."},
  "cursor": {"type": "string", "description": "Keyset pagination instead of page (not with it: 400): empty for the first page, then the cursor in the previous page''s next URL. Each page starts after the last row of the one before (fast at any depth, stable under inserts); next then carries the cursor."}}');
