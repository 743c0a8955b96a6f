"""A real Prometheus (Debian's `prometheus`, on loopback) scrapes the API served as production
serves it (python -m api.serve, two workers) and the worker, and answers a PromQL query with the
requests this test made; promtool checks the alert rules and runs their unit tests (deploy/)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.loopback import Served, free_port

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
TOKEN = "scrape-token-for-tests-0123456789abcdef"

needs_promtool = pytest.mark.skipif(
    not os.access(PROMTOOL, os.X_OK), reason="promtool missing: apt-get install prometheus"
)
needs_prometheus = pytest.mark.skipif(
    not os.access(PROMETHEUS, os.X_OK), reason="prometheus missing: apt-get install prometheus"
)

# The PromQL the test asks: every request the API answered, by route template, method and status class.
BY_ROUTE = "sum by (route, method, status) (nexus_http_request_duration_seconds_count)"


@needs_promtool
def test_the_alert_rules_pass_promtool_and_their_unit_tests(tmp_path: Path) -> None:
    checked = subprocess.run([PROMTOOL, "check", "rules", str(RULES / "alerts.yml")], capture_output=True, text=True)
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts.test.yml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(RULES / name, tmp_path)
    (tmp_path / "nexus-metrics-token").write_text(TOKEN)  # the scrape config reads the token from it
    config = subprocess.run(
        [PROMTOOL, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )

    assert checked.returncode == 0 and "SUCCESS: 15 rules found" in checked.stdout, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert config.returncode == 0, config.stdout + config.stderr


@contextmanager
def prometheus(scrape: list[tuple[str, str]]) -> Iterator[Callable[[], str]]:
    """Prometheus on 127.0.0.1 (a free port), scraping each (component, host:port) every second as
    job "nexus" with the token, with the project's alert rules loaded. Started, not waited for:
    what it yields waits until it is ready and returns its base URL."""
    folder = Path(tempfile.mkdtemp(prefix="nexus-prometheus-"))
    shutil.copy(RULES / "alerts.yml", folder)
    targets = "".join(
        f"      - targets: ['{target}']\n        labels: {{component: {component}}}\n" for component, target in scrape
    )
    (folder / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 1s}\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n"
        "  - job_name: nexus\n"
        f"    authorization: {{credentials: {TOKEN}}}\n"
        "    static_configs:\n" + targets
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(folder / "prometheus.log", "w") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def ready() -> str:
        up = lambda: httpx2.get(f"{base}/-/ready", timeout=1).status_code == 200  # noqa: E731
        wait_for(up, "prometheus is not ready", process, folder / "prometheus.log")
        return base

    try:
        yield ready
    finally:
        stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(
    ready: Callable[[], bool],
    what: str,
    process: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
    seconds: float = 30,
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if ready():
                return
        except httpx2.HTTPError:
            pass
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: it exited: {log.read_text() if log else ''}")
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@contextmanager
def worker(owner_url: str, metrics_port: int, folder: Path) -> Iterator[Callable[[], None]]:
    """python -m api.worker with its metrics endpoint on 127.0.0.1:metrics_port, behind the token.
    Started, not waited for: what it yields waits until the endpoint answers."""
    env = {
        **os.environ,
        "DATABASE_URL": owner_url,
        "WORKER_METRICS_PORT": str(metrics_port),
        "METRICS_TOKEN": TOKEN,
        "LOG_LEVEL": "warning",
    }
    with open(folder / "worker.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.worker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def ready() -> None:
        up = lambda: httpx2.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1).status_code == 401  # noqa: E731
        wait_for(up, "the worker's metrics endpoint did not come up", process, folder / "worker.log")

    try:
        yield ready
    finally:
        stop(process)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    r = httpx2.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


@needs_prometheus
def test_prometheus_scrapes_the_api_and_the_worker_and_counts_the_requests_made(owner_url: str, tmp_path: Path) -> None:
    api_metrics, worker_metrics = free_port(), free_port()
    env = {"METRICS_PORT": str(api_metrics), "METRICS_TOKEN": TOKEN}
    # Prometheus and the worker start while the API does.
    with (
        prometheus([("api", f"127.0.0.1:{api_metrics}"), ("worker", f"127.0.0.1:{worker_metrics}")]) as prometheus_up,
        worker(owner_url, worker_metrics, tmp_path) as worker_up,
        Served(owner_url, workers=2, env=env) as api,
    ):
        base = prometheus_up()
        worker_up()
        with httpx2.Client(base_url=api.base_url, timeout=10) as client:
            # Setup: what the test asks the API (spread over both workers by the kernel).
            categories = [client.get("/api/categories/").status_code for _ in range(5)]
            missing = [client.get(f"/api/products/{uuid.uuid4()}/").status_code for _ in range(3)]
            not_here = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        expected = {
            ("/api/categories/", "GET", "2xx"): 5.0,
            ("/api/products/{id}/", "GET", "4xx"): 3.0,
            ("(unmatched)", "GET", "4xx"): 1.0,  # /metrics is not on the API's port when METRICS_PORT is set
        }
        seen: dict[tuple[str, str, str], float] = {}

        def counted() -> bool:
            nonlocal seen
            seen = {
                (r["metric"]["route"], r["metric"]["method"], r["metric"]["status"]): float(r["value"][1])
                for r in query(base, BY_ROUTE)
            }
            return seen == expected

        # Action: wait for a scrape (every second) that saw them all, then ask Prometheus.
        try:
            wait_for(counted, "prometheus did not count the requests", seconds=20)
        except AssertionError:
            raise AssertionError(f"{BY_ROUTE} gave {seen}, expected {expected}") from None
        up: dict[str, str] = {}

        def both_up() -> bool:  # each target scraped at least once since it answered
            nonlocal up
            up = {r["metric"]["component"]: r["value"][1] for r in query(base, 'up{job="nexus"}')}
            return up == {"api": "1", "worker": "1"}

        wait_for(both_up, "the API's and the worker's targets are not both up", seconds=10)
        database_up = query(base, "nexus_database_metrics_up")
        payouts = {r["metric"]["status"] for r in query(base, "nexus_payouts")}
        rules = httpx2.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]

    # Assertions
    assert categories == [200] * 5 and missing == [404] * 3 and not_here == 404
    assert up == {"api": "1", "worker": "1"}  # both scraped, with the token
    assert database_up[0]["value"][1] == "1" and database_up[0]["metric"]["component"] == "worker"
    assert payouts == {"pending", "scheduled", "failed"}
    assert sum(len(group["rules"]) for group in rules) == 15  # the alert rules, loaded by a real Prometheus
