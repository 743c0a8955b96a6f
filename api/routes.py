"""The route table: method, path, the one stored function it calls, who may call it.

Adding an endpoint is one row here plus one SQL function. Path parameters are passed
by name (`{id}` -> `p_id`), listed query parameters as text (`?min_price=` ->
`p_min_price`; the function validates and names the parameter in any 400), and a
JSON body as `p_body jsonb`. Functions return json; a `page` route's function
returns (count, page, page_size, results) and gets the DRF envelope around it.
Descriptions in the OpenAPI document are the functions' `comment on` text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ANYONE = frozenset({"anon", "guest", "host", "admin"})
SIGNED_IN = frozenset({"guest", "host", "admin"})
HOSTS = frozenset({"host", "admin"})
ADMIN = frozenset({"admin"})
GUEST = frozenset({"guest"})


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    roles: frozenset[str]
    tag: str
    query: tuple[str, ...] = ()
    body: bool = False
    status: int = 200
    page: bool = False
    etag: bool = False
    special: str | None = None  # a Python step around the call: token signing, uploads
    headers: tuple[str, ...] = ()  # request headers passed to the function (p_<name>)
    extra: dict[str, str] = field(default_factory=dict)


LIST = ("page", "page_size")

ROUTES: list[Route] = []
