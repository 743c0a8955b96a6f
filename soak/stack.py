"""The real stack, as production runs it, on this machine: a PostgreSQL cluster of the soak's own,
`python -m api.serve --workers 2`, `python -m api.worker` under a supervisor of ours, and the
third parties' stand-ins (tests/) on loopback, configured through the environment as a deployment
configures the real ones. With `pgbouncer`, the API reaches PostgreSQL through Debian's PgBouncer
in transaction pooling, as compose.yaml deploys it (its LISTEN, the worker and migrate directly).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import psycopg

from tests.loopback import Outage, Server
from tests.paypal_standin import PayPalStandIn
from tests.pgbouncer import PgBouncer
from tests.smtp_sink import SmtpSink
from tests.stripe_standin import StripeStandIn

ROOT = Path(__file__).resolve().parents[1]
AS_PG = str(ROOT / "scripts" / "as-pg-owner")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- PostgreSQL ----------------------------------------------------------------------------------


@dataclass
class Cluster:
    """A cluster in a temporary folder on a loopback port, started and restarted with pg_ctl."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nexus-soak-")))
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def owner_url(self) -> str:
        return f"postgresql://nexus@127.0.0.1:{self.port}/nexus"

    @property
    def superuser_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/nexus"

    def pg_ctl(self, *args: str) -> None:
        r = subprocess.run(
            [AS_PG, "pg_ctl", *args, "-D", str(self.data), "-w", "-t", "120"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)}: {r.stderr or r.stdout}")

    def start(self) -> None:
        init = subprocess.run(
            [AS_PG, "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if init.returncode != 0:
            raise RuntimeError(init.stderr)
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
            " -c shared_buffers=256MB -c synchronous_commit=off"
        )
        self.pg_ctl("start", "-l", str(self.data / "server.log"), "-o", options)
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("create role nexus login createrole")
            conn.execute("create database nexus owner nexus")

    def restart(self) -> None:
        """A fast restart (clients disconnected, a checkpoint, up again), as a minor upgrade does."""
        self.pg_ctl("restart", "-m", "fast", "-l", str(self.data / "server.log"))

    def stop(self) -> None:
        subprocess.run(
            [AS_PG, "pg_ctl", "stop", "-D", str(self.data), "-m", "immediate"], capture_output=True, timeout=60
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def migrate(cluster: Cluster) -> float:
    """What `make migrate` does, in a process of its own; returns the seconds it took."""
    started = time.monotonic()
    subprocess.run(
        # --force: a deploy whose SQL changed (one that changes none takes no lock: api/migrate.py).
        [sys.executable, "-m", "api.migrate", "--force"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": cluster.owner_url},
        check=True,
        capture_output=True,
    )
    return time.monotonic() - started


def load_bench_data(owner_url: str) -> None:
    """bench/data.sql (100,000 listings, 10,000 users), as `make bench-data` loads it."""
    from bench.data import SECONDARY_INDEXES, steps

    with psycopg.connect(owner_url) as conn:
        conn.execute("set maintenance_work_mem = '256MB'")
        indexes = [r[0] for r in conn.execute(SECONDARY_INDEXES)]
        drops = SECONDARY_INDEXES.replace("pg_get_indexdef(i.indexrelid)", "'drop index ' || i.indexrelid::regclass")
        for (ddl,) in conn.execute(drops).fetchall():
            conn.execute(ddl)
        for name, text in steps():
            if name == "analyze":
                for ddl in indexes:
                    conn.execute(ddl)
            conn.execute(text.encode())
        conn.commit()
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("vacuum (analyze) app.users, app.products, app.product_amenities, app.product_photos")


def prepare_database(cluster: Cluster, bench_data: bool) -> None:
    from api.migrate import migrate as run_migrations
    from api.migrate import prepare

    prepare(cluster.superuser_url)
    run_migrations(cluster.owner_url)
    if bench_data:
        started = time.monotonic()
        load_bench_data(cluster.owner_url)
        log(f"bench data loaded in {time.monotonic() - started:.0f} s")
    with psycopg.connect(cluster.owner_url, autocommit=True) as conn:
        # Settings a DBA may change: holds short enough to expire within a soak (an unpaid booking
        # frees its dates after 3 minutes; a payment landing later is refunded in full).
        conn.execute("update app_private.booking_settings set hold_minutes = 3")


# --- processes -----------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Api:
    """`python -m api.serve --workers N`: uvicorn's supervisor restarts a worker that dies; SIGHUP
    replaces the workers one by one (each new one serving before the old one drains)."""

    def __init__(self, env: dict[str, str], workers: int = 2) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.workers = workers
        self.logfile = tempfile.NamedTemporaryFile(prefix="nexus-soak-api-", suffix=".log", delete=False)

    def start(self) -> None:
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
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while len(self.worker_pids()) < self.workers or not self.ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("api.serve did not start: " + Path(self.logfile.name).read_text()[-3000:])
            time.sleep(0.2)

    def ready(self) -> bool:
        try:
            return httpx2.get(self.base_url + "/healthz", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False

    def worker_pids(self) -> list[int]:
        # uvicorn's workers are multiprocessing children (spawn), beside its resource tracker
        return [p for p in children(self.process.pid) if "resource_tracker" not in _cmdline(p)]

    def kill_worker(self) -> int:
        pid = self.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def rolling_restart(self) -> None:
        os.kill(self.process.pid, signal.SIGHUP)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class JobWorker:
    """`python -m api.worker`, started again whenever it exits (as systemd's Restart=always would)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.stopping = False
        self.logfile = tempfile.NamedTemporaryFile(prefix="nexus-soak-worker-", suffix=".log", delete=False)
        self.thread = threading.Thread(target=self.supervise, daemon=True)

    def start(self) -> None:
        self.spawn()
        self.thread.start()

    def spawn(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.worker"], cwd=ROOT, env=self.env, stdout=self.logfile, stderr=subprocess.STDOUT
        )
        self.starts += 1

    def supervise(self) -> None:
        while not self.stopping:
            assert self.process is not None
            if self.process.poll() is not None and not self.stopping:
                time.sleep(1)  # RestartSec=1
                self.spawn()
            time.sleep(0.2)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.poll() is None else None

    def kill(self) -> int | None:
        pid = self.pid
        if pid:
            os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        self.stopping = True
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


# --- the stand-ins, with fault switches ----------------------------------------------------------


@dataclass
class FaultyStripe(StripeStandIn):  # type: ignore[misc]
    outage: Outage = field(default_factory=Outage)

    def app(self) -> Any:
        return self.outage.wrap(super().app())


@dataclass
class FaultyPayPal(PayPalStandIn):  # type: ignore[misc]
    outage: Outage = field(default_factory=Outage)

    def app(self) -> Any:
        return self.outage.wrap(super().app())


class Stack:
    """Everything, started in order and stopped in reverse."""

    def __init__(self, bench_data: bool = False, api_workers: int = 2, pgbouncer: bool = False) -> None:
        self.bench_data = bench_data
        self.api_workers = api_workers
        self.cluster = Cluster()
        self.pgbouncer = PgBouncer(self.cluster.owner_url) if pgbouncer else None
        self.stripe = FaultyStripe()
        self.paypal = FaultyPayPal()
        self.smtp = SmtpSink()
        self.servers: list[Server] = []

    def __enter__(self) -> Stack:
        try:
            log(f"PostgreSQL in {self.cluster.folder} on port {self.cluster.port}")
            self.cluster.start()
            prepare_database(self.cluster, self.bench_data)
            for standin in (self.stripe, self.paypal):
                server = Server(standin)
                server.__enter__()
                self.servers.append(server)
            self.smtp.__enter__()
            if self.pgbouncer:
                self.pgbouncer.__enter__()
                log(f"PgBouncer (transaction pooling) on port {self.pgbouncer.port}")
            env = {
                **os.environ,
                "DATABASE_URL": self.cluster.owner_url,
                "NEXUS_ENV": "development",
                "PUBLIC_URL": "http://127.0.0.1",
                "ACCESS_LOG": "false",
                "LOG_LEVEL": "warning",
                "DRAIN_SECONDS": "1",
                # One machine drives all the traffic from one address: the per-caller limits would
                # throttle the soak itself (tests/api/test_rate_limits.py covers them).
                "RATE_LIMITS": "false",
                "ACCESS_TOKEN_TTL": "7200",
                "STRIPE_SECRET_KEY": self.stripe.secret_key,
                "STRIPE_WEBHOOK_SECRET": self.stripe.webhook_secret,
                "STRIPE_API_BASE": self.stripe.base_url,
                "PAYPAL_CLIENT_ID": self.paypal.client_id,
                "PAYPAL_CLIENT_SECRET": self.paypal.client_secret,
                "PAYPAL_WEBHOOK_ID": self.paypal.webhook_id,
                "PAYPAL_API_BASE": self.paypal.base_url,
                "SMTP_HOST": self.smtp.host,
                "SMTP_PORT": str(self.smtp.port),
                "SMTP_STARTTLS": "false",
                "EMAIL_FROM": "bookings@nexus.test",
                "FRONTEND_URL": "https://nexus.test",
                "EXCHANGE_RATES_URL": "",
                "MEDIA_ROOT": str(self.cluster.folder / "media"),
            }
            env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
            if self.pgbouncer:  # as compose.yaml: the API through PgBouncer, its LISTEN straight to PostgreSQL
                direct = self.cluster.owner_url.replace("//nexus@", "//authenticator@")
                env |= {"APP_DATABASE_URL": self.pgbouncer.url, "LISTEN_DATABASE_URL": direct, "DB_PREPARE": "false"}
            self.env = env
            self.api = Api(env, self.api_workers)
            self.api.start()
            self.worker = JobWorker(env)
            self.worker.start()
            log(f"API on {self.api.base_url} (workers {self.api.worker_pids()}), job worker {self.worker.pid}")
            return self
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        for part in ("worker", "api"):
            if hasattr(self, part):
                getattr(self, part).stop()
        if hasattr(self.smtp, "controller"):
            self.smtp.__exit__()
        for server in reversed(self.servers):
            server.__exit__()
        if self.pgbouncer:
            self.pgbouncer.__exit__()
        self.cluster.stop()
