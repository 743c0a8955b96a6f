"""Serve a stand-in of a third party's HTTP API on loopback (127.0.0.1, a free port), for tests.

A stand-in is any object with `base_url` (set here) and `app()` returning an ASGI app;
`with Server(standin) as s:` runs it with uvicorn in a background thread.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette

from api.settings import Settings


@dataclass
class LiveApp:
    """Nexus itself as a loopback server: `with Server(LiveApp(settings), lifespan="on") as app:`."""

    settings: Settings
    base_url: str = ""

    def app(self) -> Starlette:
        from tests.fix_contract import contract_app

        return contract_app(self.settings)


class Server:
    """Serve a stand-in with uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, standin: Any, lifespan: str = "off") -> None:
        self.standin = standin
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        standin.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            standin.app(),
            lifespan=lifespan,
            ws="none",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the stand-in did not start")
            time.sleep(0.01)
        return self.standin

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
