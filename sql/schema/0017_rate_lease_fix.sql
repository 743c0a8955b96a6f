/*
 * 0017 the read lease, again: 0015's `update ... set lease = 10 where class = 'read'` changed
 * no row on a database built from nothing.
 *
 * Why: on a fresh database every schema file runs before any policy exists (sql/policies/ is
 * applied after them), and 0012 had already forced row-level security on
 * app_private.rate_limits; an UPDATE under forced row-level security with no policy sees no
 * row, silently. So every freshly built deployment ran with a read lease of 0: each read took
 * its token in a writing transaction (app.rate_take), what 0015 meant to end (make bench: the
 * limit cost a detail 14-20 % with 0, ~0 % with 10). Databases that applied 0015 on top of
 * their policies had 10 and are left as they are.
 *
 * Guarantees after this file: read's lease is 10 where it was still 0 (a DBA's other value is
 * kept); every other class keeps its own; row-level security is forced on the table again.
 */

alter table app_private.rate_limits no force row level security;
update app_private.rate_limits set lease = 10 where class = 'read' and lease = 0;
alter table app_private.rate_limits force row level security;
