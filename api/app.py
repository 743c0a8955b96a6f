"""The ASGI application: authenticate, call the route's function, pass its JSON back."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import orjson
import psycopg
from psycopg import sql
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.routing import Route as StarletteRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import admin, auth, db, events, logs, metrics, openapi, ratelimit, specials, storage, tracing
from api.cache import CatalogCache
from api.errors import Problem, from_database, problem_response
from api.migrate import MIGRATIONS
from api.routes import ROUTES, Route
from api.settings import Settings
from api.settings import settings as default_settings

log = logging.getLogger("nexus.access")
JSON = "application/json"

Handler = Callable[[Request], Awaitable[Response]]


def call_sql(route: Route, args: dict[str, Any]) -> str:
    """`select api.fn(p_a => %s, ...)`, or the page columns for a paginated route."""
    return _call_sql(route, tuple(args))


@functools.lru_cache(maxsize=4096)
def _call_sql(route: Route, names: tuple[str, ...]) -> str:
    # Built once per route and set of arguments (composing it cost ~3 % of a detail request).
    named = sql.SQL(", ").join(
        sql.SQL("{} => {}").format(
            sql.Identifier("p_" + name),
            sql.SQL("%s::jsonb") if name == "body" else sql.SQL("%s"),
        )
        for name in names
    )
    schema, fn = route.function.split(".")
    target = sql.Identifier(schema, fn)
    if route.page:
        query = sql.SQL("select count, page, page_size, results, next_cursor, fuzzy from {}({})").format(target, named)
    else:
        query = sql.SQL("select {}({})").format(target, named)
    return query.as_string()


async def read_json(request: Request, limit: int) -> str:
    """The request body as JSON text: 415 unless JSON, 413 past the limit, 400 unless an object.

    An empty body without a content type counts as {} (e.g. POST .../cancel/ with no reason).
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not ctype and request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers:
        return "{}"
    if ctype != JSON and not (ctype.startswith("application/") and ctype.endswith("+json")):
        raise Problem(415, "Send the body as application/json.")
    raw = await specials.read_body(request, limit)
    try:
        parsed = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "The body is not valid JSON.") from exc
    if not isinstance(parsed, dict):
        raise Problem(400, "The body must be a JSON object.")
    return raw.decode() if raw else "{}"


def link(request: Request, **changes: str) -> str:
    """This request's URL with `changes` to its query, on the configured PUBLIC_URL: a client's Host
    header never reaches a link (cached answers are shared)."""
    params = dict(request.query_params) | changes
    return f"{request.app.state.settings.base_url()}{request.url.path}?{urlencode(params)}"


def envelope(request: Request, row: tuple[Any, ...]) -> bytes:
    """The DRF pagination envelope around results PostgreSQL already rendered.

    Read by cursor (the request has one), next carries the next page's cursor from SQL
    (app.page.next_cursor) and there is no previous. A search whose results are by similarity
    (app.page.fuzzy) says so with "fuzzy": true.
    """
    count, page, page_size, results, next_cursor, fuzzy = row
    if "cursor" in request.query_params:
        nxt = orjson.dumps(link(request, cursor=next_cursor) if next_cursor else None)
        prev = b"null"
    else:
        last = max(1, -(-count // page_size))
        nxt = orjson.dumps(link(request, page=str(page + 1)) if page < last else None)
        prev = orjson.dumps(link(request, page=str(page - 1)) if page > 1 else None)
    more = b',"fuzzy":true' if fuzzy else b""
    return b'{"count":%d,"next":%s,"previous":%s%s,"results":%s}' % (count, nxt, prev, more, results)


def endpoint(route: Route) -> Handler:
    async def handle(request: Request) -> Response:
        cfg: Settings = request.app.state.settings
        claims = auth.verify(cfg, request.headers.get("authorization"))
        role = claims["role"] if claims else "anon"
        # Who may call it (its function's grants) and its rate class: read at startup, else now.
        contract: openapi.Contract = request.app.state.contract or await openapi.current(request)
        if role not in contract.admits(route):
            if claims is None:
                raise Problem(401, "Authentication required.")
            raise Problem(403, "You do not have permission to perform this action.")
        args: dict[str, Any] = dict(request.path_params)
        for name in route.query:
            if name in request.query_params:
                args[name] = request.query_params[name]
        for name in route.headers:
            args[name] = specials.header_value(request, name)
        for name, value in args.items():
            if value is not None and "\x00" in value:  # PostgreSQL text cannot hold NUL: a client mistake, not a 500
                raise Problem(400, "Invalid characters in the request.", {name: ["Must not contain NUL characters."]})
        if route.body:
            args["body"] = await read_json(request, cfg.max_body_bytes)
        if route.special:

            async def execute(call_args: dict[str, Any]) -> list[tuple[Any, ...]]:
                return await run(request, route, contract, role, claims, call_args)

            return await route.special(route, request, args, execute)
        rows = await run(request, route, contract, role, claims, args)
        return respond(request, route, rows, signed_in=claims is not None)

    return handle


async def run(
    request: Request,
    route: Route,
    contract: openapi.Contract,
    role: str,
    claims: dict[str, Any] | None,
    args: dict[str, Any],
) -> list[tuple[Any, ...]]:
    # Public reads (anonymous GETs) may go to a replica: a user who wrote is signed in, and
    # a signed-in user always reads the primary, so nobody misses their own writes.
    replica = request.app.state.replica_pool if claims is None and route.method == "GET" else None
    # The shared rate limit, per user or else per client address (a replica cannot write the
    # buckets: reads it serves are limited in front of it, by the balancer).
    # A class with a lease is admitted by this worker up to a bound and debited in batches
    # (api/ratelimit.py); otherwise, or past the bound, the token is taken in this transaction.
    leases: ratelimit.Leases | None = request.app.state.leases
    key = None
    rate_class = contract.rate_class(route)  # declared with the operation (sql/functions/03_contract.sql)
    if rate_class and replica is None and leases is not None:
        key = (rate_class, f"u:{claims['sub']}" if claims else f"a:{specials.client_address(request)}")
    admitted = key is not None and leases is not None and leases.admit(key)
    try:
        rows = await db.call(
            replica or request.app.state.pool,
            role,
            claims,
            call_sql(route, args),
            list(args.values()),
            read_only=route.method == "GET",
            rate=None if admitted else key,
            name=route.function,
        )
    except psycopg.Error as exc:
        if admitted and leases is not None and key is not None:
            leases.give_back(key)
        problem = from_database(exc, anonymous=claims is None)
        if problem.status == 429:  # the bucket's class (app.rate_take names its policy), else the function's own limit
            metrics.refused(
                (rate_class or "") if "RateLimit-Policy" in problem.headers else route.function.removeprefix("api.")
            )
        raise problem from exc
    if key is not None and leases is not None and not admitted:
        leases.took(key)
    return rows


def respond(request: Request, route: Route, rows: list[tuple[Any, ...]], signed_in: bool) -> Response:
    if route.status == 204:
        return Response(status_code=204)
    body = envelope(request, rows[0]) if route.page else rows[0][0]
    if body is None:
        raise Problem(404, "Not found.")
    headers = {}
    if route.etag:
        tag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        headers["ETag"] = tag
        # What a signed-in user sees may differ (own unpublished listings): never share it.
        headers["Cache-Control"] = ("private" if signed_in else "public") + ", max-age=0, must-revalidate"
        headers["Vary"] = "Authorization"
        if tag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
    return Response(body, status_code=route.status, media_type=JSON, headers=headers)


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type=JSON)


# Set in this process when SIGTERM starts the drain (api/serve.py): /readyz answers 503 so that
# the balancer stops sending requests here, while every request it still sends is served.
DRAINING = threading.Event()


async def readyz(request: Request) -> Response:
    if DRAINING.is_set():
        return problem_response(503, "Shutting down: send requests elsewhere.", headers={"Retry-After": "5"})
    try:
        rows = await db.call(request.app.state.pool, "anon", None, "select api.health()", [], True)
    except psycopg.Error:
        return problem_response(503, "The database is not reachable.", headers={"Retry-After": "5"})
    applied = set(orjson.loads(rows[0][0])["migrations"])
    expected = {p.stem for p in MIGRATIONS.glob("[0-9]*.py")}
    missing = sorted(expected - applied)
    if missing:
        return problem_response(503, "Migrations pending: " + ", ".join(missing), headers={"Retry-After": "5"})
    return Response(orjson.dumps({"status": "ready", "migrations": sorted(applied)}), media_type=JSON)


async def problem_handler(request: Request, exc: Exception) -> Response:
    rid = request.scope.get("request_id")
    if isinstance(exc, Problem):
        return problem_response(exc.status, exc.detail, exc.errors, exc.headers, rid)
    if isinstance(exc, HTTPException):
        detail = {404: "No such endpoint.", 405: "Method not allowed on this endpoint."}.get(
            exc.status_code, str(exc.detail)
        )
        return problem_response(exc.status_code, detail, headers=dict(exc.headers or {}), request_id=rid)
    logging.getLogger("nexus.errors").exception("unhandled error")
    return problem_response(500, "Internal server error.", request_id=rid)


# Secure by default, on every response. JSON and files get a CSP that allows nothing (they
# are never documents); HTML pages set their own (the dashboard: no scripts; Swagger UI: its
# own local scripts). HSTS only over TLS (the scheme as the trusted proxy reports it).
JSON_CSP = b"default-src 'none'; frame-ancestors 'none'"
SWAGGER_CSP = b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"


def security_headers(scope: Scope, present: list[tuple[bytes, bytes]], media_prefix: str) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in present}  # a page's own choice wins (the dashboard's)
    extra = [
        (name, value)
        for name, value in ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
        if name not in names
    ]
    if b"content-security-policy" not in names:
        extra.append((b"content-security-policy", SWAGGER_CSP if scope["path"].startswith("/swagger") else JSON_CSP))
    if scope["path"].startswith(media_prefix):
        # Uploads are JPEG, PNG or WebP by their bytes; they are still never rendered as a page.
        extra.append((b"content-disposition", b"attachment"))
    if scope.get("scheme") == "https":
        extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return extra


def vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response headers with "Origin" added to Vary, exactly as Starlette's CORSMiddleware adds it."""
    found = [i for i, (name, _) in enumerate(headers) if name == b"vary"]
    if not found:
        return [*headers, (b"vary", b"Origin")]
    value = b", ".join([*(headers[i][1] for i in found), b"Origin"])
    merged = [pair for i, pair in enumerate(headers) if i not in found[1:]]
    merged[found[0]] = (b"vary", value)
    return merged


class Deadlines:
    """Each running request's deadline; past it, its task is cancelled (RequestContext answers).

    One limit for all, so requests run out of time in the order they started: an insertion-ordered
    dict and one timer, re-armed at the oldest request's deadline, do what a timer per request
    would for a fifth of the cost (measured through RequestContext under uvloop: +2 us a request
    over no deadline, against +10 us with asyncio.timeout).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running: dict[asyncio.Task[Any], float] = {}  # oldest first
        self.expired: set[asyncio.Task[Any]] = set()  # cancelled by sweep, not yet answered
        self.loop: asyncio.AbstractEventLoop | None = None
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> asyncio.Task[Any]:
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        deadline = loop.time() + self.seconds
        self.running[task] = deadline
        if self.timer is None or self.loop is not loop:  # another loop: a test's new event loop
            self.loop = loop
            self.timer = loop.call_at(deadline, self.sweep, loop)
        return task

    def finish(self, task: asyncio.Task[Any]) -> bool:
        """Forget a request; whether it ran out of time (once: True, then forgotten)."""
        if self.running.pop(task, None) is not None:
            return False
        if task in self.expired:
            self.expired.remove(task)
            return True
        return False

    def sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self.loop:
            return
        self.timer = None
        now = loop.time()
        late = []
        for task, deadline in self.running.items():
            if deadline > now:
                self.timer = loop.call_at(deadline, self.sweep, loop)
                break
            late.append(task)
        for task in late:
            del self.running[task]
            self.expired.add(task)
            task.cancel()


class BodyTooLarge(BaseException):
    """Raised by RequestContext's receive past the largest body any route accepts.

    A BaseException, like cancellation, so that a route's catch-all for client mistakes (a
    multipart body that cannot be parsed: 400) does not turn it into another answer.
    """


class RequestContext:
    """Give each request an id (echoed as X-Request-ID), hold it to its limits, log one JSON line for it.

    Limits: the body may not grow past `max_body` bytes (the most any route accepts: 413), and
    the request must be done within `timeout` seconds (0: no limit), except on the `untimed`
    paths (the long-lived notification stream). Past the deadline the request's task is
    cancelled (its database call with it: psycopg cancels the query) and the client gets 408
    if its body was still arriving, else 503 with Retry-After; if the response had already
    started, the connection is closed. 503 rather than 504: this is the origin server (a
    balancer's own 504 stays unambiguous), Retry-After is defined for 503, and a statement
    timeout already answers 503 (api/errors.py).
    """

    def __init__(
        self,
        app: ASGIApp,
        access_log: bool = True,
        media_prefix: str = "/media/",
        timeout: float = 0,
        untimed: frozenset[str] = frozenset(),
        max_body: int = 0,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.media_prefix = media_prefix
        self.deadlines = Deadlines(timeout) if timeout > 0 else None
        self.untimed = untimed
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_id = b""
        cross_origin = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                raw_id = value
            elif name == b"origin":
                cross_origin = True
        incoming = raw_id.decode("latin-1")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        scope["request_id"] = rid
        request_id = logs.REQUEST_ID.set(rid)  # every log line of this request, and its transaction (api/db.py)
        started = time.perf_counter()
        status = 500
        responded = False
        received = 0  # body bytes
        awaiting_body = False  # the app reads a body that has not all arrived
        # Without an Origin header all CORS does is add "Vary: Origin" to the response: done
        # here, past it (its layer cost ~2 % of a request that reaches the database).
        app = self.app
        vary = False
        if not cross_origin and isinstance(app, CORSMiddleware):
            app, vary = app.app, True

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                headers = message.get("headers", [])
                if vary:
                    headers = vary_origin(headers)
                message["headers"] = [
                    *headers,
                    (b"x-request-id", rid.encode()),
                    *security_headers(scope, headers, self.media_prefix),
                ]
            await send(message)

        async def receive_within_limits() -> Message:
            nonlocal received, awaiting_body
            awaiting_body = True
            message = await receive()
            awaiting_body = message.get("more_body", False)  # stays True if the deadline cancels the wait
            received += len(message.get("body", b""))
            if received > self.max_body > 0:
                raise BodyTooLarge
            return message

        deadlines = self.deadlines if scope["path"] not in self.untimed else None
        task = deadlines.start() if deadlines else None
        cut = 0  # the status the request was cut short with
        try:
            await app(scope, receive_within_limits, send_with_id)
        except (asyncio.CancelledError, BodyTooLarge) as exc:
            if isinstance(exc, BodyTooLarge):
                cut = 413
            elif task is not None and deadlines is not None and deadlines.finish(task):
                task.uncancel()  # the deadline's cancellation, answered here
                cut = 408 if awaiting_body else 503
            else:
                raise  # not ours: the server shutting down, ...
            if not responded:
                vary = vary and scope["method"] != "OPTIONS"  # as CORS would: cut_short sends OPTIONS past it
                await self.cut_short(scope, receive, send_with_id, cut, rid, cross_origin)
        finally:
            if task is not None and deadlines is not None and deadlines.finish(task):
                task.uncancel()  # the app swallowed the cancellation
            if self.access_log and log.isEnabledFor(logging.INFO):
                line = {
                    "method": scope["method"],
                    "path": loggable_path(scope["path"]),  # never the query string: an access token may ride there
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                }
                if cut and status != cut:
                    line["cut"] = cut  # the response had started: the connection was closed instead
                # One JSON line (api/logs.py): these keys beside time, level, request_id, trace_id.
                log.info("%s %s %d", scope["method"], line["path"], status, extra={"fields": line})
            if status >= 500:
                record_server_error(scope, rid, status)
            logs.REQUEST_ID.reset(request_id)

    async def cut_short(
        self, scope: Scope, receive: Receive, send: Send, status: int, rid: str, cross_origin: bool
    ) -> None:
        """Answer a request cut short by its limits (problem+json, through CORS so browsers can read it)."""
        seconds = f"{self.deadlines.seconds:g}" if self.deadlines else ""
        detail = {
            408: f"The request body did not arrive within {seconds} seconds.",
            413: f"The body is larger than {self.max_body} bytes.",
            503: f"The request did not finish within {seconds} seconds.",
        }[status]
        # Whatever is left of the body stays unread: the connection cannot carry another request.
        headers = {"Connection": "close"}
        if status == 503:
            headers["Retry-After"] = "5"  # a whole deadline spent: give the service room, not an instant retry
        if cross_origin and isinstance(self.app, CORSMiddleware) and scope["method"] != "OPTIONS":
            send = functools.partial(self.app.send, send=send, request_headers=Headers(scope=scope))
        await problem_response(status, detail, headers=headers, request_id=rid)(scope, receive, send)


SECRET_PATHS = ("/api/calendars/",)  # a secret in the path (a listing's iCal export token): never logged


def loggable_path(path: str) -> str:
    """The path as logs and the admin's error list keep it: without the secret of a secret URL."""
    for prefix in SECRET_PATHS:
        if path.startswith(prefix):
            return prefix + "<secret>"
    return path


# The recordings of 5xx answers still running: the loop keeps only weak references to its tasks.
RECORDING: set[asyncio.Task[None]] = set()
RECORDING_MAX = 8  # at most this many at once per process: never a flood competing with requests for the pool


def record_server_error(scope: Scope, rid: str, status: int) -> None:
    """Write a 5xx answer to app_private.server_errors (the admin System page), after the answer and
    in a transaction of its own; it never delays or fails the request, and is only logged if it fails."""
    app = scope.get("app")
    pool = getattr(getattr(app, "state", None), "pool", None)
    if pool is None or len(RECORDING) >= RECORDING_MAX:  # an outage: its first errors say enough
        return

    async def record() -> None:
        try:
            await db.call_as(
                pool,
                "api_internal",
                "select api.server_error_record(%s, %s, %s, %s)",
                [rid, scope["method"], loggable_path(scope["path"]), status],
            )
        except Exception as exc:  # the database may be why the request failed
            logging.getLogger("nexus.errors").warning("could not record the %s of request %s: %s", status, rid, exc)

    task = asyncio.get_running_loop().create_task(record())
    RECORDING.add(task)
    task.add_done_callback(RECORDING.discard)


EVERY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def build_routes(table: list[Route]) -> list[BaseRoute]:
    """Each path with and without its trailing slash (no redirect); methods grouped per path."""
    by_path: dict[str, dict[str, Handler]] = {}
    for route in table:
        by_path.setdefault(route.path, {})[route.method] = endpoint(route)
    routes: list[BaseRoute] = []
    for path, methods in by_path.items():
        allowed = sorted(set(methods) | ({"HEAD"} if "GET" in methods else set()))
        dispatch = _dispatcher(methods, allowed)
        # A path without parameters takes every method and answers 405 itself for the others:
        # otherwise PUT /api/products/facets/ would reach PUT /api/products/{id}/ (a full match
        # beats a method mismatch) and be taken for a listing's id.
        accepted = allowed if "{" in path else list(EVERY_METHOD)
        routes.append(StarletteRoute(path, dispatch, methods=accepted))
        if path.endswith("/"):
            routes.append(StarletteRoute(path.rstrip("/"), dispatch, methods=accepted))
    return routes


def _dispatcher(methods: dict[str, Handler], allowed: list[str]) -> Handler:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        if method not in methods:
            raise HTTPException(405, headers={"Allow": ", ".join(allowed)})
        return await methods[method](request)

    return dispatch


def media_routes(cfg: Settings, media: storage.Storage) -> list[BaseRoute]:
    """Serve the photos under MEDIA_URL when it is a path on this API (else a CDN or the bucket does).

    Local storage: the folder, with ETag and Last-Modified. S3: each object read from the bucket
    (which may stay private); keys never change, so both may be cached for a year."""
    if not cfg.media_url.startswith("/"):
        return []
    prefix = cfg.media_url.rstrip("/")
    if isinstance(media, storage.LocalStorage):
        cfg.media_root.mkdir(parents=True, exist_ok=True)
        return [Mount(prefix, StaticFiles(directory=cfg.media_root), name="media")]

    async def from_bucket(request: Request) -> Response:
        key = request.path_params["key"]
        if not storage.STORED.match(key):
            raise Problem(404, "Not found.")
        try:
            data = await asyncio.to_thread(media.get, key)
        except storage.NotFound:
            raise Problem(404, "Not found.") from None
        except storage.StorageUnavailable as exc:
            log.warning("media storage unavailable: %s", exc)
            raise Problem(503, "Photos cannot be read right now.", headers={"Retry-After": "5"}) from exc
        return Response(data, media_type=storage.content_type(key), headers={"Cache-Control": storage.CACHE_CONTROL})

    return [StarletteRoute(prefix + "/{key:path}", from_bucket, methods=["GET"], name="media")]


def create_app(cfg: Settings | None = None) -> Starlette:
    cfg = cfg or default_settings

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        def pool_for(url: str) -> db.Pool:
            return db.make_pool(
                url, cfg.pool_min, cfg.pool_max, cfg.pool_timeout, cfg.media_url, cfg.db_prepare, cfg.statement_timeouts
            )

        pool = pool_for(cfg.app_url())
        await pool.open(wait=False)
        app.state.pool = pool
        replica = pool_for(cfg.replica_database_url) if cfg.replica_database_url else None
        if replica is not None:
            await replica.open(wait=False)
        app.state.replica_pool = replica
        app.state.openapi = None
        # The contract: who may call each route (its function's grants), its rate class, the
        # API document. Read now; if the database is unreachable, by the first request.
        app.state.contract = None
        with contextlib.suppress(psycopg.Error):
            app.state.contract = await openapi.read(pool)
        app.state.broker = events.Broker(cfg.listen_database_url or cfg.app_url())  # listens once a stream opens
        app.state.leases = ratelimit.Leases(cfg.rate_settle_seconds) if cfg.rate_limits else None
        settler = asyncio.create_task(app.state.leases.run(pool)) if app.state.leases else None
        try:
            yield
        finally:
            if settler is not None:
                settler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await settler
            await app.state.broker.close()
            if replica is not None:
                await replica.close()
            await pool.close()

    media = storage.from_settings(cfg)
    routes: list[BaseRoute] = [
        StarletteRoute("/healthz", healthz, methods=["GET"]),
        StarletteRoute("/readyz", readyz, methods=["GET"]),
        StarletteRoute("/openapi.json", openapi.serve, methods=["GET"]),
        StarletteRoute("/swagger/", openapi.swagger_page, methods=["GET"]),
        StarletteRoute("/swagger", openapi.swagger_page, methods=["GET"]),
        StarletteRoute("/swagger/init.js", openapi.swagger_init, methods=["GET"]),
        Mount("/swagger/assets", StaticFiles(directory=openapi.SWAGGER_ASSETS), name="swagger-assets"),
        *media_routes(cfg, media),
        *build_routes(ROUTES),
        StarletteRoute("/admin", lambda request: RedirectResponse("/admin/", status_code=308), methods=["GET"]),
        *admin.routes(),
        # Behind the token on this port only when there is no port of their own (api/metrics.py).
        *(
            [StarletteRoute("/metrics", metrics.endpoint, methods=["GET"])]
            if cfg.metrics_token and not cfg.metrics_port
            else []
        ),
    ]
    # Long-lived by design (heartbeats, ends with the access token): no total deadline.
    untimed = frozenset(p for r in ROUTES if r.special is specials.stream for p in (r.path, r.path.rstrip("/")))
    tracing.setup(cfg, "nexus-api")  # only with OTEL_EXPORTER_OTLP_ENDPOINT: else nothing of it is imported
    app = Starlette(
        routes=routes,
        middleware=[
            # A span per request (api/tracing.py), outermost: it sees the peer that connected.
            *(
                [Middleware(tracing.Requests, trusted_proxies=cfg.trusted_proxies, shown_path=loggable_path)]
                if tracing.ON
                else []
            ),
            # The client's address and scheme as a trusted proxy reports them (the rightmost
            # X-Forwarded-For hop that is not a trusted proxy; X-Forwarded-Proto), from no one else:
            # rate limits, sign-in throttling, HSTS and Secure cookies read them from the scope.
            *(
                [Middleware(ProxyHeadersMiddleware, trusted_hosts=sorted(cfg.trusted_proxies))]
                if cfg.trusted_proxies
                else []
            ),
            # Prometheus metrics (api/metrics.py), when configured: outside the rest, to time it all.
            *([Middleware(metrics.HttpMetrics)] if cfg.metrics else []),
            Middleware(
                RequestContext,
                access_log=cfg.access_log,
                media_prefix=cfg.media_url,
                timeout=cfg.request_timeout,
                untimed=untimed,
                # The most any route accepts: a JSON body, or a photo and its multipart framing
                # (api/specials.py checks each more closely); a body without Content-Length included.
                max_body=max(cfg.max_body_bytes, cfg.max_upload_bytes + 65_536),
            ),
            Middleware(
                CORSMiddleware,
                allow_origins=cfg.cors_origins,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "If-None-Match", "Idempotency-Key", "X-Request-ID"],
                expose_headers=["ETag", "X-Request-ID", "Retry-After", "Location"],
            ),
            # Public catalog reads from memory, dropped by the database's NOTIFY (api/cache.py); off at 0 bytes.
            *(
                [
                    Middleware(
                        CatalogCache,
                        conninfo=cfg.listen_database_url or cfg.app_url(),
                        max_bytes=cfg.cache_max_bytes,
                        ttl=cfg.cache_ttl,
                    )
                ]
                if cfg.cache_max_bytes > 0
                else []
            ),
        ],
        exception_handlers={Exception: problem_handler, HTTPException: problem_handler, Problem: problem_handler},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.settings = cfg
    app.state.storage = media  # photos' files (api/storage.py): uploads write, the media routes read
    return app
