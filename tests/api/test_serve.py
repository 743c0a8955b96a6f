"""The production entry point (python -m api.serve): it refuses laptop settings, serves with
several workers, and drains on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx2

from api.serve import unsafe
from api.settings import DEV_JWT_KEY, Settings
from tests.loopback import Served, Server, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_laptop_settings_are_named_and_production_settings_pass(settings: Settings) -> None:
    laptop = replace(
        settings, jwt_keys={"dev": DEV_JWT_KEY}, authenticator_password="", app_database_url="", cors_origins=["*"]
    )
    fine = replace(
        settings,
        jwt_keys={"k1": "x" * 40},
        authenticator_password="s3cret",
        cors_origins=["https://app.example"],
        public_url="https://api.example",
    )

    problems = unsafe(replace(laptop, public_url="", trusted_proxies=frozenset({"*"})))

    assert len(problems) == 5 and any("JWT_KEYS" in p for p in problems)
    assert any("PUBLIC_URL" in p for p in problems) and any("TRUSTED_PROXIES" in p for p in problems)
    assert unsafe(fine) == []
    assert any("shorter than 32" in p for p in unsafe(replace(fine, jwt_keys={"k1": "short"})))


def test_production_refuses_the_development_defaults() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_KEYS", "NEXUS_ENV", "AUTHENTICATOR_PASSWORD")}

    r = subprocess.run(
        [sys.executable, "-m", "api.serve", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert r.returncode == 2 and "refusing to start" in r.stderr and "JWT_KEYS" in r.stderr


def test_two_workers_serve_and_sigterm_drains_them(owner_url: str) -> None:
    # DRAIN_SECONDS 0: tests/api/test_sigterm.py drains under load
    with Served(owner_url, workers=2, env={"LOG_LEVEL": "info"}) as server:  # returns once both workers are up
        assert httpx2.get(f"{server.base_url}/readyz", timeout=5).status_code == 200
        with httpx2.Client(base_url=server.base_url) as client:
            assert all(client.get("/api/categories/").status_code == 200 for _ in range(20))
    output = server.output()
    assert server.process.returncode == 0, output
    assert output.count("Application shutdown complete") == 2, output  # each worker closed its pool
    assert '"path"' not in output  # ACCESS_LOG=false: no per-request lines


@dataclass
class Responses:
    """Raw ASGI responses of each shape, served by uvicorn with api.serve's Cycle (imported above)."""

    base_url: str = ""
    go: threading.Event = field(default_factory=threading.Event)  # set by the test: the delayed bodies may come

    def app(self) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            path = scope["path"]
            sized = path != "/streamed"
            headers = [(b"content-length", b"5")] if sized else []
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if path == "/broken":
                raise RuntimeError("after the start")
            if path != "/fixed":
                await asyncio.to_thread(self.go.wait, 5)
            await send({"type": "http.response.body", "body": b"hello", "more_body": not sized})
            if not sized:
                await send({"type": "http.response.body", "body": b""})

        return app


def exchange(base_url: str, request: bytes, until_go: Responses | None = None) -> tuple[bytes, bytes]:
    """What arrives before `until_go.go` is set (within 0.5 s), and everything after it."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        early = b""
        if until_go is not None:
            sock.settimeout(0.5)
            try:
                early = sock.recv(65536)
            except TimeoutError:
                pass
            until_go.go.set()
            sock.settimeout(5)
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    return early, rest


def test_a_response_goes_out_whole_and_a_streamed_head_at_once() -> None:
    get = b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

    with Server(Responses()) as standin:
        _, fixed = exchange(standin.base_url, get % b"/fixed")
        _, head = exchange(standin.base_url, b"HEAD /fixed HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        early_stream, rest_stream = exchange(standin.base_url, get % b"/streamed", until_go=standin)
        standin.go.clear()
        early_late, rest_late = exchange(standin.base_url, get % b"/late", until_go=standin)
        _, broken = exchange(standin.base_url, get % b"/broken")

    assert fixed.startswith(b"HTTP/1.1 200 OK\r\n") and fixed.endswith(b"\r\n\r\nhello")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 5" in head and head.endswith(b"\r\n\r\n")
    assert early_stream.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in early_stream
    assert rest_stream.endswith(b"5\r\nhello\r\n0\r\n\r\n")
    assert early_late == b"" and rest_late.startswith(b"HTTP/1.1 200 OK\r\n") and rest_late.endswith(b"hello")
    assert broken.startswith(b"HTTP/1.1 200 OK\r\n") and broken.endswith(b"\r\n\r\n")  # head, then closed


def test_a_request_head_sent_slowly_is_cut_off_and_others_are_served(owner_url: str) -> None:
    with Served(owner_url, workers=1, env={"HEADER_TIMEOUT_SECONDS": "1.5"}) as server:
        host, port = server.base_url.removeprefix("http://").split(":")
        slow = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]
        silent = socket.create_connection((host, int(port)), timeout=10)  # connects and says nothing
        started = time.monotonic()
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        for step in range(8):  # one more header each 0.5 s: the head never ends
            time.sleep(0.5)
            for sock in slow:
                with contextlib.suppress(OSError):  # closed by the server: the point
                    sock.sendall(b"X-Slow-%d: 1\r\n" % step)
        answers = [sock.recv(65536) for sock in slow]
        for sock in slow:
            sock.close()
        quiet = silent.recv(65536)
        silent.close()
        elapsed = time.monotonic() - started
        healthy = httpx2.get(f"{server.base_url}/healthz", timeout=5)

    assert all(a.startswith(b"HTTP/1.1 408 ") and b"application/problem+json" in a for a in answers), answers
    assert quiet.startswith(b"HTTP/1.1 408 ")
    assert elapsed < 8  # cut at ~1.5 s, not kept for as long as the client trickles
    assert healthy.status_code == 200
