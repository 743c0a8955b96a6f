/*
 * Pages: the one way every list is paginated.
 *
 * Why: a list answers with the DRF envelope {count, next, previous, results}; the API adds
 * next/previous from page, page_size and count. Every list function returns the type
 * app.page (count, page, page_size, results json) and is written the same way:
 *
 *   v_window := app.page_window(p_page, p_page_size);       -- parse, 400 naming the parameter
 *   select coalesce(max(x.total), 0), coalesce(json_agg(<row json> order by <order>), '[]')
 *     into v_count, v_results
 *     from (select t, count(*) over () as total from <table> t where <filters>
 *           order by <order> limit v_window.page_size offset v_window.skip) x;
 *   return app.page(v_window, v_count, v_results);          -- 404 past the end
 *
 * One pass: the page and, beside each row, how many match in all. A page past the end has
 * no rows (so a count of 0) and is a 404, as in DRF. The catalog search (api.product_list)
 * counts differently (exact to 1,000, then the planner's estimate) but ends the same way.
 * tests/sql/test_access.py checks that every paginated route's function returns app.page.
 */

create function app.page_window(p_page text, p_page_size text) returns app.page_window
language plpgsql stable security invoker
as $$
declare
  v_page int := coalesce(app.parse_int(p_page, 'page', 1, 1000000), 1);
  v_size int := least(coalesce(app.parse_int(p_page_size, 'page_size', 1, 1000000), 20), 100);
begin
  return row(v_page, v_size, (v_page - 1)::bigint * v_size)::app.page_window;
end
$$;
comment on function app.page_window(text, text) is
  'Which rows a list request asks for: page from 1 (default 1), page_size from 1 (default 20; above 100 is capped at 100, as DRF''s max_page_size does), and skip = rows before the page (the OFFSET). Anything else is a 400 naming the parameter.';

create function app.page(p_window app.page_window, p_count bigint, p_results json,
                         p_next_cursor text default null, p_fuzzy boolean default null) returns app.page
language plpgsql stable security invoker
as $$
begin
  if p_window.page > 1 and coalesce(json_array_length(p_results), 0) = 0 then
    perform app.fail(404, 'Invalid page.', 'page');
  end if;
  return row(p_count, p_window.page, p_window.page_size, coalesce(p_results, '[]'::json), p_next_cursor,
             p_fuzzy)::app.page;
end
$$;
comment on function app.page(app.page_window, bigint, json, text, boolean) is
  'The page a list returns (app.page) from its window (app.page_window), the number of matching rows in all, the page''s rows as a JSON array, for a list read by cursor where the next page starts (null on the last page), and for a search whether its results are by similarity (p_fuzzy; null otherwise). A page past the end (page > 1 with no rows) is a 404 naming page.';
