"""The few routes that need a Python step around their one function call."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.routes import Route


def header_value(request: Request, name: str) -> str | None:
    """Request metadata a function may receive: the client address, or a request header."""
    if name == "client_addr":
        return request.client.host if request.client else None
    return request.headers.get(name.replace("_", "-"))


async def run(
    route: Route, request: Request, args: dict[str, Any], role: str, claims: dict[str, Any] | None
) -> Response:
    raise NotImplementedError(route.special)
