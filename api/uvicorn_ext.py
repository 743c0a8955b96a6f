"""What api.serve adds to uvicorn where uvicorn has no public hook, in this one module.

uvicorn is extended, not configured, for: TCP_NODELAY on the multi-worker socket
(Config.bind_socket), the request-head timeout (httptools_impl.HttpToolsProtocol), and the
drain on SIGTERM (uvicorn.Server.handle_exit/on_tick, supervisors.multiprocess). These buy
behaviour, not speed; uvicorn stays pinned to a minor for them. Should a uvicorn release move
one, importing this module fails and api.serve falls back to uvicorn.run (public), serving
without the three and saying so (tests/api/test_serve.py runs that fallback).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from http import HTTPStatus
from types import FrameType

import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http import httptools_impl
from uvicorn.supervisors import multiprocess

from api.app import DRAINING
from api.errors import problem_response
from api.settings import settings

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


def supervisor(config: Config, sock: socket.socket) -> Supervisor:
    """The supervisor of several workers, each serving with the draining Server."""
    multiprocess.Process = Worker  # type: ignore[misc]  # the supervisor starts (and restarts) these
    return Supervisor(config, sockets=[sock])
