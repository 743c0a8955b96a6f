"""Traces with OpenTelemetry, only when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Off (the default) nothing here imports OpenTelemetry, and the API's hot path asks one question,
`tracing.ON` (a module global): no middleware is installed, no span is made, and each request's
statement is the one it always was. On, `setup` (at the API's start, api/app.py, and the worker's)
makes one tracer provider for the process, exporting over OTLP/HTTP (protobuf) in batches from a
background thread; the SDK's own environment variables apply (OTEL_SERVICE_NAME,
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER[_ARG], OTEL_EXPORTER_OTLP_HEADERS, ..._TIMEOUT,
OTEL_BSP_*; also from `.env`). The spans:

- `Requests`, the outermost middleware: a SERVER span per request, named `GET /api/products/{id}/`
  (the route's template, once routing has found it), with the http.* attributes, the status code
  and the request id (`nexus.request_id`); a 5xx is an error. /healthz and /readyz are not traced.
- `sql_span`: a CLIENT span per SQL call inside a request or a job (api/db.py `call`, the worker's
  `sql`), named by the function it calls (`api.product_get`): never the parameters, and on failure
  only the SQLSTATE, never the message (which may quote a value).
- `gateway` and `span`: a CLIENT span per provider operation (`stripe create`, `paypal capture`,
  api/payments.py), per PayPal HTTP request (api/paypal.py) and per SMTP send (api/worker.py). An
  exception gives its type, never its text.
- `job`: a CONSUMER span per job the worker runs, a child of the SQL call that deferred it. The
  request's transaction carries its traceparent and request id as settings (nexus.traceparent,
  nexus.request_id, api/db.py CONTEXT) and app_private.defer copies them into the job's args as
  `_origin` (sql/functions/00_core.sql); `job` takes `_origin` back out before the task runs. The
  worker's own statements carry them on, so a job deferred by a job is still in the trace.

A client's `traceparent` header is believed (the request joins that trace) only from a peer in
TRUSTED_PROXIES, like X-Forwarded-For: a balancer or gateway that traces. From anyone else it is
kept as a span link, and the request starts a trace of its own: a client must not choose our trace
ids (collisions, a trace polluted by strangers) nor, with a parent-based sampler, force sampling
on every request it sends.

An endpoint that does not answer costs requests no more than one that does (no request waits for it:
spans queue, bounded, and are dropped when the queue is full); it is said once, by one warning, and
once more when it answers again.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import logs
from api.settings import Settings, config

log = logging.getLogger("nexus.tracing")

ON = False  # read on the hot path: everything below is skipped while it is False
UNTRACED = frozenset({"/healthz", "/readyz"})  # balancers' health checks: noise in every trace view
TRACEPARENT_RE = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")

# The job being run: the traceparent it came with (passed on as it is while tracing is off here).
TRACEPARENT: ContextVar[str] = ContextVar("nexus_traceparent", default="")

# Set by setup: the OpenTelemetry modules and objects (none are imported while tracing is off).
_otel: Any = None
_tracer: Any = None
_provider: Any = None


def setup(settings: Settings, service: str, exporter: Any = None) -> bool:
    """Start tracing in this process if OTEL_EXPORTER_OTLP_ENDPOINT is set (or, for tests, an
    exporter is given: spans go to it as each ends). Once per process; returns whether it is on.

    `service` is the service.name unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names it.
    """
    global ON, _otel, _tracer, _provider
    if ON and exporter is None:
        return True
    if exporter is None and not settings.otel_endpoint:
        return False
    # The SDK reads its settings from the environment; let `.env` hold them too, as every other setting.
    for key, value in config.file_values.items():
        if key.startswith("OTEL_"):
            os.environ.setdefault(key, value)
    if exporter is None and _env("OTEL_SDK_DISABLED").lower() == "true":
        return False

    from types import SimpleNamespace

    from opentelemetry import context, trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    named = _env("OTEL_SERVICE_NAME") or "service.name=" in _env("OTEL_RESOURCE_ATTRIBUTES")
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": service}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The signal's own endpoint, if set, is the SDK's to read; else the base one's /v1/traces.
        url = None if _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") else settings.otel_endpoint.rstrip("/") + "/v1/traces"
        otlp = OTLPSpanExporter(endpoint=url)
        provider.add_span_processor(BatchSpanProcessor(cast(Any, Reporting(otlp, otlp._endpoint))))
        # Their lines per failed batch and per dropped span are Reporting's one warning instead.
        logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
        logging.getLogger("opentelemetry.sdk._shared_internal").setLevel(logging.ERROR)
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if _provider is not None:
        _provider.shutdown()
    _otel = SimpleNamespace(trace=trace, context=context, w3c=TraceContextTextMapPropagator(), kind=trace.SpanKind)
    _provider = provider
    _tracer = provider.get_tracer("nexus")
    logs.current_trace_id = _current_trace_id
    ON = True
    return True


def shutdown() -> None:
    """Stop tracing in this process: spans still queued are sent first (tests; the SDK also does it at exit)."""
    global ON, _provider, _tracer
    ON = False
    logs.current_trace_id = logs._no_trace
    if _provider is not None:
        _provider.shutdown()
    _provider = _tracer = None


def force_flush() -> None:
    if _provider is not None:
        _provider.force_flush()


def _env(name: str) -> str:
    return os.environ.get(name, "")


class Reporting:
    """The OTLP exporter, saying once that its endpoint does not take spans (and once that it does again).

    The exporter itself would log every retry and every failed batch, and the batch processor every
    span it drops: those loggers are silenced in `setup`, and this says it instead.
    """

    def __init__(self, exporter: Any, endpoint: str) -> None:
        self.exporter = exporter
        self.endpoint = endpoint
        self.failing = False

    def export(self, spans: Any) -> Any:
        result = self.exporter.export(spans)
        ok = result.name == "SUCCESS"
        if not ok and not self.failing:
            self.failing = True
            log.warning("traces: %s does not take spans; they are dropped until it does", self.endpoint)
        elif ok and self.failing:
            self.failing = False
            log.warning("traces: %s takes spans again", self.endpoint)
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))


# --- what the rest of the code asks ------------------------------------------------------------


def traceparent() -> str:
    """The W3C traceparent of the current span (a job's incoming one while tracing is off), or ""."""
    if ON:
        ctx = _otel.trace.get_current_span().get_span_context()
        if ctx.is_valid:
            return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    return TRACEPARENT.get()


def _current_trace_id() -> str:
    ctx = _otel.trace.get_current_span().get_span_context()
    return f"{ctx.trace_id:032x}" if ctx.is_valid else logs.TRACE_ID.get()


_STATEMENT = re.compile(r'^\s*(\w+)\b.*?"?\b(api|app|app_private)"?\."?(\w+)"?', re.S)


@functools.lru_cache(maxsize=512)
def statement_name(statement: str) -> str:
    """A statement's span name: the first function or table it names (`api.product_get`), after its
    verb unless a select (`update app_private.webhook_events`); a bare name as it is. Never a value:
    statements hold placeholders."""
    if " " not in statement.strip():
        return statement
    m = _STATEMENT.match(statement)
    if m is None:
        return statement.split(None, 1)[0].lower()
    verb, name = m[1].lower(), f"{m[2]}.{m[3]}"
    return name if verb == "select" else f"{verb} {name}"


def _failed(span: Any, exc: BaseException) -> None:
    """Mark a span failed by the exception's type (and SQLSTATE): its text may quote a value, so never that."""
    state = getattr(exc, "sqlstate", None)
    span.set_attribute("error.type", state or type(exc).__qualname__)
    if state:
        span.set_attribute("db.response.status_code", state)
    span.set_status(_otel.trace.StatusCode.ERROR)


@contextmanager
def sql_span(statement: str) -> Iterator[str]:
    """A CLIENT span around one SQL call, inside a request's or a job's span (a background loop's
    statements make none); yields the traceparent its transaction carries (nexus.traceparent).

    The span is not made current: nothing under it makes spans, and attaching it would cost as much
    again (a started span is ~20 us of the SDK's time already)."""
    if not _otel.trace.get_current_span().is_recording():
        yield traceparent()
        return
    name = statement_name(statement)
    s = _tracer.start_span(
        name, kind=_otel.kind.CLIENT, attributes={"db.system.name": "postgresql", "db.operation.name": name}
    )
    ctx = s.get_span_context()
    try:
        yield f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    except BaseException as exc:
        _failed(s, exc)
        raise
    finally:
        s.end()


@contextmanager
def span(name: str, kind: str = "internal", attributes: dict[str, Any] | None = None) -> Iterator[Any]:
    """A span named `name` (kind: internal, client, server, consumer) while tracing is on, else nothing;
    yields the span (None while off). Not for the API's hot path: test `ON` there."""
    if not ON:
        yield None
        return
    with _tracer.start_as_current_span(
        name,
        kind=getattr(_otel.kind, kind.upper()),
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as s:
        try:
            yield s
        except BaseException as exc:
            _failed(s, exc)
            raise


class _Gateway:
    """A payment gateway whose every public call is a CLIENT span `<provider> <operation>`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name: str = inner.name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        if attr.startswith("_") or not callable(value):
            return value

        @functools.wraps(value)
        def call(*args: Any, **kwargs: Any) -> Any:
            with span(f"{self.name} {attr}", "client", {"nexus.provider": self.name, "nexus.operation": attr}):
                return value(*args, **kwargs)

        return call


def gateway(inner: Any) -> Any:
    """`inner` (api/payments.py Gateway) with a span per call."""
    return _Gateway(inner)


# --- requests ----------------------------------------------------------------------------------


class _Trusted:
    """Whether a peer is one of TRUSTED_PROXIES (addresses, networks, or names such as a Unix socket's)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.every = False
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            if entry == "*":
                self.every = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry)

    def __call__(self, client: tuple[str, int] | None) -> bool:
        if not client:
            return False
        host = client[0]
        if self.every or host in self.names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class Requests:
    """The SERVER span of each request (see the module's text). Outermost, so that the peer it sees is
    the one that connected (before the proxy headers are applied): whose traceparent to believe."""

    def __init__(
        self, app: ASGIApp, trusted_proxies: Iterable[str] = (), shown_path: Callable[[str], str] = str
    ) -> None:
        self.app = app
        self.trusted = _Trusted(trusted_proxies)
        self.shown_path = shown_path  # the path as logs show it: a secret URL's secret left out (api/app.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED:
            await self.app(scope, receive, send)
            return
        trace = _otel.trace
        method = scope["method"]
        carrier = {}
        for name, value in scope["headers"]:
            if name == b"traceparent" or name == b"tracestate":
                carrier[name.decode()] = value.decode("latin-1")
        parent = None
        links = []
        if carrier:
            incoming = _otel.w3c.extract(carrier)
            context = trace.get_current_span(incoming).get_span_context()
            if context.is_valid:
                if self.trusted(scope.get("client")):
                    parent = incoming
                else:
                    links.append(trace.Link(context, {"nexus.link": "the client's traceparent (not trusted)"}))
        s = _tracer.start_span(method, context=parent, kind=_otel.kind.SERVER, links=links)
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = _otel.context.attach(trace.set_span_in_context(s))
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            s.set_attribute("error.type", type(exc).__qualname__)
            raise
        finally:
            attributes = {
                "http.request.method": method,
                "url.path": self.shown_path(scope["path"]),  # never the query: an access token may ride there
                "url.scheme": scope.get("scheme", "http"),
                "nexus.request_id": scope.get("request_id", ""),
            }
            template = getattr(scope.get("route"), "path", None)
            if template:
                s.update_name(f"{method} {template}")
                attributes["http.route"] = template
            if status:
                attributes["http.response.status_code"] = status
            if status >= 500 or not status:
                s.set_status(trace.StatusCode.ERROR)
            s.set_attributes(attributes)  # at once: one lock, where one each costs as much again
            s.end()
            _otel.context.detach(token)


# --- jobs --------------------------------------------------------------------------------------


@contextmanager
def _job(name: str, origin: Any) -> Iterator[None]:
    origin = origin if isinstance(origin, dict) else {}
    request_id = str(origin.get("request_id") or "")[:64]
    parent = origin.get("traceparent")
    parent = parent if isinstance(parent, str) and TRACEPARENT_RE.fullmatch(parent) else ""
    set_request = logs.REQUEST_ID.set(request_id)
    set_parent = TRACEPARENT.set(parent)
    set_trace = logs.TRACE_ID.set(parent[3:35])
    try:
        if not ON:
            yield
            return
        context = _otel.w3c.extract({"traceparent": parent}) if parent else None
        attributes = {
            "messaging.system": "procrastinate",
            "messaging.operation.type": "process",
            "messaging.destination.name": name.split(".", 1)[0],  # the queue
        }
        if request_id:
            attributes["nexus.request_id"] = request_id
        with _tracer.start_as_current_span(
            name,
            context=context,
            kind=_otel.kind.CONSUMER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as s:
            try:
                yield
            except BaseException as exc:
                _failed(s, exc)
                raise
    finally:
        logs.TRACE_ID.reset(set_trace)
        TRACEPARENT.reset(set_parent)
        logs.REQUEST_ID.reset(set_request)


def job(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """The task `fn` as the worker runs it: without the `_origin` argument app_private.defer added, in
    the context of the request that deferred it (its request id in every log line, its trace)."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, _origin: Any = None, **kwargs: Any) -> Any:
            with _job(name, _origin):
                return await fn(*args, **kwargs)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, _origin: Any = None, **kwargs: Any) -> Any:
        with _job(name, _origin):
            return fn(*args, **kwargs)

    return run
