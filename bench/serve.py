"""uvicorn's command line, with its multi-worker listening socket fixed (used by bench/run.py).

With --workers N > 1, uvicorn (0.54 here) binds the listening socket itself with
`socket.socket(family)`, so `proto` is 0; accepted sockets inherit it, and asyncio only
sets TCP_NODELAY when proto is IPPROTO_TCP. Nagle's algorithm then holds back the body
of every keep-alive response until the client's delayed ACK (~40 ms on Linux): measured
here, /healthz fell from ~3,000 req/s to ~170 req/s. Upstream: Kludex/uvicorn#3149.
This wrapper re-labels the bound socket as TCP before the workers get it; nothing else
changes. A single worker (uvicorn's own host/port path) is not affected.

Usage: python -m bench.serve api.main:app --host 127.0.0.1 --port 8000 --workers 2
"""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.config import Config

_bind_socket = Config.bind_socket


def bind_socket(self: Config) -> socket.socket:
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    return sock


Config.bind_socket = bind_socket  # type: ignore[method-assign]

if __name__ == "__main__":
    uvicorn.main()
