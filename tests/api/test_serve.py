"""The production entry point (python -m api.serve): it refuses laptop settings, serves with
several workers, and drains on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx2

from api.serve import unsafe
from api.settings import DEV_JWT_KEY, Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_laptop_settings_are_named_and_production_settings_pass(settings: Settings) -> None:
    laptop = replace(
        settings, jwt_keys={"dev": DEV_JWT_KEY}, authenticator_password="", app_database_url="", cors_origins=["*"]
    )
    fine = replace(
        settings, jwt_keys={"k1": "x" * 40}, authenticator_password="s3cret", cors_origins=["https://app.example"]
    )

    problems = unsafe(laptop)

    assert len(problems) == 3 and any("JWT_KEYS" in p for p in problems)
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
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": owner_url,
        "NEXUS_ENV": "development",
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "info",
        "DRAIN_SECONDS": "0",  # tests/api/test_sigterm.py drains under load
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "api.serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert all(client.get("/api/categories/").status_code == 200 for _ in range(20))
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert output.count("Application shutdown complete") == 2, output  # each worker closed its pool
    assert '"path"' not in output  # ACCESS_LOG=false: no per-request lines
