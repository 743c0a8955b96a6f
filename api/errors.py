"""The one error path: SQLSTATE -> HTTP status -> RFC 9457 problem+json.

Functions raise `PTnnn` (the HTTP status in the SQLSTATE, PostgREST's convention) with
a message a client can show and the field in COLUMN. Constraint violations that reach
here map by class. SQL text, constraint names and values never leave the server.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
from psycopg import errors as pgerr
from starlette.responses import Response

log = logging.getLogger("nexus.errors")

PROBLEM = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class Problem(Exception):
    """A client-facing error raised by the Python layer (bad JSON, no token, ...)."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_response(
    status: int,
    detail: str,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"https://nexus.dev/problems/{status}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    if request_id:
        body["request_id"] = request_id
    hdrs = dict(headers or {})
    if status == 401:
        hdrs.setdefault("WWW-Authenticate", 'Bearer realm="nexus"')
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=hdrs)


def _field_from_constraint(diag: psycopg.errors.Diagnostic) -> str | None:
    """`products_price_per_night_check` on table products -> `price_per_night`."""
    name, table = diag.constraint_name, diag.table_name
    if not name:
        return diag.column_name or None
    if table and name.startswith(table + "_"):
        name = name[len(table) + 1 :]
    for suffix in ("_check", "_key", "_fkey", "_excl", "_not_null"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def from_database(exc: psycopg.Error, anonymous: bool) -> Problem:
    """Translate a database error into the Problem a client sees."""
    state = exc.sqlstate or ""
    diag = exc.diag
    message = diag.message_primary or "Request failed."
    fieldname = diag.column_name or None

    if state.startswith("PT") and state[2:].isdigit():
        status = int(state[2:])
        if status == 403 and anonymous:
            status = 401
        headers: dict[str, str] = {}
        if status == 429 and diag.message_hint and diag.message_hint.isdigit():
            headers["Retry-After"] = diag.message_hint
        errors = {fieldname: [message]} if fieldname else None
        if diag.message_detail and diag.message_detail.startswith("{"):
            errors = orjson.loads(diag.message_detail)  # app.raise_errors: every invalid field at once
        return Problem(status, message, errors, headers)
    if isinstance(exc, pgerr.InsufficientPrivilege):
        if anonymous:
            return Problem(401, "Authentication required.")
        return Problem(403, "You do not have permission to perform this action.")
    if isinstance(exc, (pgerr.UniqueViolation, pgerr.ExclusionViolation)):
        f = _field_from_constraint(diag)
        detail = "Conflicts with an existing record."
        return Problem(409, detail, {f: [detail]} if f else None)
    if isinstance(exc, pgerr.ForeignKeyViolation):
        f = _field_from_constraint(diag)
        if state == "23503" and diag.message_primary and "is still referenced" in diag.message_primary:
            return Problem(409, "Still in use by other records.")
        return Problem(400, "Refers to a record that does not exist.", {f: ["Does not exist."]} if f else None)
    if isinstance(exc, (pgerr.CheckViolation, pgerr.NotNullViolation)):
        f = _field_from_constraint(diag)
        detail = "This field is required." if isinstance(exc, pgerr.NotNullViolation) else "Invalid value."
        return Problem(400, detail, {f: [detail]} if f else None)
    if state.startswith("22"):  # data exception: bad number, date, json, ...
        return Problem(400, "Invalid input.", {fieldname: [message]} if fieldname else None)
    if isinstance(exc, pgerr.NoDataFound):
        return Problem(404, "Not found.")
    if state in ("55000", "55P03", "40001", "40P01"):
        return Problem(409, "The resource is not in a state that allows this request.")
    if isinstance(exc, (pgerr.QueryCanceled, psycopg.OperationalError)) or state.startswith("08"):
        return Problem(503, "The service is temporarily unavailable.", headers={"Retry-After": "1"})
    log.error("unmapped database error %s: %s", state, message)
    return Problem(500, "Internal server error.")
