/*
 * 0023 owner as client: a DBA can try row-level security as any client role from psql.
 *
 * Why: the DBA's "try RLS as a user" walk-through (README, now docs/dba.md) (set_config('role', 'guest', true) and a JWT's
 * claims, then an api.* call) failed for the owner with "permission denied to set role
 * guest": SET ROLE needs membership, and only the authenticator had it. The owner already
 * owns every object and sees every row (its all_as_owner policies), so membership adds no
 * privilege; it only lets the DBA become a client role inside a transaction, the way the API
 * does, to see exactly what that role sees.
 *
 * Guarantees after this file: the owner (whoever migrates) may SET ROLE to anon, guest,
 * host and admin. The authenticator's memberships are unchanged.
 */

grant anon, guest, host, admin to current_user;
