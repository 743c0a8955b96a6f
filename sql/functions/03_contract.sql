/*
 * The API contract: how a file declares the JSON shapes of its functions.
 *
 * Why: the OpenAPI document (/openapi.json) must say, field by field, what every operation
 * takes and returns, and stay true. The JSON is built here in SQL, so each file declares
 * the shapes it builds right after the functions that build them:
 *
 *   select app.api_schema('Category', 'A listing category.',
 *     '{"id": "uuid", "name": "string", "slug": "string", "description": "string",
 *       "created_at": "date-time", "updated_at": "date-time"}');
 *   select app.api_operation('api.category_get', response => '"Category"', errors => '{}');
 *
 * Each operation also names the shared rate limit its routes count against (rate =>, a
 * class of app_private.rate_limits): read for a stable function and write otherwise unless
 * it says another class (signup, upload, payment, message), or null for not limited.
 *
 * Schemas are JSON Schema or the shorthand api/openapi.py expands: a type name ("string",
 * "integer", "boolean", "uuid", "date", "date-time", "decimal", "price", "uri", "email", "any"), a
 * component ("Category"), an array ("[Photo]"), an enum ("pending|confirmed"), a trailing
 * "?" for null allowed, length or range limits ("string(1..100)", "integer(1..)"), and an
 * object as {"field": schema} where a field is required unless its name ends in "?".
 * Objects in responses allow no other fields, so a field added in SQL and not here fails
 * the test suite, which validates every response against the document.
 *
 * The document says every rule a function refuses a request by, so a request it calls valid
 * is never refused with a 400 (tests/api/test_schemathesis.py checks both directions):
 *   - a rule across fields: the object carries JSON Schema's oneOf, anyOf, allOf, not or
 *     dependentRequired beside its fields, e.g. exactly one of two ids:
 *       '{"product_id?": "uuid?", "booking_id?": "uuid?",
 *         "oneOf": [{"required": ["product_id"], "properties": {"product_id": {"type": "string"}}},
 *                   {"required": ["booking_id"], "properties": {"booking_id": {"type": "string"}}}]}'
 *   - a text the function trims: "string(1..)" in a request also says it is not blank;
 *     a form it matches: a "pattern" (JSON Schema as written), e.g. a phone number;
 *   - a query parameter the function requires: {"required": true, "schema": ..., "description": ...};
 *   - a value that names what does not exist (a listing, a category, a currency): 404 naming
 *     the field (sql/functions/01_input.sql), with 404 in the operation's errors.
 * A rule OpenAPI cannot state (across query parameters, relative to today, in bytes) is said
 * in the description, and tests/api/schemathesis.toml names it.
 *
 * Guarantees: only the owner declares (by grants); a declaration names a function that
 * exists; declaring twice replaces.
 */

create function app.api_schema(p_name text, p_description text, p_schema jsonb) returns void
language sql volatile security invoker
as $$
  insert into api.contract_schemas (name, kind, description, schema)
  values (p_name, 'schema', p_description, p_schema)
  on conflict (name) do update set description = excluded.description, schema = excluded.schema
$$;
comment on function app.api_schema(text, text, jsonb) is
  'Declare a component of the API contract (CamelCase name, e.g. Listing): its description and schema (JSON Schema or the shorthand of sql/functions/03_contract.sql).';

create function app.api_parameter(p_name text, p_description text, p_schema jsonb) returns void
language sql volatile security invoker
as $$
  insert into api.contract_schemas (name, kind, description, schema)
  values (p_name, 'parameter', p_description, p_schema)
  on conflict (name) do update set description = excluded.description, schema = excluded.schema
$$;
comment on function app.api_parameter(text, text, jsonb) is
  'Declare a query or path parameter shared by name (e.g. page): every operation taking a parameter of this name documents it so, unless its own declaration says otherwise.';

create function app.api_operation(p_function text, body jsonb default null, response jsonb default null,
                                  parameters jsonb default '{}', errors integer[] default '{}',
                                  example jsonb default null, rate text default 'auto')
returns void
language plpgsql volatile security invoker
as $$
declare
  v_volatility "char";
begin
  select p.provolatile into v_volatility
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname || '.' || p.proname = p_function;
  if not found then
    raise exception 'app.api_operation: no function %', p_function;
  end if;
  if rate = 'auto' then
    rate := case when v_volatility in ('s', 'i') then 'read' else 'write' end;
  end if;
  insert into api.contract_operations (function, body, response, parameters, errors, example, rate)
  values (p_function, body, response, parameters, errors, example, rate)
  on conflict (function) do update
    set body = excluded.body, response = excluded.response, parameters = excluded.parameters,
        errors = excluded.errors, example = excluded.example, rate = excluded.rate;
end
$$;
comment on function app.api_operation(text, jsonb, jsonb, jsonb, integer[], jsonb, text) is
  'Declare what an api function takes and returns for the OpenAPI document: body (request schema), response (success schema; the item for paginated lists), parameters that differ from the shared ones (a schema, or {"required": true, "schema": ..., "description": ...} for a query parameter it cannot do without), errors it answers beyond its route''s usual ones (404 when a body field names what does not exist), an example body; and rate, the class of app_private.rate_limits its routes count against: by default (''auto'') read for a stable function and write otherwise, null for not limited.';

-- The shapes every operation shares.
select app.api_schema('Problem', 'An RFC 9457 problem: what went wrong; errors names each invalid field with its messages.', '{
  "type": "object",
  "required": ["type", "title", "status", "detail"],
  "additionalProperties": false,
  "properties": {
    "type": {"type": "string"},
    "title": {"type": "string"},
    "status": {"type": "integer", "minimum": 400, "maximum": 599},
    "detail": {"type": "string"},
    "request_id": {"type": "string"},
    "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}
  }
}');
select app.api_parameter('page', 'The page to read, from 1.', '"integer(1..1000000)"');
select app.api_parameter('page_size', 'Items per page (default 20; more than 100 is read as 100).', '"integer(1..1000000)"');
select app.api_parameter('id', 'The object''s id.', '"uuid"');
