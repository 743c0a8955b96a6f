"""Every filter and ordering the catalog offers can be served by an index.

Deterministic, not timed: the statements api.product_list runs (exactly as
app.product_list_sql builds them for an anonymous caller) are EXPLAINed as the owner,
the role api.product_list runs them as, with enable_seqscan off; a filter or ordering
no index can serve would still show a Seq Scan on products.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.fix_db import As

HOST = str(uuid.uuid4())
CASES: list[dict[str, Any]] = [
    {},
    {"category": "plans-electronics"},
    {"search": "laptop"},
    {"search": "sea view -hostel"},
    {"min_price": "50"},
    {"max_price": "80"},
    {"min_price": "50", "max_price": "80"},
    {"location": "lagos"},
    {"guests": "4"},
    {"amenities": "wifi"},
    {"amenities": "wifi,pool,kitchen"},
    {"host": HOST},
    {"check_in": "2031-01-01", "check_out": "2031-01-08"},
    {"page": "50", "page_size": "100"},
    *({"ordering": o} for o in ("price", "-price", "created_at", "-created_at", "rating", "-rating", "name", "-name")),
    # the seed's sample query, and a typical combined search
    {"category": "plans-electronics", "ordering": "-price", "search": "laptop"},
    {"min_price": "50", "max_price": "200", "guests": "2", "amenities": "wifi,pool", "ordering": "price"},
    {"location": "lagos", "check_in": "2031-01-01", "check_out": "2031-01-08", "ordering": "-rating"},
    # the map (issue 26): around a point, nearest first, in a viewport (across the antimeridian too)
    {"near": "6.45,3.40"},
    {"near": "6.45,3.40", "radius_km": "5"},
    {"near": "6.45,3.40", "ordering": "distance"},
    {"near": "6.45,3.40", "radius_km": "5", "ordering": "distance"},
    {"bbox": "3.30,6.40,3.60,6.65"},
    {"bbox": "179,-20,-179,-10"},
    {"bbox": "3.30,6.40,3.60,6.65", "category": "plans-electronics", "min_price": "50", "amenities": "wifi"},
    {"near": "6.45,3.40", "radius_km": "5", "search": "laptop", "guests": "2", "ordering": "distance"},
    # typo tolerance: the similarity fallback
    {"search": "lisbn", "fuzzy": True},
    {"search": "lisbn", "fuzzy": True, "near": "6.45,3.40", "radius_km": "50"},
]


@pytest.fixture(scope="module", autouse=True)
def category(owner_url: str) -> None:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(
            "insert into app.categories (name, slug) values ('Plans electronics', 'plans-electronics')"
            " on conflict do nothing"
        )


def plan(conn: psycopg.Connection[Any], statement: str) -> str:
    conn.execute("set local enable_seqscan = off")
    return "\n".join(r[0] for r in conn.execute("explain " + statement).fetchall())  # type: ignore[operator]


@pytest.mark.parametrize("params", CASES, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "browse")
def test_no_seq_scan_on_products(as_role: As, owner_url: str, params: dict[str, Any]) -> None:
    conn = as_role("anon")
    args = ", ".join(f"p_{k} => %s" for k in params)
    page_sql, count_sql, walk_sql = conn.execute(
        f"select page_sql, count_sql, walk_sql from app.product_list_sql({args})", list(params.values())
    ).fetchone()  # type: ignore[misc]
    if walk_sql:  # a viewport's page for a dense area: the ordering's index, walked
        count_sql = count_sql + ";\n" + walk_sql
    if "ordering" not in params and "page" not in params and "page_size" not in params:  # the facets: same filters
        (facets_sql,) = conn.execute(
            f"select facets_sql from app.product_facets_sql({args})", list(params.values())
        ).fetchone()  # type: ignore[misc]
        count_sql = count_sql + ";\n" + facets_sql
    assert "p.published" in page_sql
    # A category and/or one word: counted by the database (app_private.catalog_counts, published only).
    assert "p.published" in count_sql or "app_private.catalog_counts" in count_sql, count_sql
    with psycopg.connect(owner_url) as owner:
        plans = [plan(owner, page_sql), *(plan(owner, sql) for sql in count_sql.split(";\n"))]
    for text in plans:
        assert "Seq Scan on products" not in text, text
        assert "Seq Scan on product_amenities" not in text, text
        assert "Seq Scan on calendar_entries" not in text, text


def test_the_api_runs_the_built_statement(as_role: As) -> None:
    """api.product_list answers with the same results as running page_sql by hand."""
    conn = as_role("anon")
    (page_sql,) = conn.execute("select page_sql from app.product_list_sql(p_ordering => 'price')").fetchone()  # type: ignore[misc]
    direct, _ = conn.execute(page_sql).fetchone()  # type: ignore[misc]
    (api,) = conn.execute("select results from api.product_list(p_ordering => 'price')").fetchone()  # type: ignore[misc]
    assert api == direct


@pytest.mark.parametrize("ordering", ["rating", "-rating"])
def test_ordering_by_rating_reads_the_maintained_aggregate_through_its_index(
    as_role: As, owner_url: str, ordering: str
) -> None:
    """The reviews keep products.rating_avg current; ordering by it walks products_rating_idx, no sort of all rows."""
    conn = as_role("anon")
    (page_sql,) = conn.execute("select page_sql from app.product_list_sql(p_ordering => %s)", [ordering]).fetchone()  # type: ignore[misc]

    with psycopg.connect(owner_url) as owner:
        text = plan(owner, page_sql)

    assert "rating_avg" in page_sql and "reviews" not in page_sql
    assert "products_rating_idx" in text, text


def test_the_seed_query_counts_from_one_gin_index(as_role: As, owner_url: str) -> None:
    """The seed's sample query: its page walks the category's price index backwards and stops
    after the page; its count is one row of app_private.catalog_counts (a category and one word).
    With two words the count reads one bitmap of published matches from
    products_published_search_idx (category and text intersected in the index)."""
    conn = as_role("anon")
    page_sql, seed_count_sql = conn.execute(
        "select page_sql, count_sql from app.product_list_sql(p_category => 'plans-electronics',"
        " p_search => 'laptop', p_ordering => '-price')"
    ).fetchone()  # type: ignore[misc]
    (count_sql,) = conn.execute(
        "select count_sql from app.product_list_sql(p_category => 'plans-electronics',"
        " p_search => 'laptop desk', p_ordering => '-price')"
    ).fetchone()  # type: ignore[misc]

    with psycopg.connect(owner_url) as owner:
        # The bench's shape, rolled back: a category holds 5% of the listings, "laptop" is in
        # half of them, 5% are unpublished; analyzed, so the planner chooses on statistics.
        owner.execute(
            """with h as (insert into app.users (email, first_name, last_name, role)
                          values ('plans-host@example.com', 'P', 'H', 'host') returning id),
                    c as (insert into app.categories (name, slug) values ('Plans other', 'plans-other') returning id)
               insert into app.products (host_id, category_id, name, description, location,
                                         price_per_night, max_guests, published)
               select h.id, case when i % 20 = 0 then e.id else c.id end,
                      case when i % 2 = 0 then 'Laptop desk ' else 'Quiet room ' end || i,
                      'A place to stay.', 'Lagos', 10 + i % 500, 2, i % 19 <> 0
               from h, c, app.categories e, generate_series(1, 10000) i
               where e.slug = 'plans-electronics'"""
        )
        owner.execute("analyze app.products")
        count_plan, page_plan = plan(owner, count_sql), plan(owner, page_sql)
        seed_count_plan = plan(owner, seed_count_sql)
        owner.rollback()
        owner.execute("analyze app.products")  # ANALYZE's row count is not rolled back
        owner.commit()

    assert "Bitmap Index Scan on products_published_search_idx" in count_plan, count_plan
    assert "BitmapAnd" not in count_plan and "Filter: published" not in count_plan, count_plan
    assert "Index Scan Backward using products_category_idx" in page_plan, page_plan  # the first 20 by price
    # One kept row, read through either of the counts' indexes; no listing is visited.
    assert "on catalog_counts_" in seed_count_plan or "using catalog_counts_" in seed_count_plan, seed_count_plan
    assert "Seq Scan" not in seed_count_plan and "products" not in seed_count_plan, seed_count_plan


@pytest.mark.parametrize(("ordering", "index"), [("", "products_created_at_idx"), ("price", "products_price_idx")])
def test_a_cursor_page_starts_in_the_ordering_index(as_role: As, owner_url: str, ordering: str, index: str) -> None:
    """Keyset pagination: the ordering's index can start at the cursor's row (an Index Cond), so no
    row before it is read (no OFFSET). Bitmap scans and sorts off: on a tiny table the planner
    would rather sort it all, as it may."""
    conn = as_role("anon")
    key = "1726520224264837" if ordering == "" else "120.00"
    cursor = conn.execute(
        "select translate(rtrim(encode(convert_to(json_build_array(%s::text, %s::text, gen_random_uuid())::text,"
        " 'utf8'), 'base64'), '='), E'+/\\n', '-_')",
        [ordering or "-created_at", key],
    ).fetchone()[0]  # type: ignore[index]
    (page_sql,) = conn.execute(
        "select page_sql from app.product_list_sql(p_ordering => %s, p_cursor => %s)", [ordering, cursor]
    ).fetchone()  # type: ignore[misc]

    with psycopg.connect(owner_url) as owner:
        owner.execute("set local enable_bitmapscan = off")
        owner.execute("set local enable_sort = off")
        text = plan(owner, page_sql)

    assert index in text and "Index Cond: (ROW(" in text, text
    assert "offset" not in page_sql.lower(), page_sql


MAP_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"near": "6.45,3.40", "radius_km": "5"}, "products_map_point_idx", "(map_point OPERATOR(extensions.&&)"),
    (
        {"near": "6.45,3.40", "ordering": "distance"},
        "products_map_point_idx",
        "Order By: (map_point OPERATOR(extensions.<->)",
    ),
    ({"near": "6.45,3.40", "radius_km": "5", "ordering": "distance"}, "products_map_point_idx", "Order By"),
    (
        {"bbox": "3.30,6.40,3.60,6.65"},
        "products_map_box_idx",
        "(map_geom OPERATOR(extensions.&&)",
    ),
    ({"bbox": "179,-20,-179,-10"}, "products_map_box_idx", "BitmapOr"),
    ({"search": "lisbn", "fuzzy": True}, "products_location_trgm_idx", "BitmapOr"),
]


def test_the_map_and_the_fuzzy_search_read_their_indexes(as_role: As, owner_url: str) -> None:
    """On 10,000 listings spread over the planet (rolled back, analyzed): a radius and nearest-first
    walk the public points' GiST index (geography: ST_DWithin's bounding box, KNN's <->), a viewport
    the geometry one (an antimeridian-crossing box as two), and the similarity fallback the trigram
    indexes of name and location. Never the exact point: it is not on the table searched."""
    conn = as_role("anon")
    statements = []
    for params, _, _ in MAP_CASES:
        args = ", ".join(f"p_{k} => %s" for k in params)
        (page_sql,) = conn.execute(
            f"select page_sql from app.product_list_sql({args})", list(params.values())
        ).fetchone()  # type: ignore[misc]
        statements.append(page_sql)

    with psycopg.connect(owner_url) as owner:
        owner.execute(
            """with h as (insert into app.users (email, first_name, last_name, role)
                          values ('map-plans-host@example.com', 'P', 'H', 'host') returning id)
               insert into app.products (host_id, category_id, name, description, location,
                                         price_per_night, max_guests, map_latitude, map_longitude)
               select h.id, c.id, 'Room ' || substr(md5('n' || i), 1, 8), 'A place to stay.',
                      substr(md5('a' || i), 1, 9) || ', ' || substr(md5('c' || (i % 500)), 1, 7),
                      10 + i % 500, 2, -60 + (i * 7919 % 12000) / 100.0, -180 + (i * 104729 % 36000) / 100.0
               from h, app.categories c, generate_series(1, 10000) i
               where c.slug = 'plans-electronics'"""
        )
        owner.execute("analyze app.products")
        plans = [plan(owner, sql) for sql in statements]
        owner.rollback()
        owner.execute("analyze app.products")  # ANALYZE's row count is not rolled back
        owner.commit()

    for (params, index, shape), sql, text in zip(MAP_CASES, statements, plans, strict=True):
        assert index in text and shape in text, f"{params}:\n{text}"
        assert "map_latitude" not in sql and "product_addresses" not in sql, sql
    assert "products_name_trgm_idx" in plans[-1], plans[-1]


def test_a_dense_viewport_walks_the_orderings_index(as_role: As, owner_url: str) -> None:
    """A viewport has two page statements: through the viewport's GiST index (few listings in it)
    and walking the ordering's index, testing each listing (many: api.product_list runs this one
    when the count passes 1,000, as PostGIS cannot estimate a city's density)."""
    conn = as_role("anon")
    page_sql, walk_sql = conn.execute(
        "select page_sql, walk_sql from app.product_list_sql(p_bbox => '3.30,6.40,3.60,6.65', p_ordering => 'price')"
    ).fetchone()  # type: ignore[misc]
    (radius_walk,) = conn.execute(
        "select walk_sql from app.product_list_sql(p_near => '6.45,3.40', p_radius_km => '5')"
    ).fetchone()  # type: ignore[misc]
    (world,) = conn.execute("select walk_sql from app.product_list_sql(p_bbox => '-180,-90,180,90')").fetchone()  # type: ignore[misc]
    (world_page,) = conn.execute("select page_sql from app.product_list_sql(p_bbox => '-180,-90,180,90')").fetchone()  # type: ignore[misc]

    with psycopg.connect(owner_url) as owner:
        same = owner.execute(world).fetchone() == owner.execute(world_page).fetchone()  # run as the API runs them
        owner.execute("set local enable_sort = off")  # on a tiny table the planner would rather sort it all
        text = plan(owner, walk_sql)

    assert "products_price_idx" in text and "Sort" not in text, text
    assert "is true" in walk_sql and "is true" not in page_sql
    assert radius_walk is None  # a radius is read nearest first, or through its index
    assert same  # the same page either way
