"""The production entry point: `python -m api.serve` (`make serve`), N uvicorn workers on one port.

    python -m api.serve [--host 0.0.0.0] [--port 8000] [--workers N]

- Workers default to the machine's cores (WEB_CONCURRENCY overrides, as on Heroku).
- uvicorn's multi-worker listening socket is re-labelled as TCP so accepted connections get
  TCP_NODELAY (without it, Nagle's algorithm held each keep-alive response ~40 ms:
  /healthz fell from ~3,000 to ~170 req/s here; upstream Kludex/uvicorn#3149).
- SIGTERM (or Ctrl-C) drains: the workers stop accepting, finish in-flight requests for up
  to GRACEFUL_SHUTDOWN_SECONDS, then the app's shutdown closes its pool and listener.
- It refuses to start with settings only fit for a laptop (the public development JWT key,
  an empty authenticator password, CORS open to every origin) unless NEXUS_ENV=development,
  which `make run` sets.
- ACCESS_LOG=false silences the per-request JSON line (nexus.access); LOG_LEVEL sets the rest.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import uvicorn
from uvicorn.config import Config

from api.settings import DEV_JWT_KEY, Settings, settings

_bind_socket = Config.bind_socket


def bind_socket(self: Config) -> socket.socket:
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    return sock


Config.bind_socket = bind_socket  # type: ignore[method-assign]


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
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m api.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "0")) or os.cpu_count() or 1
    )
    args = parser.parse_args(argv)
    problems = unsafe(settings)
    if problems and settings.nexus_env != "development":
        print("refusing to start (set NEXUS_ENV=development to run anyway on a laptop):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(2)
    uvicorn.run(
        "api.main:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        access_log=False,  # the app writes its own JSON line per request (ACCESS_LOG)
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
    )


if __name__ == "__main__":
    main()
