/*
 * 0014 catalog search: one GIN index answers "category + full-text" over the public catalog.
 *
 * Why: the seed's sample query (GET /api/products/?category=electronics&ordering=-price
 * &search=laptop) spent most of its time counting. Its page is cheap (the category's
 * price index walked backwards, 20 rows), but its count (exact up to 1,000 matches) ANDed
 * two bitmaps: the category's ~5k listings from a btree and every listing containing
 * "laptop" (46k of 100k on the bench data) from the tsvector GIN index, then visited the
 * heap to drop the unpublished ones. The category and the text are both GIN keys in one
 * index here (btree_gin gives uuid a GIN operator class), so PostgreSQL intersects the two
 * posting lists inside the index, and the index holds published listings only, so no
 * visited row is thrown away. On the bench data that count went from 7-16 ms to ~2 ms
 * (figures in README.md, Benchmark).
 *
 * fastupdate is off: listings are written rarely and searched constantly, so an insert
 * updates the index at once rather than leaving entries in a pending list that every
 * search would then scan.
 *
 * The catalog only ever searches text with `published` in its filter (api.product_list:
 * only a host's own listings, or an admin filtering by host, include unpublished ones,
 * and then products_host_idx finds them), so the whole-table text index is dropped: one
 * GIN index less to update on every write of a listing.
 *
 * Guarantees after this file:
 *   - btree_gin is installed in schema extensions (a trusted extension: the owner may
 *     create it, as with pgcrypto, btree_gist and pg_trgm in 0001);
 *   - every published listing is in products_published_search_idx under its category
 *     and the lexemes of its search vector.
 * tests/sql/test_catalog_plans.py pins that the sample query's count reads this index.
 */

create extension if not exists btree_gin with schema extensions;
comment on schema extensions is 'Extensions (pgcrypto, btree_gist, btree_gin, pg_trgm), kept out of public; used by the owner''s functions and indexes.';

create index products_published_search_idx on app.products
  using gin (category_id, search) with (fastupdate = off) where published;
comment on index app.products_published_search_idx is
  'Published listings by category and by full-text lexeme (GIN; btree_gin for the uuid): a category + search filter (or either alone) intersects posting lists inside the index, and the count up to 1,001 visits only matching published rows. fastupdate off: no pending list for searches to scan.';

drop index app.products_search_idx;
