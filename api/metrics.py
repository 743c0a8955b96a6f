"""Prometheus metrics: what the API's processes measure, and what the database counts.

Off unless METRICS_PORT or METRICS_TOKEN is set: no layer, no route, prometheus_client not even
imported. On, every API process measures (`Series`) and one endpoint serves them all:

- METRICS_PORT: `python -m api.serve` listens on METRICS_HOST:METRICS_PORT (loopback unless told)
  and serves /metrics from its supervisor process, never on the API's own port;
- METRICS_TOKEN alone: /metrics on the API's port, to `Authorization: Bearer <token>` only (401
  otherwise); with METRICS_PORT too, the port asks for the token as well.

N uvicorn workers are one service: prometheus_client's multiprocess mode. Each process writes its
series to memory-mapped files in PROMETHEUS_MULTIPROC_DIR (api.serve empties the folder set there
at start, or makes a temporary one) and whoever serves /metrics adds them up: counters and
histograms summed over every process that ever ran, gauges over the live ones (a worker that died
is forgotten at the next scrape). Served any other way (`uvicorn api.main:app`, tests), one process
keeps them in memory.

What a request costs (`HttpMetrics`): one histogram observation, labelled by the route's template
(never the raw path: /api/products/{id}/), the method and the status class (2xx ... 5xx). The
rest is read once a second (`HttpMetrics.sample`) from what the process already counts: requests
in flight, the pools' get_stats(), the catalog cache's counters (api/cache.py), the notification
streams (api/events.py). Statement timeouts (SQLSTATE 57014, api/errors.py) and rate-limit
refusals (api/app.py, api/specials.py) are counted where they happen.

The database's own figures (the job queue, dead letters, webhook events, payouts, replication)
are SQL's: app_private.metrics() says what is counted and returns it as JSON, which
`DatabaseCollector` turns into series at each scrape of the worker's endpoint
(WORKER_METRICS_PORT, `python -m api.worker`): one query per scrape, by one process, as the
owner. docs/operations.md lists every series.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric
    from starlette.requests import Request
    from starlette.responses import Response

    from api.cache import CatalogCache
    from api.settings import Settings

log = logging.getLogger("nexus.metrics")

# Seconds. Most answers take 1-20 ms; a statement timeout is 3-30 s (STATEMENT_TIMEOUTS).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other: OTHER
STATUS = ("5xx", "1xx", "2xx", "3xx", "4xx", "5xx")  # by status // 100; 0 (no answer sent): 5xx
SAMPLE_SECONDS = 1.0
UNMATCHED = "(unmatched)"  # no route: a 404 for a path the API does not have (one series, whatever the path)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Series:
    """The series an API process measures (one set per process: `enable`)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry(auto_describe=False)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            # Summed over the live processes (a stopped worker's part is dropped).
            return Gauge(name, doc, labels, registry=r, multiprocess_mode="livesum")

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=r)

        self.requests = Histogram(
            "nexus_http_request_duration_seconds",
            "Requests by route template, method and status class, and how long each took (seconds).",
            ("route", "method", "status"),
            buckets=BUCKETS,
            registry=r,
        )
        self.in_flight = gauge("nexus_http_requests_in_flight", "Requests being answered now.")
        self.pool_connections = gauge(
            "nexus_db_pool_connections",
            "The API's database connections by pool (primary, replica) and state (in_use, idle).",
            ("pool", "state"),
        )
        self.pool_max = gauge("nexus_db_pool_max_connections", "The most connections the pools may open.", ("pool",))
        self.pool_waiting = gauge("nexus_db_pool_waiting", "Requests waiting for a database connection now.", ("pool",))
        self.pool_timeouts = counter(
            "nexus_db_pool_timeouts", "Requests that got no database connection within DB_POOL_TIMEOUT.", ("pool",)
        )
        self.statement_timeouts = counter(
            "nexus_db_statement_timeouts", "Statements cancelled by their statement_timeout (SQLSTATE 57014; 503)."
        )
        self.cache_requests = counter(
            "nexus_catalog_cache_requests",
            "Cacheable catalog reads by result (hit: from memory; miss: from the database).",
            ("result",),
        )
        self.cache_bytes = gauge("nexus_catalog_cache_bytes", "Bytes of answers in the catalog caches.")
        self.cache_entries = gauge("nexus_catalog_cache_entries", "Answers in the catalog caches.")
        self.rate_limited = counter(
            "nexus_rate_limited",
            "Requests refused with 429, by limit: a rate class (read, write, signup, upload, payment, message),"
            " sign_in (throttling), streams (live streams), or the function that refused (message_send, ...).",
            ("limit",),
        )
        self.streams = gauge("nexus_notification_streams", "Live notification streams open.")


current: Series | None = None


def enable() -> Series:
    """This process's series, made on first use (PROMETHEUS_MULTIPROC_DIR must be set by then, if at all)."""
    global current
    if current is None:
        current = Series()
    return current


# --- counted where they happen (nothing when metrics are off) ------------------------------------


def statement_timeout() -> None:
    if current is not None:
        current.statement_timeouts.inc()


def refused(limit: str) -> None:
    """A request refused with 429 by `limit` (see Series.rate_limited)."""
    if current is not None:
        current.rate_limited.labels(limit).inc()


# --- the layer ----------------------------------------------------------------------------------


@functools.cache
def templates() -> frozenset[str]:
    from api.routes import ROUTES  # not at import: api.routes imports the modules that import this one

    return frozenset(r.path for r in ROUTES)


def route_label(route: Any) -> str:
    """The route's template as the route table writes it (with its trailing slash), or UNMATCHED."""
    if route is None:
        return UNMATCHED
    path = str(getattr(route, "path", UNMATCHED))
    if isinstance(route, Mount):
        return path + "/{path}"
    if not path.endswith("/") and path + "/" in templates():  # served with and without the slash: one series
        return path + "/"
    return path


class HttpMetrics:
    """Time each request into Series.requests; once a second, sample what the process counts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.series = enable()
        self.active = 0  # requests in flight in this process
        # (id(route), method, status // 100) -> the histogram's child: one dict lookup a request. The
        # routes are the app's own, alive as long as this layer, so their ids stay theirs.
        self.children: dict[tuple[int, str, int], Any] = {}
        self.sampler: asyncio.Task[None] | None = None
        self.seen: dict[str, int] = {}  # counters last read from the pools and the cache
        self.cache: CatalogCache | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                receive = self._on_lifespan(scope, receive)
            await self.app(scope, receive, send)
            return
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.active += 1
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            self.active -= 1
            # The router put the matched route in the scope (a catalog cache hit: the cache did).
            route = scope.get("route")
            key = (id(route), scope["method"], status // 100)
            child = self.children.get(key)
            if child is None:
                child = self._child(route, scope["method"], status)
            child.observe(elapsed)

    def _child(self, route: Any, method: str, status: int) -> Any:
        known = method in METHODS
        child = self.series.requests.labels(
            route_label(route), method if known else "OTHER", STATUS[status // 100 if 100 <= status < 600 else 0]
        )
        if known:  # a made-up method is not remembered: the dict stays as small as the route table
            self.children[(id(route), method, status // 100)] = child
        return child

    def _on_lifespan(self, scope: Scope, receive: Receive) -> Receive:
        app = scope.get("app")

        async def watch() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.sampler = asyncio.create_task(self._sample_forever(app), name="metrics-sample")
            elif message["type"] == "lifespan.shutdown":
                if self.sampler is not None:
                    self.sampler.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self.sampler
                    self.sampler = None
                self.sample(app)  # the last second's counts
                forget_process(os.getpid())
            return message

        return watch

    async def _sample_forever(self, app: Any) -> None:
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            try:
                self.sample(app)
            except Exception:  # never the reason a worker stops serving
                log.exception("metrics: sampling failed")

    def sample(self, app: Any) -> None:
        """Copy what this process counts into its series (gauges set; counters by what they grew)."""
        s = self.series
        s.in_flight.set(self.active)
        state = getattr(app, "state", None)
        for name, attribute in (("primary", "pool"), ("replica", "replica_pool")):
            pool = getattr(state, attribute, None)
            if pool is None:
                continue
            stats = pool.get_stats()
            size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
            s.pool_connections.labels(name, "in_use").set(size - available)
            s.pool_connections.labels(name, "idle").set(available)
            s.pool_max.labels(name).set(stats.get("pool_max", 0))
            s.pool_waiting.labels(name).set(stats.get("requests_waiting", 0))
            self._grow(s.pool_timeouts.labels(name), f"pool:{name}", stats.get("requests_errors", 0))
        broker = getattr(state, "broker", None)
        if broker is not None:
            s.streams.set(broker.count)
        cache = self.cache or self._find_cache(app)
        if cache is not None:
            self._grow(s.cache_requests.labels("hit"), "cache:hit", cache.cache.hits)
            self._grow(s.cache_requests.labels("miss"), "cache:miss", cache.cache.misses)
            s.cache_bytes.set(cache.cache.size)
            s.cache_entries.set(len(cache.cache.entries))

    def _grow(self, counter: Any, key: str, total: int) -> None:
        grown = total - self.seen.get(key, 0)
        if grown > 0:
            counter.inc(grown)
        self.seen[key] = total

    def _find_cache(self, app: Any) -> CatalogCache | None:
        """The app's catalog cache layer (there is none with CACHE_MAX_BYTES=0)."""
        from api.cache import CatalogCache

        layer = getattr(app, "middleware_stack", None)
        for _ in range(32):
            if layer is None or isinstance(layer, CatalogCache):
                break
            layer = getattr(layer, "app", None)
        self.cache = layer if isinstance(layer, CatalogCache) else None
        return self.cache


# --- serving -------------------------------------------------------------------------------------


def authorized(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries the token (any, when there is none to carry)."""
    if not token:
        return True
    return header is not None and hmac.compare_digest(header.encode(), f"Bearer {token}".encode())


def prepare_processes() -> str:
    """PROMETHEUS_MULTIPROC_DIR for this process and the workers it starts: the folder set there,
    emptied (what an earlier run left would be added to this run's), else a new temporary one
    removed at exit. Call before anything imports prometheus_client."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()
    else:
        folder = tempfile.mkdtemp(prefix="nexus-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        import atexit

        atexit.register(shutil.rmtree, folder, True)
    return folder


def forget_process(pid: int) -> None:
    """Drop a process's live gauges (it stopped); its counters stay in the sums."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _forget_dead(folder: str) -> None:
    """Forget the live gauges of processes that are gone without saying so (a killed worker)."""
    for path in Path(folder).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            forget_process(pid)
        except PermissionError:  # alive, someone else's
            pass


def exposition(registry: CollectorRegistry | None = None) -> bytes:
    """The text exposition: `registry`'s series, else every process's (multiprocess mode) or this one's."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    if registry is None:
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            _forget_dead(folder)
            registry = CollectorRegistry(auto_describe=False)
            multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        else:
            registry = enable().registry
    return generate_latest(registry)


async def endpoint(request: Request) -> Response:
    """GET /metrics on the API's port (METRICS_TOKEN set, no METRICS_PORT): 401 without the token."""
    from starlette.responses import Response

    from api.errors import problem_response

    cfg: Settings = request.app.state.settings
    if not authorized(request.headers.get("authorization"), cfg.metrics_token):
        return problem_response(401, "Metrics need the metrics token (METRICS_TOKEN) as a Bearer token.")
    body = await asyncio.to_thread(exposition)  # reads every process's files: off the event loop
    return Response(body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


class _Handler(BaseHTTPRequestHandler):
    token = ""
    collect: Callable[[], bytes] = staticmethod(exposition)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/metrics", "/"):
            self._answer(404, b"Not found: /metrics\n")
        elif not authorized(self.headers.get("Authorization"), self.token):
            self._answer(401, b"Metrics need the metrics token (METRICS_TOKEN) as a Bearer token.\n")
        else:
            self._answer(200, type(self).collect(), CONTENT_TYPE)

    def _answer(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="metrics"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # one line per scrape is noise
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def listen(host: str, port: int, token: str, collect: Callable[[], bytes] = exposition) -> ThreadingHTTPServer:
    """Serve GET /metrics on host:port from a thread of this process (until it exits); `collect` writes it."""
    handler = type("MetricsHandler", (_Handler,), {"token": token, "collect": staticmethod(collect)})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server: ThreadingHTTPServer = type("MetricsServer", (_Server,), {"address_family": family})((host, port), handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


# --- what the database counts (the worker's endpoint) --------------------------------------------


class DatabaseCollector:
    """The series app_private.metrics() returns, read at each scrape on one connection of its own.

    SQL says what is counted: a JSON array of {name, type (gauge | counter), help, samples:
    [{labels, value}]}; a counter's name gets its _total here. When the database does not answer
    (within 5 s), only nexus_database_metrics_up 0 is served, and a warning is logged once.
    """

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.conn: psycopg.Connection[Any] | None = None
        self.lock = threading.Lock()  # one scrape at a time on the one connection
        self.up = True

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def query(self) -> list[dict[str, Any]]:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(
                self.conninfo,
                autocommit=True,
                connect_timeout=5,
                application_name="nexus-metrics",
                options="-c statement_timeout=5000",
            )
        row = self.conn.execute("select app_private.metrics()").fetchone()
        return list(row[0]) if row else []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily, Metric

        started = time.perf_counter()
        with self.lock:
            try:
                families = self.query()
            except (psycopg.Error, OSError) as exc:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                families = []
                log.log(logging.WARNING if self.up else logging.DEBUG, "metrics: the database did not answer: %s", exc)
                self.up = False
            else:
                self.up = True
        for family in families:
            name, kind = family["name"], family["type"]
            metric = Metric(name, family["help"], kind)
            for sample in family["samples"]:
                if sample["value"] is not None:
                    metric.add_sample(name + ("_total" if kind == "counter" else ""), sample["labels"], sample["value"])
            yield metric
        yield GaugeMetricFamily(
            "nexus_database_metrics_up", "Whether app_private.metrics() answered at this scrape.", value=int(self.up)
        )
        yield GaugeMetricFamily(
            "nexus_database_metrics_seconds",
            "How long app_private.metrics() took at this scrape.",
            value=time.perf_counter() - started,
        )


def serve_worker(cfg: Settings) -> ThreadingHTTPServer | None:
    """The worker's endpoint on METRICS_HOST:WORKER_METRICS_PORT (None when unset): the database's series."""
    if not cfg.worker_metrics_port:
        return None
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(cfg.database_url))
    return listen(cfg.metrics_host, cfg.worker_metrics_port, cfg.metrics_token, lambda: exposition(registry))
