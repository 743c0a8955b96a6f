/*
 * 0013 the API contract: the JSON shapes of every operation, kept in the database beside
 * the functions that build them.
 *
 * Why: a frontend generates its client from /openapi.json, so the document must say what
 * each function takes and returns, field by field. The JSON an operation returns is built
 * in SQL (app.*_json), so its schema is declared in the same file, right after the
 * function (app.api_schema, app.api_operation in sql/functions/03_contract.sql). These
 * tables hold those declarations; like functions they are re-declared on every migrate
 * (api/migrate.py empties them first), so what the files say is what the document says.
 * api/openapi.py reads them (as anon) and writes OpenAPI 3.1; the test suite validates
 * every response it receives against the result.
 *
 * Guarantees after this file:
 *   - a schema name is a component name (CamelCase) or a parameter name (lower case);
 *   - everyone may read the contract (it is the public API document); only the owner writes.
 *     The tables live in the api schema beside the functions they describe and hold no
 *     user data, so they need no row-level security: grants alone decide.
 */

create table api.contract_schemas (
  name text primary key check (name ~ '^([A-Z][A-Za-z0-9]*|[a-z][a-z0-9_]*)$'),
  kind text not null check (kind in ('schema', 'parameter')),
  description text not null check (description <> ''),
  schema jsonb not null check (jsonb_typeof(schema) in ('object', 'string')),
  check ((kind = 'schema') = (name ~ '^[A-Z]'))
);
comment on table api.contract_schemas is
  'Named shapes of the API contract: components (CamelCase: Listing, Booking, Problem, ...) and query/path parameters shared by name (page, page_size, ...). Declared by app.api_schema in sql/functions beside the function that builds the shape.';
comment on column api.contract_schemas.name is 'The component name (CamelCase) or parameter name (lower case).';
comment on column api.contract_schemas.kind is 'schema (a component under #/components/schemas) or parameter (a query or path parameter shared by every operation that takes it).';
comment on column api.contract_schemas.description is 'What it is, for the document.';
comment on column api.contract_schemas.schema is 'JSON Schema, or the contract shorthand api/openapi.py expands (see its docstring): "uuid", "decimal?", "pending|confirmed", "[Photo]", {"field": "type", "optional?": "type"}.';

create table api.contract_operations (
  function text primary key check (function ~ '^api\.[a-z_]+$'),
  body jsonb,
  response jsonb,
  parameters jsonb not null default '{}' check (jsonb_typeof(parameters) = 'object'),
  errors integer[] not null default '{}' check (errors <@ array[400, 401, 402, 403, 404, 405, 408, 409, 410, 412, 413, 415, 422, 428, 429, 502, 503]),
  example jsonb
);
comment on table api.contract_operations is
  'What each API function takes and returns, for the OpenAPI document: declared by app.api_operation right after the function. The route (method, path, roles) is in api/routes.py; the description is the function''s comment.';
comment on column api.contract_operations.function is 'The api function, e.g. api.product_get.';
comment on column api.contract_operations.body is 'The JSON request body''s schema (shorthand or JSON Schema), or null when the operation takes none.';
comment on column api.contract_operations.response is 'The success response''s schema; for a paginated list, the schema of one item (the document wraps it in the page envelope). Null for 204 and redirects.';
comment on column api.contract_operations.parameters is 'Query and path parameters whose schema differs from the shared one of the same name: {"name": schema}.';
comment on column api.contract_operations.errors is 'The 4xx/5xx statuses the function itself can answer, beyond those every route of its kind can (400 for bad input, 401, 403 for roles, 404 for a path id, 413/415 for bodies, 429, 503).';
comment on column api.contract_operations.example is 'An example request body.';
