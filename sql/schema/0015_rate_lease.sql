/*
 * 0015 rate-limit leases: how many requests of a class each API worker may admit per caller
 * before it has told the table.
 *
 * Why: taking a token in every request's own transaction made every read a writing transaction
 * (a transaction id, a commit record, a new bucket tuple): ~10 % of a listing's detail on
 * 2 cores. With a lease, a worker admits a caller's requests itself, counts them, and debits
 * the counts of all callers in one transaction a few times a second (app.rate_settle); the
 * table still decides every refusal (a caller the table reports empty goes back to taking
 * in its own transaction, app.rate_take, and gets its 429 from there).
 *
 * Guarantees after this file:
 *   - rate_limits.lease is 0 for every class but read: those still take in the request's own
 *     transaction, exactly as before;
 *   - the bound: a caller can get at most lease requests per API worker (over all instances)
 *     beyond what the bucket allows; the table is debited for them afterwards (its tokens may
 *     go below zero), so over time the rate is exact.
 */

alter table app_private.rate_limits
  add column lease integer not null default 0 check (lease between 0 and 1000);
update app_private.rate_limits set lease = 10 where class = 'read';
comment on column app_private.rate_limits.lease is
  'Requests each API worker may admit per caller before debiting the table (app.rate_settle). 0: every request takes its token in its own transaction. A caller may exceed the bucket by at most lease x the number of API workers.';
