/*
 * 0016 page cursor: a list page can say where the next one starts.
 *
 * Why: GET /api/products/?page=2000 makes PostgreSQL read and throw away ~40,000 rows
 * (OFFSET) before the 20 it returns, and a listing inserted meanwhile shifts every later
 * page by one. A keyset (cursor) page starts right after the last row the client saw, found
 * through the ordering's index, so a deep page costs what the first one costs and is stable
 * under concurrent inserts. api.product_list takes an opaque cursor and returns the next one
 * in app.page.next_cursor; the API turns it into the envelope's next URL (api/app.py).
 *
 * Guarantees after this file:
 *   - app.page has next_cursor (text, null for every list paginated by page number).
 */

alter type app.page add attribute next_cursor text;
comment on type app.page is
  'One page of a list: count (matching rows in all), page (from 1), page_size, results (a JSON array), next_cursor (an opaque token where the next page starts, for a list read by cursor; null otherwise or on the last page). The API wraps it in the DRF envelope {count, next, previous, results}.';
