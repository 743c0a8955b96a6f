/*
 * The API contract is the public API document: everyone reads it (api/openapi.py reads
 * it as anon); only the owner declares it (sql/functions/03_contract.sql, on migrate).
 * No user data: grants alone decide, no row-level security.
 */

grant select on api.contract_schemas, api.contract_operations to anon, guest, host, admin;
