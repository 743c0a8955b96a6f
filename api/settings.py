"""Settings from the environment, then `.env` in the project folder (see .env.example)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo
from starlette.config import Config

ROOT = Path(__file__).resolve().parent.parent
config = Config(ROOT / ".env" if (ROOT / ".env").exists() else None)


# Public, so that a deployment that forgets JWT_KEYS is refused (api/serve.py), never quietly insecure.
DEV_JWT_KEY = "change-me-in-production-please-32b"
# Where `make run` serves; production must say where it is served (PUBLIC_URL, api/serve.py).
DEV_PUBLIC_URL = "http://127.0.0.1:8000"


def local_database_url() -> str:
    """The project's own cluster: a Unix socket inside the project folder (or loopback TCP with PGPORT)."""
    port = os.environ.get("PGPORT")
    if port:
        return f"postgresql://nexus@127.0.0.1:{port}/nexus"
    return f"postgresql://nexus@/nexus?host={ROOT / '.pg' / 'run'}"


def _keys(raw: str) -> dict[str, str]:
    """JWT_KEYS: "kid1:secret1,kid2:secret2" — the first signs, all verify (key rotation)."""
    keys: dict[str, str] = {}
    for part in raw.split(","):
        kid, _, secret = part.strip().partition(":")
        if kid and secret:
            keys[kid] = secret
    return keys


@dataclass(frozen=True)
class Settings:
    database_url: str = config("DATABASE_URL", default="") or local_database_url()
    authenticator_password: str = config("AUTHENTICATOR_PASSWORD", default="")
    analyst_password: str = config("ANALYST_PASSWORD", default="")
    app_database_url: str = config("APP_DATABASE_URL", default="")
    # A streaming replica, reached as authenticator: anonymous GETs (the public catalog) read it.
    replica_database_url: str = config("REPLICA_DATABASE_URL", default="")
    # LISTEN needs a session of its own: behind PgBouncer (transaction pooling) point this at PostgreSQL itself.
    listen_database_url: str = config("LISTEN_DATABASE_URL", default="")
    pool_min: int = config("DB_POOL_MIN", cast=int, default=2)
    pool_max: int = config("DB_POOL_MAX", cast=int, default=10)
    pool_timeout: float = config("DB_POOL_TIMEOUT", cast=float, default=5.0)
    # Server-side prepared statements (faster); false behind PgBouncer < 1.21 in transaction pooling.
    db_prepare: bool = config("DB_PREPARE", cast=bool, default=True)
    jwt_keys: dict[str, str] = field(default_factory=lambda: _keys(config("JWT_KEYS", default=f"dev:{DEV_JWT_KEY}")))
    jwt_issuer: str = config("JWT_ISSUER", default="nexus")
    jwt_audience: str = config("JWT_AUDIENCE", default="nexus-api")
    access_ttl: int = config("ACCESS_TOKEN_TTL", cast=int, default=900)
    max_body_bytes: int = config("MAX_BODY_BYTES", cast=int, default=1_048_576)
    max_upload_bytes: int = config("MAX_UPLOAD_BYTES", cast=int, default=5 * 1_048_576)
    max_image_pixels: int = config("MAX_IMAGE_PIXELS", cast=int, default=50_000_000)  # a 48 MP phone photo fits
    # Each request's whole time (body, handler, response; not the notification stream): past it
    # 408 if the body was still arriving, else 503 with Retry-After (api/app.py). 0: no limit.
    request_timeout: float = config("REQUEST_TIMEOUT", cast=float, default=30.0)
    # Photos' files (api/storage.py): `local` (a folder, MEDIA_ROOT) or `s3` (a bucket every instance
    # shares). MEDIA_URL is where clients fetch them: a path the API serves, or a CDN's address.
    media_storage: str = config("MEDIA_STORAGE", default="local").strip().lower()
    media_root: Path = Path(config("MEDIA_ROOT", default=str(ROOT / "media")))
    media_url: str = config("MEDIA_URL", default="/media/")
    s3_bucket: str = config("S3_BUCKET", default="")
    s3_endpoint_url: str = config("S3_ENDPOINT_URL", default="")  # empty for AWS itself
    s3_region: str = config("S3_REGION", default="")
    s3_timeout: float = config("S3_TIMEOUT", cast=float, default=10.0)  # seconds per call to the bucket
    # Closed unless configured: the origins of your web apps, comma-separated ("*" only on a laptop).
    cors_origins: list[str] = field(
        default_factory=lambda: [o.strip() for o in config("CORS_ORIGINS", default="").split(",") if o.strip()]
    )
    # statement_timeout per client role, set in each request's transaction (api/db.py).
    statement_timeouts: dict[str, str] = field(
        default_factory=lambda: dict(
            pair.strip().split("=", 1)
            for pair in config(
                "STATEMENT_TIMEOUTS", default="anon=3s,guest=5s,host=5s,admin=30s,api_internal=5s"
            ).split(",")
            if "=" in pair
        )
    )
    log_level: str = config("LOG_LEVEL", default="info")
    # Shared rate limits per route class and caller (app_private.rate_limits holds the numbers).
    rate_limits: bool = config("RATE_LIMITS", cast=bool, default=True)
    # How often each worker debits what it admitted under its leases (api/ratelimit.py).
    rate_settle_seconds: float = config("RATE_SETTLE_SECONDS", cast=float, default=0.2)
    # Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: the balancer's addresses or
    # networks (10.0.0.5, 10.0.0.0/8); nobody else's are, and `Forwarded` is never read (api/app.py).
    trusted_proxies: frozenset[str] = field(
        default_factory=lambda: frozenset(
            a.strip() for a in config("TRUSTED_PROXIES", default="").split(",") if a.strip()
        )
    )
    access_log: bool = config("ACCESS_LOG", cast=bool, default=True)  # one JSON line per request (nexus.access)
    # Prometheus metrics (api/metrics.py), off unless one of these is set: METRICS_PORT serves them on a
    # port of their own (api.serve, on METRICS_HOST: loopback unless told); METRICS_TOKEN alone serves
    # /metrics on the API's port to `Authorization: Bearer <token>` (and guards METRICS_PORT too).
    # WORKER_METRICS_PORT: the worker's, with what the database counts (app_private.metrics()).
    metrics_port: int = config("METRICS_PORT", cast=int, default=0)
    metrics_host: str = config("METRICS_HOST", default="127.0.0.1")
    metrics_token: str = config("METRICS_TOKEN", default="")
    worker_metrics_port: int = config("WORKER_METRICS_PORT", cast=int, default=0)
    # Traces (api/tracing.py): on only when set, e.g. http://otel-collector:4318 (OTLP over HTTP); the SDK's
    # other OTEL_* variables (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, ...) are read from the environment or .env.
    otel_endpoint: str = config("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
    # The in-process cache of public catalog reads (api/cache.py), invalidated by PostgreSQL's NOTIFY:
    # at most this many bytes of answers per process (0: off), each kept at most CACHE_TTL_SECONDS.
    cache_max_bytes: int = config("CACHE_MAX_BYTES", cast=int, default=64 * 1024 * 1024)
    cache_ttl: float = config("CACHE_TTL_SECONDS", cast=float, default=60.0)
    # SIGTERM: /readyz answers 503 for this long while requests are still served (the balancer's
    # health check notices), then the graceful shutdown finishes in-flight requests (api/serve.py).
    drain_seconds: float = config("DRAIN_SECONDS", cast=float, default=5.0)
    graceful_shutdown_seconds: int = config("GRACEFUL_SHUTDOWN_SECONDS", cast=int, default=20)
    # production refuses the development defaults (api/serve.py); make run sets development
    nexus_env: str = config("NEXUS_ENV", default="production")
    # The API's own address as clients reach it (https://api.example.com): the absolute links it gives
    # (pagination's next and previous) start with it, never with a client's Host header.
    public_url: str = config("PUBLIC_URL", default="").rstrip("/")
    # Where the guests' and hosts' web app lives (links sent out: payout onboarding, emails).
    frontend_url: str = config("FRONTEND_URL", default="http://127.0.0.1:8000")
    # Payment providers: one without its secret key is not offered (503).
    stripe_secret_key: str = config("STRIPE_SECRET_KEY", default="")
    stripe_webhook_secret: str = config("STRIPE_WEBHOOK_SECRET", default="")
    stripe_api_base: str = config("STRIPE_API_BASE", default="https://api.stripe.com")
    # Email through an SMTP relay (SendGrid, Mailgun, ...); without SMTP_HOST emails stay in the
    # local outbox (app_private.email_outbox, `make outbox`).
    smtp_host: str = config("SMTP_HOST", default="")
    smtp_port: int = config("SMTP_PORT", cast=int, default=587)
    smtp_user: str = config("SMTP_USER", default="")
    smtp_password: str = config("SMTP_PASSWORD", default="")
    smtp_starttls: bool = config("SMTP_STARTTLS", cast=bool, default=True)
    email_from: str = config("EMAIL_FROM", default="nexus@localhost")
    sse_heartbeat_seconds: float = config("SSE_HEARTBEAT_SECONDS", cast=float, default=15.0)
    # Live notification streams one process holds at once: per user and in all (past either: 429).
    streams_per_user: int = config("STREAMS_PER_USER", cast=int, default=5)
    streams_max: int = config("STREAMS_MAX", cast=int, default=1000)
    # Daily reference exchange rates (the worker's hourly rates.fetch, api/rates.py); empty: rates only by hand.
    exchange_rates_url: str = config(
        "EXCHANGE_RATES_URL", default="https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
    )
    # Written into app_private.payment_settings by `make migrate` when set (the database keeps the fee).
    platform_fee_percent: str = config("PLATFORM_FEE_PERCENT", default="")
    paypal_client_id: str = config("PAYPAL_CLIENT_ID", default="")
    paypal_client_secret: str = config("PAYPAL_CLIENT_SECRET", default="")
    paypal_webhook_id: str = config("PAYPAL_WEBHOOK_ID", default="")
    paypal_api_base: str = config("PAYPAL_API_BASE", default="https://api-m.sandbox.paypal.com")

    # Calendar sync (api/calendars.py): how the worker fetches the external iCal feeds hosts add.
    # Addresses or networks a feed may reach although not public (loopback, private, link-local):
    # empty in production (SSRF); e.g. 127.0.0.1 for a calendar served on this machine in development.
    ical_allow_private: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            a.strip() for a in config("ICAL_ALLOW_PRIVATE", default="").split(",") if a.strip()
        )
    )
    ical_connect_timeout: float = config("ICAL_CONNECT_TIMEOUT", cast=float, default=5.0)  # seconds to connect
    ical_fetch_timeout: float = config("ICAL_FETCH_TIMEOUT", cast=float, default=30.0)  # seconds for a whole fetch
    ical_max_bytes: int = config("ICAL_MAX_BYTES", cast=int, default=2 * 1_048_576)  # a feed's largest body

    def __post_init__(self) -> None:
        # app.photo_json writes MEDIA_URL into JSON text as it is: a URL has no quote, backslash or space.
        if any(c in self.media_url for c in '"\\ <>') or not self.media_url:
            raise ValueError(f"MEDIA_URL is not a URL or path: {self.media_url!r}")
        for network in self.ical_allow_private:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"ICAL_ALLOW_PRIVATE: {network!r} is not an address or network") from exc

    @property
    def metrics(self) -> bool:
        """Whether this API serves metrics (on METRICS_PORT, or /metrics behind METRICS_TOKEN)."""
        return bool(self.metrics_port or self.metrics_token)

    def base_url(self) -> str:
        """The API's public address without a trailing slash: PUBLIC_URL, else `make run`'s."""
        return self.public_url or DEV_PUBLIC_URL

    def app_url(self) -> str:
        """How the API connects: APP_DATABASE_URL, else DATABASE_URL as the authenticator role."""
        if self.app_database_url:
            return self.app_database_url
        params = conninfo_to_dict(self.database_url)
        params["user"] = "authenticator"
        params.pop("password", None)
        if self.authenticator_password:
            params["password"] = self.authenticator_password
        return make_conninfo("", **params)


settings = Settings()
