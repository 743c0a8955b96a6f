"""The production entry point: `python -m api.serve` (`make serve`), N uvicorn workers on one port.

    python -m api.serve [--host 0.0.0.0] [--port 8000] [--workers N]

- Workers default to the machine's cores (WEB_CONCURRENCY overrides, as on Heroku).
- uvicorn's multi-worker listening socket is re-labelled as TCP so accepted connections get
  TCP_NODELAY (without it, Nagle's algorithm held each keep-alive response ~40 ms:
  /healthz fell from ~3,000 to ~170 req/s here; upstream Kludex/uvicorn#3149).
- SIGTERM drains: /readyz answers 503 for DRAIN_SECONDS while every request is still served
  (the balancer's health check notices and sends no more), then the workers stop accepting,
  finish in-flight requests for up to GRACEFUL_SHUTDOWN_SECONDS, the app's shutdown closes its
  pool and listener, and the process exits 0. With several workers the supervisor forwards
  SIGTERM to each (uvicorn's Multiprocess.terminate_all) and each drains; a SIGTERM that
  reaches a worker twice (from the supervisor and from a process manager that signals the
  whole group, as systemd does) is one drain. SIGINT (Ctrl-C, or a second signal from
  someone in a hurry) skips the drain; another SIGINT stops without waiting.
- It refuses to start with settings only fit for a laptop (the public development JWT key,
  an empty authenticator password, CORS open to every origin, no PUBLIC_URL, every proxy
  trusted) unless NEXUS_ENV=development,
  which `make run` sets.
- A request whose head (request line and headers) has not all arrived HEADER_TIMEOUT_SECONDS
  (10) after the connection or its first byte gets 408 and the connection is closed (slowloris);
  the body has REQUEST_TIMEOUT, an idle keep-alive connection uvicorn's own 5 s.
- ACCESS_LOG=false silences the per-request JSON line (nexus.access); LOG_LEVEL sets the rest.
- Metrics (api/metrics.py), with METRICS_PORT or METRICS_TOKEN: the workers write theirs to
  PROMETHEUS_MULTIPROC_DIR (emptied here, or a temporary folder), and this process serves all of
  them on METRICS_HOST:METRICS_PORT. It refuses a METRICS_HOST other than loopback without a
  METRICS_TOKEN (metrics are never public).

uvicorn has no public hooks for TCP_NODELAY, the drain and the head timeout: api/uvicorn_ext.py
(and only it) extends uvicorn's classes for them. Should a uvicorn release move what it extends,
this falls back to uvicorn.run, serving without the three and logging so. A one-write
response that replaced uvicorn's request cycle was dropped: it bought nothing measurable on
detail (make bench, interleaved: 2,302 req/s with it, 2,334 without).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from types import ModuleType

import uvicorn
from uvicorn.config import STARTUP_FAILURE, Config

from api import logs, metrics
from api.settings import DEV_JWT_KEY, Settings, settings

log = logging.getLogger("uvicorn.error")

ext: ModuleType | None
try:
    from api import uvicorn_ext as ext
except (ImportError, AttributeError) as exc:  # a uvicorn that moved what it extends: uvicorn.run
    ext, EXT_MISSING = None, f"{type(exc).__name__}: {exc}"


def unsafe(cfg: Settings) -> list[str]:
    """What makes these settings unfit for production (empty when they are fine)."""
    problems = []
    if DEV_JWT_KEY in cfg.jwt_keys.values():
        problems.append("JWT_KEYS still holds the public development key: set your own (kid:secret, 32+ bytes)")
    if any(len(secret.encode()) < 32 for secret in cfg.jwt_keys.values()):
        problems.append("a JWT key is shorter than 32 bytes")
    if not cfg.authenticator_password and not cfg.app_database_url:
        problems.append("AUTHENTICATOR_PASSWORD is empty: the API's database role would have no password")
    if "*" in cfg.cors_origins:
        problems.append("CORS_ORIGINS is '*': name the origins of your web apps")
    if cfg.access_ttl > 86400:
        problems.append(
            "ACCESS_TOKEN_TTL is over a day: ended sessions are remembered for a day (app.users.ended_sessions)"
        )
    if not cfg.public_url:
        problems.append("PUBLIC_URL is not set: say where clients reach the API (https://api.example.com)")
    if "*" in cfg.trusted_proxies:
        problems.append("TRUSTED_PROXIES is '*': name the proxies' addresses or networks (CIDR)")
    if cfg.metrics_port and not cfg.metrics_token and not is_loopback(cfg.metrics_host):
        problems.append("METRICS_HOST is not loopback and METRICS_TOKEN is empty: metrics would be public")
    return problems


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(config: Config) -> None:
    """uvicorn.run, with the draining Server (in each worker when there are several)."""
    if ext is None:
        log.warning(
            "uvicorn's internals that api/uvicorn_ext.py extends are gone (%s): serving with uvicorn.run,"
            " without the drain, the request-head timeout and TCP_NODELAY on several workers",
            EXT_MISSING,
        )
        uvicorn.run(
            "api.main:app",
            host=config.host,
            port=config.port,
            workers=config.workers,
            proxy_headers=False,
            access_log=False,
            log_config=None,
            log_level=config.log_level,
            timeout_graceful_shutdown=config.timeout_graceful_shutdown,
        )
        return
    if config.workers > 1:
        sock = config.bind_socket()
        try:
            ext.supervisor(config, sock).run()
        except KeyboardInterrupt:
            pass
        return
    server = ext.Server(config, settings.drain_seconds)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "0")) or os.cpu_count() or 1
    )
    args = parser.parse_args(argv)
    logs.setup(settings.log_level)  # JSON lines (api/logs.py); each worker sets it up again (api/main.py)
    problems = unsafe(settings)
    if problems and settings.nexus_env != "development":
        print("refusing to start (set NEXUS_ENV=development to run anyway on a laptop):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(2)
    if ext is not None:
        ext.Protocol.header_timeout = float(os.environ.get("HEADER_TIMEOUT_SECONDS", "10"))
    config = Config(
        "api.main:app",
        http=ext.Protocol if ext is not None else "auto",
        host=args.host,
        port=args.port,
        workers=args.workers,
        # Proxy headers are the app's (TRUSTED_PROXIES, api/app.py) in every serving mode: uvicorn's
        # own would trust X-Forwarded-For from any loopback peer before the app's rule ran.
        proxy_headers=False,
        access_log=False,  # the app writes its own JSON line per request (ACCESS_LOG)
        log_config=None,  # uvicorn's loggers write through the root's JSON handler (api/logs.py)
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
    )
    if settings.metrics:
        metrics.prepare_processes()  # before any worker starts: they inherit PROMETHEUS_MULTIPROC_DIR
    if settings.metrics_port:
        metrics.listen(settings.metrics_host, settings.metrics_port, settings.metrics_token)
        log.info(
            "Metrics on http://%s:%d/metrics%s",
            settings.metrics_host,
            settings.metrics_port,
            " (Bearer METRICS_TOKEN)" if settings.metrics_token else "",
        )
    serve(config)


if __name__ == "__main__":
    main()
