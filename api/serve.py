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

uvicorn has no public hooks for the last four points, so this module (and only it) extends
uvicorn's classes: Config.bind_socket (TCP_NODELAY), httptools_impl.HttpToolsProtocol (the
head timeout), uvicorn.Server.handle_exit/on_tick and supervisors.multiprocess (the drain).
They buy behaviour, not speed, and uvicorn stays pinned to a minor for them (pyproject.toml).
A one-write response that replaced uvicorn's request cycle was dropped: it bought nothing
measurable on detail (make bench, interleaved: 2,302 req/s with it, 2,334 without).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import time
from http import HTTPStatus
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.protocols.http import httptools_impl
from uvicorn.supervisors import multiprocess

from api.app import DRAINING
from api.errors import problem_response
from api.settings import DEV_JWT_KEY, Settings, settings

log = logging.getLogger("uvicorn.error")

_bind_socket = Config.bind_socket


def bind_socket(self: Config) -> socket.socket:
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    return sock


Config.bind_socket = bind_socket  # type: ignore[method-assign]


def raw_problem(status: int, detail: str) -> bytes:
    """A whole HTTP/1.1 problem response that closes the connection, for the server's own refusals."""
    response = problem_response(status, detail, headers={"Connection": "close"})
    head = b"".join(b"%s: %s\r\n" % pair for pair in response.raw_headers)
    return b"HTTP/1.1 %d %s\r\n%s\r\n%s" % (status, HTTPStatus(status).phrase.encode(), head, response.body)


HEAD_TOO_SLOW = raw_problem(408, "The request's headers did not arrive in time.")


class Protocol(httptools_impl.HttpToolsProtocol):
    """uvicorn's HTTP protocol, closing a connection whose request head (request line and headers)
    has not all arrived within `header_timeout` seconds of the connection or of the request's first
    byte: 408, then closed. uvicorn times bodies out through the app (REQUEST_TIMEOUT) and idle
    keep-alive connections, but not a head sent one header at a time (slowloris)."""

    header_timeout: float = 10.0
    head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.arm_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.head_timer is None:
            self.arm_head_timer()

    def on_headers_complete(self) -> None:
        self.disarm_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.disarm_head_timer()  # uvicorn's keep-alive timeout governs the wait for the next request

    def arm_head_timer(self) -> None:
        if self.header_timeout > 0:
            self.head_timer = self.loop.call_later(self.header_timeout, self.head_timed_out)

    def disarm_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def head_timed_out(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing():
            self.transport.write(HEAD_TOO_SLOW)
            self.transport.close()


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
    return problems


class Server(uvicorn.Server):
    """uvicorn's server with a drain before its graceful shutdown: on SIGTERM /readyz turns 503
    (api.app.DRAINING) and requests are still served for `drain_seconds`; then uvicorn's own
    shutdown. The signal is not raised again once served (uvicorn would, and SIGTERM's default
    action would end the process with -15 instead of 0)."""

    def __init__(self, config: Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)  # SIGINT: shut down now; another: without waiting
        elif self.drain_until is None and not self.should_exit:
            DRAINING.set()
            self.drain_until = time.monotonic() + self.drain_seconds
            log.info("SIGTERM: /readyz answers 503; serving for %gs more, then shutting down", self.drain_seconds)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_until is not None and time.monotonic() >= self.drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


class Worker(multiprocess.Process):
    """A worker process of the supervisor, serving with the draining Server."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = Server(self.config, settings.drain_seconds)
        return self._server


class Supervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor; once it has told the workers to stop, it lets go of the listening
    socket, so that the port refuses connections as soon as the last worker stops accepting
    (rather than queueing them until the supervisor exits)."""

    def terminate_all(self) -> None:
        super().terminate_all()
        for sock in self.sockets:
            sock.close()


def serve(config: Config) -> None:
    """uvicorn.run, with the draining Server (in each worker when there are several)."""
    if config.workers > 1:
        multiprocess.Process = Worker  # type: ignore[misc]  # the supervisor starts (and restarts) these
        sock = config.bind_socket()
        try:
            Supervisor(config, sockets=[sock]).run()
        except KeyboardInterrupt:
            pass
        return
    server = Server(config, settings.drain_seconds)
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
    problems = unsafe(settings)
    if problems and settings.nexus_env != "development":
        print("refusing to start (set NEXUS_ENV=development to run anyway on a laptop):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(2)
    Protocol.header_timeout = float(os.environ.get("HEADER_TIMEOUT_SECONDS", "10"))
    config = Config(
        "api.main:app",
        http=Protocol,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # Proxy headers are the app's (TRUSTED_PROXIES, api/app.py) in every serving mode: uvicorn's
        # own would trust X-Forwarded-For from any loopback peer before the app's rule ran.
        proxy_headers=False,
        access_log=False,  # the app writes its own JSON line per request (ACCESS_LOG)
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
    )
    serve(config)


if __name__ == "__main__":
    main()
