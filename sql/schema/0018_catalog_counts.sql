/*
 * 0018 catalog counts: how many published listings each category has, in all and per
 * full-text lexeme, kept by PostgreSQL as listings change.
 *
 * Why: a catalog page's count was the larger part of a search's cost. The seed's sample
 * query (GET /api/products/?category=electronics&ordering=-price&search=laptop) finds its
 * page in ~0.2 ms (the category's price index walked backwards), but counting its matches,
 * even only up to 1,001, visits one heap page per match (GIN has no index-only scans, and
 * PostgreSQL 15 visits every page of a bitmap scan): ~3 ms, over half of the whole request's
 * SQL. The same question for a category alone, or a single word, has an answer that changes
 * only when a listing does: the number of published listings of a category holding a lexeme
 * is a document frequency, the statistic every inverted index keeps. Here it is a table kept
 * by statement triggers on app.products (sql/functions/22_product_search.sql), in the
 * writing transaction, so a reader sees the counts of exactly the listings its snapshot sees.
 * api.product_list reads it when a search is a category, a single word, both, or neither,
 * and nothing else (no price, guests, location, amenities, dates or host): then the count is
 * exact at any size, not only up to 1,000.
 *
 * Guarantees after this file: the table exists, empty; row-level security is on and forced.
 * Every migrate rebuilds it from app.products once the policies exist
 * (app.catalog_counts_rebuild, called by api/migrate.py), so it is complete after this
 * migration and repaired by any later one.
 */

create table app_private.catalog_counts (
  category_id uuid not null references app.categories (id) on delete cascade,
  term text not null,
  listings integer not null,
  primary key (category_id, term)
);
create index catalog_counts_term_idx on app_private.catalog_counts (term);
comment on table app_private.catalog_counts is
  'How many published listings each category has (term '''') and how many of them hold each full-text lexeme of app.products.search (term = the lexeme). Kept in the writing transaction by the statement triggers catalog_counts_* on app.products; rebuilt from app.products by every migrate (app.catalog_counts_rebuild). Read by api.product_list for the count of a search by category and/or a single word.';
comment on column app_private.catalog_counts.category_id is 'The category.';
comment on column app_private.catalog_counts.term is 'A lexeme of app.products.search (as tsvector_to_array gives it), or '''' for every published listing of the category.';
comment on column app_private.catalog_counts.listings is 'How many published listings of the category hold the term (all of them for '''').';
comment on index app_private.catalog_counts_term_idx is 'A single word''s counts across every category (a search without a category).';

alter table app_private.catalog_counts enable row level security, force row level security;
