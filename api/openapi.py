"""OpenAPI 3.1 from the route table and the contract the SQL files declare.

The route table (api/routes.py) gives each operation's method, path and parameter names;
the database gives the rest, declared beside the functions that build the JSON
(sql/functions/03_contract.sql): descriptions are the functions' comments, shapes and rate
classes are rows of api.contract_schemas and api.contract_operations, and who may call an
operation is its function's EXECUTE grants. The API reads this contract once at startup
(`current`): it decides 401/403 and the rate limit of every request. This module expands
the contract's shorthand into JSON Schema:

    "string" "integer" "number" "boolean" "any"    the JSON types ("any": no constraint)
    "uuid" "date" "date-time" "uri" "email"         strings of that format
    "decimal"                                       a decimal as a string, e.g. "120.00"
    "price"                                         a price as text: 0.01 to 9999999999.99, 2 decimals
    "string(1..100)" "integer(1..)"                 lengths or ranges
    "pending|confirmed"                             one of these strings
    "Listing" "[Photo]"                             a component; an array of them
    "...?"                                          null allowed
    {"field": schema, "optional?": schema}          an object; in responses no other field
    {"a?": ..., "b?": ..., "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
                                                    a rule across fields: an object may carry the
                                                    JSON Schema keywords of CROSS (their schemas
                                                    are JSON Schema as written)

A parameter an operation declares may be {"required": true, "schema": ..., "description": ...}
(a query parameter the function cannot do without). What Python checks before the call is
said here: a webhook's signature headers and body (WEBHOOK_HEADERS), an upload's file (UPLOAD).

Swagger UI is served from the assets of the swagger-ui-bundle package, so /swagger/
works with no internet; its Authorize button takes a Bearer access token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

from api import db, payments, paypal, specials
from api.errors import Problem, from_database, problem_response
from api.routes import ROUTES, Route

SWAGGER_ASSETS = swagger_ui_path

# A function's comment, less its last sentence when that is "Security definer: <why>" (for DBAs).
COMMENTS = """
select n.nspname || '.' || p.proname, regexp_replace(coalesce(d.description, ''), '\\s*Security definer: .*$', '')
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
left join pg_description d on d.objoid = p.oid and d.classoid = 'pg_proc'::regclass
where n.nspname = 'api'
"""
SCHEMAS = "select name, kind, description, schema from api.contract_schemas order by name"
OPERATIONS = "select function, body, response, parameters, errors, example, rate from api.contract_operations"
# Which client roles, and api_internal (the API process itself), may execute each api function.
GRANTS = """
select n.nspname || '.' || p.proname, r.role
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
cross join unnest(array['anon', 'guest', 'host', 'admin', 'api_internal']) r(role)
where n.nspname = 'api' and has_function_privilege(r.role, p.oid, 'execute')
"""
ANYONE = frozenset({"anon", "guest", "host", "admin"})  # the roles a request runs as


@dataclass
class Contract:
    """What the database says about the API: comments, named shapes, operations."""

    comments: dict[str, str] = field(default_factory=dict)
    schemas: dict[str, tuple[str, Any]] = field(default_factory=dict)  # component name -> (description, schema)
    parameters: dict[str, tuple[str, Any]] = field(default_factory=dict)  # parameter name -> (description, schema)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)  # function -> its declaration
    admitted: dict[str, frozenset[str]] = field(default_factory=dict)  # function -> the roles its routes admit

    @property
    def named(self) -> dict[str, Any]:
        return {name: schema for name, (_, schema) in self.schemas.items()}

    def admits(self, route: Route) -> frozenset[str]:
        """The roles (of ANYONE) that may call `route`: a request as any other gets 401 or 403 before the call."""
        return self.admitted.get(route.function, frozenset())

    def rate_class(self, route: Route) -> str | None:
        """The shared rate limit `route` counts against (app_private.rate_limits); None: not limited."""
        return self.operations.get(route.function, {}).get("rate")


def admitted(granted: frozenset[str]) -> frozenset[str]:
    """The roles a route admits, from those its function is granted to.

    Granted to anon, any caller: a token would only add who the caller is. Granted to
    api_internal, any caller too: the API process makes that call itself, as api_internal,
    after its own check (a webhook's signature, an OAuth provider's answer: api/specials.py,
    api/oauth.py), whoever the caller is. Otherwise the client roles granted it.
    """
    if granted & {"anon", "api_internal"}:
        return ANYONE
    return granted & ANYONE


def parsed(value: Any) -> Any:
    """A jsonb value: the app's pool passes JSON through as bytes."""
    return orjson.loads(value) if isinstance(value, bytes) else value


def contract_from(comments: list[Any], schemas: list[Any], operations: list[Any], grants: list[Any]) -> Contract:
    contract = Contract(comments=dict(comments))
    for name, kind, description, schema in schemas:
        (contract.schemas if kind == "schema" else contract.parameters)[name] = (description, parsed(schema))
    for function, body, response, parameters, errors, example, rate in operations:
        contract.operations[function] = {
            "body": parsed(body),
            "response": parsed(response),
            "parameters": parsed(parameters),
            "errors": errors,
            "example": parsed(example),
            "rate": rate,
        }
    granted: dict[str, set[str]] = {name: set() for name in contract.comments}
    for function, role in grants:
        granted.setdefault(function, set()).add(role)
    contract.admitted = {function: admitted(frozenset(roles)) for function, roles in granted.items()}
    return contract


QUERIES = (COMMENTS, SCHEMAS, OPERATIONS, GRANTS)


def load(conn: psycopg.Connection[Any]) -> Contract:
    """Read the contract (any role that may read the API document: anon does)."""
    return contract_from(*(conn.execute(query).fetchall() for query in QUERIES))


async def load_async(conn: psycopg.AsyncConnection[Any]) -> Contract:
    return contract_from(*[await (await conn.execute(query)).fetchall() for query in QUERIES])


async def read(pool: db.Pool) -> Contract:
    """The contract, read as anon from one of the app's connections."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("set local role anon")
        return await load_async(conn)


async def current(request: Request) -> Contract:
    """The contract the app read at startup; read now if the database was unreachable then.

    Who may call each route and its rate class come from it, so until it is read every API
    request answers 503 (api/errors.py: the database is unavailable).
    """
    state = request.app.state
    if state.contract is None:
        try:
            state.contract = await read(state.pool)
        except psycopg.Error as exc:
            raise from_database(exc, anonymous=True) from exc
    return state.contract  # type: ignore[no-any-return]


# --- the shorthand ------------------------------------------------------------------------

DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
# A price a client sends as text (app.parse_price): 0.01 to 9999999999.99, at most 2 decimals.
PRICE = r"^((0|[1-9][0-9]{0,9})\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,9}(\.[0-9]{1,2})?)$"
NOT_BLANK = r"[^ \t\r\n\f\v]"  # some character that is not white space, as app.check_text trims it
TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "object": {"type": "object"},
    "uuid": {"type": "string", "format": "uuid"},
    "date": {"type": "string", "format": "date"},
    "date-time": {"type": "string", "format": "date-time"},
    "uri": {"type": "string", "format": "uri"},
    "email": {"type": "string", "format": "email"},
    "decimal": {"type": "string", "pattern": DECIMAL, "examples": ["120.00"]},
    "price": {"type": "string", "pattern": PRICE, "examples": ["120.00"]},
}
# A decimal sent by a client may be a JSON number too.
REQUEST_TYPES = {**TYPES, "decimal": {"type": ["string", "number"], "pattern": DECIMAL, "examples": ["120.00"]}}
LIMITED = re.compile(r"^(string|integer|number|decimal)\((-?[0-9.]*)\.\.(-?[0-9.]*)\)$")
SCHEMA_KEYS = {"type", "$ref", "enum", "const", "anyOf", "oneOf", "allOf", "not", "format", "properties", "items"}
# The keywords a shorthand object may carry beside its fields: rules across them (exactly one of two, ...).
CROSS = ("oneOf", "anyOf", "allOf", "not", "dependentRequired")
# A dict of only JSON Schema keywords is JSON Schema; any other key makes it a shorthand object.
KEYWORDS = SCHEMA_KEYS | {
    "additionalProperties",
    "required",
    "description",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "contentMediaType",
    "propertyNames",
    "examples",
    "default",
    "title",
}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    out = {**schema, "type": [*types, "null"]}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def expand(node: Any, strict: bool, named: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON Schema from the contract's shorthand; `strict`: objects allow no other fields (responses).

    `named`: the components' shorthand by name, for {"...": "Booking", "more": ...} (Booking's fields and more).
    """
    if isinstance(node, str):
        text = node.strip()
        if text.endswith("?"):
            return nullable(expand(text[:-1], strict, named))
        if text == "any":
            return {}
        if text.startswith("[") and text.endswith("]"):
            return {"type": "array", "items": expand(text[1:-1], strict, named)}
        if "|" in text:
            return {"type": "string", "enum": text.split("|")}
        if text[:1].isupper():
            return ref(text)
        if m := LIMITED.match(text):
            kind, low, high = m.groups()
            schema = dict((TYPES if strict else REQUEST_TYPES)[kind])
            lo_key, hi_key = ("minLength", "maxLength") if kind == "string" else ("minimum", "maximum")
            if kind == "decimal":  # a range on a decimal is said in words; the pattern says the form
                schema["description"] = f"Between {low or 'any'} and {high or 'any'}."
                if not strict:  # and for a JSON number, which a client may send, as a range (numbers only)
                    schema |= {"minimum": float(low)} if low else {}
                    schema |= {"maximum": float(high)} if high else {}
            else:
                number = int if kind in ("string", "integer") else float
                if low:
                    schema[lo_key] = number(low)
                if high:
                    schema[hi_key] = number(high)
                if kind == "string" and low and int(low) >= 1 and not strict:
                    schema["pattern"] = NOT_BLANK  # the functions trim before they count (app.check_text)
            return schema
        if text in TYPES:
            return dict((TYPES if strict else REQUEST_TYPES)[text])
        raise ValueError(f"unknown contract type {node!r}")
    if isinstance(node, dict):
        if node.keys() <= KEYWORDS and SCHEMA_KEYS & node.keys():  # JSON Schema already: expand what it contains
            return keywords(node, strict, named)
        fields = dict(node)
        rules = {key: fields.pop(key) for key in CROSS if key in fields}
        base: dict[str, Any] = {}
        if "..." in fields:  # another component's fields, then these
            base = expand((named or {})[fields.pop("...")], strict, named)
        properties = {**base.get("properties", {})}
        properties |= {name.rstrip("?"): expand(value, strict, named) for name, value in fields.items()}
        obj: dict[str, Any] = {"type": "object", "properties": properties}
        required = [*base.get("required", []), *(name for name in fields if not name.endswith("?"))]
        if required:
            obj["required"] = required
        if strict:
            obj["additionalProperties"] = False
        return obj | keywords(rules, strict, named)
    raise ValueError(f"unknown contract node {node!r}")


def keywords(node: dict[str, Any], strict: bool, named: dict[str, Any] | None) -> dict[str, Any]:
    """JSON Schema as written, with the shorthand in the schemas it contains expanded.

    The members of anyOf/oneOf/allOf and not are JSON Schema when made of keywords only
    ({"required": ["a"]}), else shorthand.
    """
    out = dict(node)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: expand(v, strict, named) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), (dict, str)):
            out[key] = expand(out[key], strict, named)

    def member(v: Any) -> dict[str, Any]:
        return keywords(v, strict, named) if isinstance(v, dict) and v.keys() <= KEYWORDS else expand(v, strict, named)

    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [member(v) for v in out[key]]
    if isinstance(out.get("not"), (dict, str)):
        out["not"] = member(out["not"])
    return out


# --- the document -------------------------------------------------------------------------

PAGE_FIELDS = {
    "count": {"type": "integer", "minimum": 0},
    "next": {"type": ["string", "null"], "format": "uri"},
    "previous": {"type": ["string", "null"], "format": "uri"},
    # Only a search sets it, and only when true (api/app.py, envelope).
    "fuzzy": {
        "const": True,
        "description": "Present when a search's full text matched nothing and these results are by similarity.",
    },
}


def page(items: dict[str, Any]) -> dict[str, Any]:
    """The DRF page envelope around typed items."""
    return {
        "type": "object",
        "required": ["count", "next", "previous", "results"],
        "additionalProperties": False,
        "properties": {**PAGE_FIELDS, "results": {"type": "array", "items": items}},
    }


def problem(status: int) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/Problem{status}"}


PROBLEM_DESCRIPTIONS = {
    400: "The request is invalid; `errors` names each invalid field.",
    401: "No valid access token (or it was revoked).",
    402: "The payment provider declined.",
    403: "The caller's role or ownership does not allow this.",
    404: "No such object, or the caller may not see it.",
    405: "Not allowed on this object.",
    408: "The request body did not arrive in time.",
    409: "Conflicts with the current state (already taken, not in a state that allows it).",
    410: "Gone.",
    412: "A precondition failed.",
    413: "The body is too large.",
    415: "The body's content type is not accepted.",
    422: "Understood but cannot be processed.",
    428: "A precondition is required.",
    429: "Too many requests; retry after `Retry-After` seconds.",
    502: "A provider answered badly.",
    503: "Temporarily unavailable; retry after `Retry-After` seconds.",
}
RATE_HEADERS = {
    name: {"schema": {"type": "string"}, "description": text}
    for name, text in (
        ("Retry-After", "Seconds to wait before retrying."),
        ("RateLimit-Policy", "The limit: requests per window (IETF RateLimit fields draft)."),
        ("RateLimit-Limit", "Requests allowed in the window."),
        ("RateLimit-Remaining", "Requests left now."),
        ("RateLimit-Reset", "Seconds until the bucket is full again."),
    )
}


def statuses(route: Route, contract: Contract, declared: list[int]) -> set[int]:
    """The error statuses an operation can answer: those of its kind, and those its function declares."""
    found = {401, 429, 503, *declared}  # any token may be bad; everything is limited and may be unavailable
    if contract.admits(route) != ANYONE:
        found.add(403)
    if "{" in route.path:
        found |= {400, 404}
    if route.query:
        found.add(400)
    if route.page:
        found.add(404)  # a page past the end
    if route.body or route.upload or route.special is specials.webhook:
        found |= {400, 408, 413, 415}  # 408: the body did not arrive within REQUEST_TIMEOUT
    if contract.rate_class(route) is None:
        found.discard(429)
    return found


def parameter(contract: Contract, spec: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    """A path or query parameter: its shared declaration, or the operation's own.

    The operation's may be a schema, or {"required": true, "schema": ..., "description": ...}
    for a query parameter without which the function refuses the request.
    """
    declared = spec.get("parameters", {}).get(name)
    description, schema = contract.parameters.get(name, ("", "string"))
    required = where == "path"
    if isinstance(declared, dict) and isinstance(declared.get("required"), bool):
        required = required or declared["required"]
        description = declared.get("description", description)
        declared = declared.get("schema", schema)
    if declared is not None:
        schema = declared
    param: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": expand(schema, False)}
    if description:
        param["description"] = description
    return param


# The headers a provider signs its webhooks with, as api/payments.py and api/paypal.py read them:
# without them, or when they do not verify, the answer is 400.
WEBHOOK_HEADERS = {
    "stripe": {payments.SIGNATURE_HEADER: "Stripe's signature of the body: t=<unix time>,v1=<HMAC-SHA256 hex>[,...]."},
    "paypal": {
        header.upper(): f"PayPal's {field.replace('_', ' ')} (verify-webhook-signature's {field})."
        for field, header in paypal.WEBHOOK_HEADERS.items()
    },
}
WEBHOOK_EVENT = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 255}},
    "description": "The provider's event, exactly as it signed it (a Stripe event or a PayPal webhook event).",
}
UPLOAD = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "contentMediaType": "application/octet-stream",
            "minLength": 1,
            "description": "A whole, still JPEG, PNG or WebP image (another type: 415; truncated, animated or"
            " over MAX_IMAGE_PIXELS: 400), stored re-encoded without its metadata.",
        }
    },
}


def operation_id(route: Route) -> str:
    """function_method; a function behind several paths adds the path's last part (webhook_receive_stripe_post)."""
    name = route.function.removeprefix("api.")
    if sum(r.function == route.function for r in ROUTES) > 1:
        name += "_" + route.path.rstrip("/").rsplit("/", 1)[-1]
    return f"{name}_{route.method.lower()}"


def operation(route: Route, contract: Contract) -> dict[str, Any]:
    text = contract.comments.get(route.function, "")
    spec = contract.operations.get(route.function, {})
    summary = text.split(". ")[0].strip().rstrip(".") or route.function
    params = [parameter(contract, spec, name, "path") for name in re.findall(r"{(\w+)}", route.path)]
    params += [parameter(contract, spec, name, "query") for name in route.query]
    if "idempotency_key" in route.headers:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "Any unique string: a retry with the same key and body gets the first answer, never a second effect.",
            }
        )
    op: dict[str, Any] = {
        "tags": [route.tag],
        "summary": summary,
        "description": f"{text}\n\nCalls `{route.function}`. Roles: {', '.join(sorted(contract.admits(route)))}.",
        "operationId": operation_id(route),
        "parameters": params,
        "responses": {str(s): problem(s) for s in sorted(statuses(route, contract, spec.get("errors") or []))},
    }
    if route.etag:
        params.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "The ETag of the copy you hold: 304 Not Modified, with no body, while it is current.",
            }
        )
        op["responses"]["304"] = {"description": "Not Modified: your copy (If-None-Match) is current."}
    if "anon" not in contract.admits(route):
        op["security"] = [{"bearer": []}]
    if route.body:
        schema = expand(spec["body"], False, contract.named) if spec.get("body") is not None else {"type": "object"}
        media: dict[str, Any] = {"schema": schema}
        if spec.get("example") is not None:
            media["example"] = spec["example"]
        op["requestBody"] = {"required": bool(schema.get("required")), "content": {"application/json": media}}
    if route.upload:
        op["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": UPLOAD,
                    "encoding": {"file": {"contentType": "image/jpeg, image/png, image/webp"}},
                }
            },
        }
    if route.special is specials.webhook:
        provider = route.path.rstrip("/").rsplit("/", 1)[-1]
        params += [
            {
                "name": name,
                "in": "header",
                "required": True,
                "schema": {"type": "string", "minLength": 1},
                "description": text,
            }
            for name, text in WEBHOOK_HEADERS[provider].items()
        ]
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": WEBHOOK_EVENT}}}
    if route.status == 204:
        op["responses"]["204"] = {"description": "Done."}
    elif route.status == 302:
        op["responses"]["302"] = {
            "description": "Redirect to the provider's authorization page.",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        }
    elif route.special is specials.stream:
        params.append(
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
                "description": "The seq of the last notification received: those after it are sent first.",
            }
        )
        op["responses"]["200"] = {
            "description": "Server-Sent Events: one `notification` event per notification (its JSON), heartbeats as comments.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    elif route.special is specials.calendar:
        params.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "The ETag of the copy you hold: 304 Not Modified, with no body, while it is current.",
            }
        )
        op["responses"]["200"] = {
            "description": "The listing's calendar as iCalendar (RFC 5545): one all-day VEVENT per booking"
            " (SUMMARY Booked) and per block (Blocked), with a stable UID.",
            "content": {"text/calendar": {"schema": {"type": "string"}}},
            "headers": {"ETag": {"schema": {"type": "string"}, "description": "The version of this calendar."}},
        }
        op["responses"]["304"] = {"description": "Not Modified: your copy (If-None-Match) is current."}
    else:
        schema = expand(spec["response"], True, contract.named) if spec.get("response") is not None else {}
        op["responses"][str(route.status)] = {
            "description": "Success.",
            "content": {"application/json": {"schema": page(schema) if route.page else schema}},
        }
        if route.etag:
            op["responses"][str(route.status)]["headers"] = {
                "ETag": {"schema": {"type": "string"}, "description": "The version of this answer, for If-None-Match."},
                "Cache-Control": {"schema": {"type": "string"}, "description": "How long a cache may keep it."},
            }
    return op


def document(contract: Contract) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route, contract)
    responses: dict[str, Any] = {}
    for status, text in PROBLEM_DESCRIPTIONS.items():
        responses[f"Problem{status}"] = {
            "description": text,
            "content": {"application/problem+json": {"schema": ref("Problem")}},
        }
        if status in (429, 503):
            responses[f"Problem{status}"]["headers"] = (
                RATE_HEADERS if status == 429 else {"Retry-After": RATE_HEADERS["Retry-After"]}
            )
    schemas = {
        name: {"description": description, **expand(schema, True, contract.named)}
        for name, (description, schema) in sorted(contract.schemas.items())
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Nexus marketplace API",
            "version": "1.0.0",
            "description": "A rental marketplace in PostgreSQL. Every operation is one stored function "
            "in the `api` schema; errors are RFC 9457 problem+json.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas,
            "responses": responses,
        },
    }


async def serve(request: Request) -> Response:
    if request.app.state.openapi is None:
        try:
            contract = await current(request)
        except Problem:
            return problem_response(503, "The API document needs the database.", headers={"Retry-After": "1"})
        request.app.state.openapi = orjson.dumps(document(contract))
    return Response(request.app.state.openapi, media_type="application/json")


SWAGGER_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Nexus API</title>
<link rel="stylesheet" href="/swagger/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/swagger/assets/swagger-ui-bundle.js"></script>
<script src="/swagger/assets/swagger-ui-standalone-preset.js"></script>
<script src="/swagger/init.js"></script>
</body></html>"""

SWAGGER_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout",
  persistAuthorization: true});"""


async def swagger_page(request: Request) -> Response:
    return HTMLResponse(SWAGGER_HTML)


async def swagger_init(request: Request) -> Response:
    return Response(SWAGGER_INIT, media_type="application/javascript")
