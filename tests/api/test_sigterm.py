"""SIGTERM under load, for real (python -m api.serve, one worker and two): /readyz turns 503 while
every request is still served for DRAIN_SECONDS (the balancer's health check notices), then the
port refuses connections, the requests in flight finish with their normal answers (among them
slow ones, still waiting in the database when the port closed), and the process exits 0.

The slow requests are GET /api/amenities/ while the test holds a lock on app.amenities: they
are in flight for exactly as long as the test decides, and it can see them waiting."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest

from api.app import DRAINING
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"


@dataclass
class Outcome:
    kind: str  # steady, slow, ready
    started: float
    ended: float
    status: int | None  # None: no answer (refused, or the connection closed)
    error: str = ""
    problem: bool = False  # problem+json with Retry-After


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(settings: Settings, workers: int, drain: float, grace: int) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "APP_DATABASE_URL": settings.app_database_url,
        "DB_PREPARE": str(settings.db_prepare).lower(),
        "NEXUS_ENV": "development",
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "info",
        "RATE_LIMITS": "false",  # the load comes from one address
        "STATEMENT_TIMEOUTS": "anon=30s",  # the slow requests wait on the test's lock, not on this
        "DRAIN_SECONDS": str(drain),
        "GRACEFUL_SHUTDOWN_SECONDS": str(grace),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "api.serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx2.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        yield server, base
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def request(client: httpx2.Client, kind: str, path: str) -> Outcome:
    started = time.monotonic()
    try:
        r = client.get(path)
    except httpx2.HTTPError as exc:
        return Outcome(kind, started, time.monotonic(), None, type(exc).__name__)
    problem = r.headers.get("content-type") == PROBLEM and "retry-after" in r.headers
    return Outcome(kind, started, time.monotonic(), r.status_code, problem=problem)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_drains_then_exits(settings: Settings, owner_url: str, workers: int) -> None:
    drain, grace = 1.5, 10
    outcomes: list[Outcome] = []
    stop = threading.Event()

    def steady(base: str) -> None:  # keep-alive, back to back
        with httpx2.Client(base_url=base, timeout=30) as client:
            while not stop.is_set():
                outcomes.append(request(client, "steady", "/api/categories/"))
                if outcomes[-1].status is None:
                    time.sleep(0.05)

    def slow(base: str) -> None:
        with httpx2.Client(base_url=base, timeout=30) as client:
            outcomes.append(request(client, "slow", "/api/amenities/"))

    def prober(base: str) -> None:  # as a balancer's health check: a new connection each time
        while not stop.is_set():
            with httpx2.Client(base_url=base, timeout=5) as client:
                outcomes.append(request(client, "ready", "/readyz"))
            time.sleep(0.05)

    with (
        serving(settings, workers, drain, grace) as (server, base),
        psycopg.connect(owner_url) as locker,
        psycopg.connect(owner_url, autocommit=True) as watcher,
    ):
        locker.execute("lock table app.amenities in access exclusive mode")
        threads = [threading.Thread(target=f, args=(base,), daemon=True) for f in [steady] * 4 + [slow] * 3 + [prober]]
        try:
            for t in threads:
                t.start()
            deadline = time.monotonic() + 20
            while watcher.execute(
                "select count(*) from pg_locks where relation = 'app.amenities'::regclass and not granted"
            ).fetchone() != (3,):
                assert time.monotonic() < deadline, "the slow requests did not reach the database"
                time.sleep(0.05)
            time.sleep(0.3)

            sigterm = time.monotonic()
            server.send_signal(signal.SIGTERM)
            while not any(o.kind == "ready" and o.status is None and o.started > sigterm for o in outcomes):
                assert time.monotonic() < sigterm + drain + 10, "the port never closed"
                time.sleep(0.02)
            time.sleep(0.3)  # the slow requests are still waiting, after the port closed
            released = time.monotonic()
            locker.commit()
            for t in threads[4:7]:
                t.join(timeout=30)
            returncode = server.wait(timeout=drain + grace + 5)
            exited = time.monotonic()
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        output = server.stdout.read() if server.stdout else ""
        with pytest.raises(httpx2.ConnectError):
            httpx2.get(base + "/readyz", timeout=2)

    ready = [o for o in outcomes if o.kind == "ready" and o.started > sigterm]
    refused = min(o.ended for o in ready if o.status is None)
    not_ready = [o for o in ready if o.status == 503 and o.problem and o.ended < refused]
    steady_ = [o for o in outcomes if o.kind == "steady"]
    slow_ = [o for o in outcomes if o.kind == "slow"]
    in_flight = [o for o in steady_ if o.started < sigterm < o.ended] + slow_
    assert returncode == 0, output
    assert output.count("Application shutdown complete") == workers, output
    assert "Traceback" not in output and "ERROR" not in output, output
    assert not_ready, ready  # /readyz said 503 (problem+json, Retry-After) while the port was open
    assert refused >= sigterm + drain  # the port stayed open for the whole drain
    assert not [o for o in ready if o.status == 200 and o.started > not_ready[0].ended + 0.5], ready  # every worker
    assert in_flight and all(o.status == 200 for o in in_flight), in_flight
    assert all(o.ended > refused for o in slow_)  # they were finished by the graceful shutdown
    assert [o for o in steady_ if o.started > not_ready[0].ended and o.status == 200]  # served while draining
    assert all(o.status in (200, None) for o in steady_), {o.status for o in steady_}  # no 5xx, ever
    # A request fails only when it reached a closing port (or a keep-alive connection being closed).
    assert all(o.started > sigterm + drain - 0.5 for o in steady_ if o.status is None)
    assert exited - released < 5 and exited - sigterm < drain + grace + 5
    figures = {
        "workers": workers,
        "requests": len(steady_) + len(slow_),
        "in flight at SIGTERM": len(in_flight),
        "readyz 503 before the port closed": len(not_ready),
        "s to first 503": round(not_ready[0].ended - sigterm, 2),
        "s to port closed": round(refused - sigterm, 2),
        "s to exit": round(exited - sigterm, 2),
        "refused or closed": len([o for o in steady_ if o.status is None]),
    }
    print(json.dumps(figures))


def test_a_repeated_sigterm_keeps_draining_and_sigint_cuts_it_short(settings: Settings) -> None:
    with serving(settings, 1, drain=60, grace=10) as (server, base):
        server.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        server.send_signal(signal.SIGTERM)  # as when the supervisor forwards what systemd also sent
        time.sleep(0.5)
        with httpx2.Client(base_url=base, timeout=5) as client:
            draining = client.get("/readyz")
            served = client.get("/api/categories/")
        interrupted = time.monotonic()
        server.send_signal(signal.SIGINT)
        returncode = server.wait(timeout=15)
        exited = time.monotonic()

    assert draining.status_code == 503 and draining.headers["content-type"] == PROBLEM
    assert draining.headers["retry-after"] == "5"
    assert served.status_code == 200
    assert returncode == 0 and exited - interrupted < 5


def test_readyz_is_503_while_draining(client: Any) -> None:
    DRAINING.set()
    try:
        draining = client.get("/readyz")
    finally:
        DRAINING.clear()

    assert draining.status_code == 503 and draining.headers["content-type"] == PROBLEM
    assert draining.headers["retry-after"] == "5"
    assert client.get("/readyz").status_code == 200
