"""The one error path: SQLSTATE -> HTTP status -> RFC 9457 problem+json.

Functions raise `PTnnn` (the HTTP status in the SQLSTATE, PostgREST's convention) with
a message a client can show and the field in COLUMN (app.fail), or every invalid field
at once as JSON in DETAIL (app.raise_errors); HINT lines `Retry-After: <seconds>` and
`RateLimit-*: ...` (app.fail, app.rate_take) become those headers. Anything else maps by SQLSTATE class,
never by the server's message text (which depends on lc_messages) or by constraint
names. SQL text, constraint names and values never leave the server.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
import psycopg
from starlette.responses import Response

from api import metrics

log = logging.getLogger("nexus.errors")

PROBLEM = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
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


UNAVAILABLE = (503, "The service is temporarily unavailable.")
NOT_NOW = (409, "The resource is not in a state that allows this request.")

# SQLSTATEs a function did not foresee (foreseen ones are raised as PTnnn with the field),
# one line each; never the server's message text (it depends on lc_messages) or a
# constraint's name.
BY_SQLSTATE: dict[str, tuple[int, str]] = {
    "23505": (409, "Conflicts with an existing record."),  # unique_violation
    "23P01": (409, "Conflicts with an existing record."),  # exclusion_violation
    "23503": (409, "Conflicts with the current state of other records."),  # foreign_key_violation (gone, or still used)
    "23514": (400, "Invalid value."),  # check_violation
    "P0002": (404, "Not found."),  # no_data_found (SELECT INTO STRICT)
    "55000": NOT_NOW,  # object_not_in_prerequisite_state
    "55P03": NOT_NOW,  # lock_not_available
    "40001": NOT_NOW,  # serialization_failure
    "40P01": NOT_NOW,  # deadlock_detected
    "57014": UNAVAILABLE,  # query_canceled (statement_timeout)
}
BY_CLASS: dict[str, tuple[int, str]] = {
    "22": (400, "Invalid input."),  # data exception: a bad number, date, JSON, ...
    "08": UNAVAILABLE,  # connection exception
}


# Response headers a database error may carry in its HINT, one "Name: value" per line
# (app.fail's p_retry_after; app.rate_take's Retry-After and RateLimit-* headers).
HINT_HEADER = re.compile(
    r"(Retry-After|RateLimit-Limit|RateLimit-Remaining|RateLimit-Reset|RateLimit-Policy): ([0-9a-z;=]{1,40})"
)


def from_database(exc: psycopg.Error, anonymous: bool) -> Problem:
    """Translate a database error into the Problem a client sees."""
    state = exc.sqlstate or ""
    diag = exc.diag
    message = diag.message_primary or "Request failed."
    fieldname = diag.column_name or None

    if state.startswith("PT") and state[2:].isdigit():  # app.fail / app.raise_errors
        status = int(state[2:])
        if status == 403 and anonymous:
            status = 401
        errors = {fieldname: [message]} if fieldname else None
        if diag.message_detail and diag.message_detail.startswith("{"):
            errors = orjson.loads(diag.message_detail)  # app.raise_errors: every invalid field at once
        hinted: dict[str, str] = {}
        for line in (diag.message_hint or "").splitlines():
            if m := HINT_HEADER.fullmatch(line):
                hinted[m[1]] = m[2]
        return Problem(status, message, errors, hinted or None)
    if state == "42501":  # insufficient_privilege
        if anonymous:
            return Problem(401, "Authentication required.")
        return Problem(403, "You do not have permission to perform this action.")
    if state == "23502":  # not_null_violation: PostgreSQL itself names the column
        detail = "This field is required."
        return Problem(400, detail, {fieldname: [detail]} if fieldname else None)
    if state == "57014":
        metrics.statement_timeout()
    known = BY_SQLSTATE.get(state) or BY_CLASS.get(state[:2])
    if known:
        status, detail = known
        headers = {"Retry-After": "1"} if status == 503 else None
        return Problem(status, detail, {fieldname: [message]} if fieldname and status == 400 else None, headers)
    if isinstance(exc, psycopg.OperationalError):  # no SQLSTATE: the server went away
        return Problem(*UNAVAILABLE, headers={"Retry-After": "1"})
    if isinstance(exc, psycopg.DataError) and not state:  # the driver would not send a value (text with NUL)
        return Problem(400, "Invalid characters in the request.")
    log.error("unmapped database error %s: %s", state, message)
    return Problem(500, "Internal server error.")
