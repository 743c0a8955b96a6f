"""Logs: one JSON line per event, in the API and the worker, each with the request and trace it belongs to.

    {"time": "2026-12-07T09:14:03.512Z", "level": "INFO", "logger": "nexus.worker",
     "message": "email of notification 5b0e… handed to the relay", "request_id": "3f2a…",
     "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}

`setup(level)` puts one handler on the root logger (standard error) whose `JsonFormatter` writes every
record so, whoever logged it: Nexus's own loggers (`nexus.*`), uvicorn's, procrastinate's, the SDKs'.
`request_id` is the request's X-Request-ID, set for each request by RequestContext (api/app.py) and,
in the worker, for each job from the request that deferred it (api/tracing.py `job`); `trace_id` is
the current OpenTelemetry trace when tracing is on (api/tracing.py), else the trace a job's request
began. A record may carry more keys in `extra={"fields": {...}}` (the access line: method, path,
status, ms); an exception's traceback is under `exception`.

What is never logged: request bodies, query strings, headers (so no password, token, cookie or
card number a client sends), SQL parameters, provider answers. Libraries that write such things
at DEBUG or INFO (the Stripe SDK logs response bodies with client secrets, httpx2 logs full URLs,
where an OAuth provider's access token may ride in the query, aiosmtplib the SMTP dialogue, boto
signed headers) are held at WARNING whatever LOG_LEVEL says (`QUIET`). And as a last guard every
line is scrubbed of what has the shape of a secret (`scrub`): a JWT, a bearer token, a Stripe key,
webhook secret or client secret, a card number (13-19 digits passing the Luhn check).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TextIO

import orjson

# The request being served, or the one that deferred the job being run.
REQUEST_ID: ContextVar[str] = ContextVar("nexus_request_id", default="")
# A job's trace when tracing is off in the worker: the trace id of the traceparent it carries.
TRACE_ID: ContextVar[str] = ContextVar("nexus_trace_id", default="")


def _no_trace() -> str:
    return TRACE_ID.get()


# The current trace id (32 hex) or "": api/tracing.py puts its own here while tracing is on.
current_trace_id: Callable[[], str] = _no_trace

# Loggers that write secrets below WARNING (see the module's text): never lower than this.
QUIET = (
    "stripe",
    "httpx2",
    "httpcore2",
    "httpx",
    "httpcore",
    "aiosmtplib",
    "urllib3",
    "botocore",
    "boto3",
    "s3transfer",
)

REDACTED = "[redacted]"
_SECRET = re.compile(
    r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # a JWT (header.payload.signature)
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"  # an Authorization header's credentials
    r"|\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"  # Stripe secret and restricted keys
    r"|\bwhsec_[A-Za-z0-9]{8,}"  # Stripe webhook signing secret
    r"|\b[a-z]{2,4}_[A-Za-z0-9]{6,}_secret_[A-Za-z0-9]{6,}"  # Stripe client secrets (pi_..._secret_...)
)
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match[0])
    return REDACTED if _luhn(digits) else match[0]


def scrub(text: str) -> str:
    """`text` with whatever has the shape of a secret replaced by [redacted] (see the module's text)."""
    return _CARD.sub(_card, _SECRET.sub(REDACTED, text))


def _time(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time (UTC), level, logger, message, request_id and trace_id when
    known, the record's `fields`, and the exception's traceback; scrubbed (see `scrub`)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        trace_id = current_trace_id()
        if trace_id:
            line["trace_id"] = trace_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return scrub(orjson.dumps(line, default=str).decode())


def quiet_libraries() -> None:
    """Hold the loggers that would write secrets at DEBUG or INFO to WARNING."""
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def setup(level: str, stream: TextIO | None = None) -> logging.Handler:
    """Every record of this process as one JSON line on `stream` (standard error), from `level` up.

    Replaces the root logger's handlers, and sends uvicorn's loggers (which configure their own
    handlers and stop propagation) to the root's, but for its access line. Returns the handler.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        for old in logger.handlers[:]:
            logger.removeHandler(old)
        # uvicorn's own access line never: the app writes one per request (nexus.access, ACCESS_LOG).
        logger.propagate = name != "uvicorn.access"
    quiet_libraries()
    return handler
