/*
 * 0022 operation rate: each API operation's rate class is declared with the operation, in
 * the contract, beside the function it limits.
 *
 * Why: which shared rate limit a route counts against (app_private.rate_limits) was an
 * if-chain on literal paths in api/routes.py, a second place to keep in step with the
 * function. Now app.api_operation declares it (sql/functions/03_contract.sql: read for a
 * stable function, write otherwise, unless the call names another class or null) and the
 * API reads it at startup with the rest of the contract.
 *
 * Guarantees after this file: an operation's rate class is a row of app_private.rate_limits
 * (a foreign key: a class cannot be misspelt, nor a limited class dropped), or null, which
 * means not limited.
 */

alter table api.contract_operations
  add column rate text references app_private.rate_limits (class);
comment on column api.contract_operations.rate is
  'The shared rate limit its routes count against: a class of app_private.rate_limits (read, write, signup, upload, payment, message), or null: not limited (the payment providers'' webhooks, which sign, retry and pace themselves).';
comment on table api.contract_operations is
  'What each API function takes and returns, for the OpenAPI document, and the rate class it counts against: declared by app.api_operation right after the function. The route (method, path) is in api/routes.py; who may call it is the function''s EXECUTE grants; the description is the function''s comment.';
comment on column app_private.rate_limits.class is
  'The route class: read, write, signup, upload, payment, message. Each API operation names its class in api.contract_operations.rate (app.api_operation: read for a stable function, write otherwise, unless it names another).';
