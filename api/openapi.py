"""OpenAPI 3.1 from the route table, with descriptions from the SQL functions' comments.

Swagger UI is served from the assets of the swagger-ui-bundle package, so /swagger/
works with no internet; its Authorize button takes a Bearer access token.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import psycopg
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

from api.routes import ROUTES, Route

SWAGGER_ASSETS = swagger_ui_path

COMMENTS = """
select n.nspname || '.' || p.proname, coalesce(d.description, '')
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
left join pg_description d on d.objoid = p.oid and d.classoid = 'pg_proc'::regclass
where n.nspname = 'api'
"""

PROBLEM_REF = {"$ref": "#/components/responses/Problem"}
PAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "next": {"type": ["string", "null"], "format": "uri"},
        "previous": {"type": ["string", "null"], "format": "uri"},
        "results": {"type": "array", "items": {"type": "object"}},
    },
}


def operation(route: Route, comments: dict[str, str]) -> dict[str, Any]:
    text = comments.get(route.function, "")
    summary = text.split(". ")[0].strip().rstrip(".") or route.function
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    params += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in route.query]
    op: dict[str, Any] = {
        "tags": [route.tag],
        "summary": summary,
        "description": f"{text}\n\nCalls `{route.function}`. Roles: {', '.join(sorted(route.roles))}.",
        "operationId": route.function.replace("api.", "") + "_" + route.method.lower(),
        "parameters": params,
        "responses": {"4XX": PROBLEM_REF, "503": PROBLEM_REF},
    }
    if "anon" not in route.roles:
        op["security"] = [{"bearer": []}]
    if route.body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}
    if route.upload:
        op["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                }
            },
        }
    if route.status == 204:
        op["responses"]["204"] = {"description": "Done."}
    elif route.status == 302:
        op["responses"]["302"] = {
            "description": "Redirect to the provider's authorization page.",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        }
    else:
        schema = PAGE_SCHEMA if route.page else {"type": "object"}
        op["responses"][str(route.status)] = {
            "description": "Success.",
            "content": {"application/json": {"schema": schema}},
        }
    return op


def document(comments: dict[str, str]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route, comments)
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
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem details; `errors` maps a field to its messages.",
                    "content": {
                        "application/problem+json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "type": {"type": "string"},
                                    "title": {"type": "string"},
                                    "status": {"type": "integer"},
                                    "detail": {"type": "string"},
                                    "errors": {
                                        "type": "object",
                                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                                    },
                                },
                            }
                        }
                    },
                }
            },
        },
    }


async def serve(request: Request) -> Response:
    if request.app.state.openapi is None:
        try:
            async with request.app.state.pool.connection() as conn:
                cur = await conn.execute(COMMENTS)
                comments = {name: text for name, text in await cur.fetchall()}
        except psycopg.Error:
            comments = {}
        request.app.state.openapi = orjson.dumps(document(comments))
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
