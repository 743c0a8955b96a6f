"""Serve a stand-in of a third party's HTTP API on loopback (127.0.0.1, a free port), for tests.

A stand-in is any object with `base_url` (set here) and `app()` returning an ASGI app;
`with Server(standin) as s:` runs it with uvicorn in a background thread.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from starlette.applications import Starlette

from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


@contextmanager
def haproxy(config: str, balancer: str) -> Iterator[None]:
    """Debian's HAProxy with `config` (its frontend at `balancer`), once `balancer`/healthz
    answers 200 through it (10 s at most); terminated at the end."""
    folder = Path(tempfile.mkdtemp(prefix="nexus-haproxy-"))
    (folder / "haproxy.cfg").write_text(config)
    proxy = subprocess.Popen([HAPROXY, "-f", str(folder / "haproxy.cfg")])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx2.get(balancer + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert time.monotonic() < deadline, "haproxy did not come up"
            time.sleep(0.1)
        yield
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


class Served:
    """Nexus as production serves it: `python -m api.serve` in a subprocess on 127.0.0.1, a free
    port; `with Served(owner_url, workers=2, env={...}) as api:` waits until every worker has
    started, and SIGTERMs it at the end. `api.base_url`, `api.output()` (what it printed)."""

    def __init__(self, database_url: str, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "NEXUS_ENV": "development",
            "ACCESS_LOG": "false",
            "DRAIN_SECONDS": "0",
            **(env or {}),
        }
        self.lines: list[str] = []

    def __enter__(self) -> Served:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "api.serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        stdout = self.process.stdout
        assert stdout is not None
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(stdout.readline, "")), daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 30
        # Every worker started, and the port is listening: one worker binds it only after its
        # startup ("Uvicorn running on" comes then), so a connection right after could be refused.
        while sum("Application startup complete" in line for line in self.lines) < self.workers or not any(
            "Uvicorn running on" in line for line in self.lines
        ):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.__exit__()
                raise RuntimeError("api.serve did not start: " + self.output())
            time.sleep(0.05)
        return self

    def output(self) -> str:
        return "".join(self.lines)

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=5)


# --- faults a stand-in can be switched into (the soak: soak/faults.py) -------------------------


@dataclass
class Outage:
    """A fault switch in front of a stand-in's ASGI app: `mode` None (well), "500" (every request
    answers 500 at once), "timeout" (every request hangs `hang` seconds, past any client's timeout,
    then answers 504), "slow" (every request waits `delay` seconds, then is served). `wrap(app)`."""

    mode: str | None = None
    hang: float = 30.0
    delay: float = 2.0
    refused: int = 0  # requests answered by the fault so far

    def wrap(self, app: Any) -> Any:
        async def faulty(scope: dict[str, Any], receive: Any, send: Any) -> None:
            mode = self.mode
            if scope["type"] != "http" or mode is None:
                await app(scope, receive, send)
                return
            if mode == "slow":
                await asyncio.sleep(self.delay)
                await app(scope, receive, send)
                return
            self.refused += 1
            if mode == "timeout":
                await asyncio.sleep(self.hang)
            status = 500 if mode == "500" else 504
            body = b'{"error": {"type": "api_error", "message": "The stand-in is switched into an outage."}}'
            await send(
                {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})

        return faulty
