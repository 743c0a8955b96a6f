"""The production entry point (python -m api.serve): it refuses laptop settings, serves with
several workers, and drains on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx2
import orjson

from api.serve import unsafe
from api.settings import DEV_JWT_KEY, Settings
from tests.loopback import Served, free_port

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
    lines = [orjson.loads(line) for line in output.splitlines()]  # each a JSON object (api/logs.py), uvicorn's too
    assert {"uvicorn.error"} <= {line["logger"] for line in lines}
    assert all(line["level"] in ("INFO", "WARNING") and line["time"] for line in lines), output


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


def test_without_the_uvicorn_internals_it_extends_it_still_serves(owner_url: str) -> None:
    """A uvicorn release that moved what api/uvicorn_ext.py extends makes importing it fail (here:
    made to fail): api.serve falls back to uvicorn.run (public), serves two workers, and says
    what it serves without."""
    port = free_port()
    moved = (
        "import sys, runpy; sys.modules['api.uvicorn_ext'] = None;"
        f" sys.argv = ['api.serve', '--host', '127.0.0.1', '--port', '{port}', '--workers', '2'];"
        " runpy.run_module('api.serve', run_name='__main__')"
    )
    env = {**os.environ, "DATABASE_URL": owner_url, "NEXUS_ENV": "development", "ACCESS_LOG": "false"}
    process = subprocess.Popen(
        [sys.executable, "-c", moved], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline, status = time.monotonic() + 30, 0
        while time.monotonic() < deadline and status != 200 and process.poll() is None:
            with contextlib.suppress(httpx2.HTTPError):
                status = httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code
            time.sleep(0.2)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert status == 200, output
    assert "serving with uvicorn.run" in output and "are gone (ModuleNotFoundError" in output
