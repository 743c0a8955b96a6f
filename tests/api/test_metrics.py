"""Prometheus metrics through the ASGI app: off unless configured, never without the token, each
request under its route's template and status class, and the database's series from SQL
(api/metrics.py, sql/functions/90_metrics.sql). tests/test_prometheus.py scrapes a served API and
worker with a real Prometheus."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from api import db, metrics
from api.errors import from_database
from api.serve import unsafe
from api.settings import Settings
from tests.fix_api import assert_problem
from tests.fix_contract import contract_app
from tests.loopback import free_port

TOKEN = "metrics-token-for-tests-0123456789"
ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: TestClient) -> Samples:
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def layer(client: TestClient) -> metrics.HttpMetrics:
    node: Any = client.app
    while not isinstance(node, metrics.HttpMetrics):
        node = getattr(node, "middleware_stack", None) or node.app
    return node


@pytest.fixture(autouse=True)
def sample_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests sample when they mean to (HttpMetrics.sample), never the once-a-second task as well."""
    monkeypatch.setattr(metrics, "SAMPLE_SECONDS", 3600.0)


@pytest.fixture
def measured(settings: Settings) -> Iterator[TestClient]:
    app = contract_app(replace(settings, metrics_token=TOKEN))
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


def test_metrics_are_off_unless_configured(client: TestClient) -> None:
    assert client.app.state.settings.metrics is False  # type: ignore[attr-defined]

    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert_problem(r, 404)
    node: Any = client.app
    layers = []
    while node is not None:
        layers.append(type(node).__name__)
        node = getattr(node, "middleware_stack", None) or getattr(node, "app", None)
    assert "HttpMetrics" not in layers


def test_a_scrape_without_the_token_is_401(measured: TestClient) -> None:
    missing = measured.get("/metrics")
    wrong = measured.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
    basic = measured.get("/metrics", headers={"Authorization": "Basic bWV0cmljczp4"})

    for r in (missing, wrong, basic):
        assert_problem(r, 401)
    assert "nexus_" not in missing.text
    assert scrape(measured)  # with it: the exposition


def test_requests_are_counted_by_route_template_method_and_status_class(measured: TestClient) -> None:
    before = scrape(measured)
    unknown = uuid.uuid4()

    for _ in range(3):
        assert measured.get("/api/categories/").status_code == 200
    assert measured.get("/api/categories").status_code == 200  # the same route without its slash
    assert measured.get(f"/api/products/{unknown}/").status_code == 404
    assert measured.get(f"/api/products/{uuid.uuid4()}").status_code == 404
    assert measured.get(f"/no/such/{unknown}").status_code == 404
    assert measured.request("BREW", "/api/categories/").status_code == 405
    after = scrape(measured)

    def grew(route: str, method: str, status: str) -> float:
        name = "nexus_http_request_duration_seconds_count"
        labels = {"route": route, "method": method, "status": status}
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("/api/categories/", "GET", "2xx") == 4
    assert grew("/api/products/{id}/", "GET", "4xx") == 2
    assert grew("(unmatched)", "GET", "4xx") == 1
    assert grew("/api/categories/", "OTHER", "4xx") == 1
    assert not any(str(unknown) in label for (_, labels) in after for _, label in labels)  # never a raw path
    # A latency histogram: every bucket up to +Inf, cumulative.
    buckets = [
        v
        for (name, labels), v in after.items()
        if name == "nexus_http_request_duration_seconds_bucket"
        and ("route", "/api/categories/") in labels
        and ("status", "2xx") in labels
    ]
    assert len(buckets) == len(metrics.BUCKETS) + 1 and max(buckets) == value(
        after, "nexus_http_request_duration_seconds_count", route="/api/categories/", method="GET", status="2xx"
    )


def test_the_sampled_series_say_what_the_process_holds(measured: TestClient, settings: Settings) -> None:
    measured.get("/api/categories/")

    layer(measured).sample(measured.app)
    samples = scrape(measured)

    assert value(samples, "nexus_http_requests_in_flight") == 0  # sampled between requests
    assert value(samples, "nexus_db_pool_max_connections", pool="primary") == settings.pool_max
    in_use = value(samples, "nexus_db_pool_connections", pool="primary", state="in_use")
    idle = value(samples, "nexus_db_pool_connections", pool="primary", state="idle")
    assert in_use == 0 and idle >= 1
    assert ("nexus_db_pool_waiting", frozenset({("pool", "primary")})) in samples
    assert ("nexus_notification_streams", frozenset()) in samples


def test_catalog_cache_hits_are_counted_under_their_route(settings: Settings) -> None:
    app = contract_app(replace(settings, metrics_token=TOKEN, cache_max_bytes=8_000_000))
    with TestClient(app, base_url="http://testserver") as c:
        c.get("/api/amenities/")  # starts the cache's listener
        cache = layer(c)._find_cache(c.app)
        assert cache is not None
        deadline = time.monotonic() + 10
        while not cache.listening.is_set():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        layer(c).sample(c.app)
        before = scrape(c)

        c.get("/api/amenities/?page_size=7")  # a miss, kept
        for _ in range(3):
            c.get("/api/amenities/?page_size=7")  # hits
        layer(c).sample(c.app)
        after = scrape(c)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("nexus_catalog_cache_requests_total", result="hit") == 3
    assert grew("nexus_catalog_cache_requests_total", result="miss") == 1
    assert grew("nexus_http_request_duration_seconds_count", route="/api/amenities/", method="GET", status="2xx") == 4
    assert value(after, "nexus_catalog_cache_bytes") > 0 and value(after, "nexus_catalog_cache_entries") >= 1


def test_rate_limit_refusals_are_counted_per_class(settings: Settings, owner: psycopg.Connection[Any]) -> None:
    saved = owner.execute(
        "select capacity, per_minute, lease from app_private.rate_limits where class = 'read'"
    ).fetchone()
    assert saved is not None
    owner.execute("update app_private.rate_limits set capacity = 2, per_minute = 1, lease = 0 where class = 'read'")
    owner.execute("delete from app_private.rate_buckets")
    try:
        app = contract_app(
            replace(settings, metrics_token=TOKEN, rate_limits=True, trusted_proxies=frozenset({"testclient"}))
        )
        with TestClient(app, base_url="http://testserver") as c:
            before = scrape(c)
            address = {"X-Forwarded-For": "198.51.100.77"}
            statuses = [c.get("/api/currencies/", headers=address).status_code for _ in range(4)]
            after = scrape(c)
    finally:
        capacity, per_minute, lease = saved
        owner.execute(
            "update app_private.rate_limits set capacity = %s, per_minute = %s, lease = %s where class = 'read'",
            (capacity, per_minute, lease),
        )
        owner.execute("delete from app_private.rate_buckets")

    assert statuses == [200, 200, 429, 429]
    grew = value(after, "nexus_rate_limited_total", limit="read") - value(
        before, "nexus_rate_limited_total", limit="read"
    )
    assert grew == 2


def test_statement_timeouts_are_counted(settings: Settings) -> None:
    series = metrics.enable()
    before = series.registry.get_sample_value("nexus_db_statement_timeouts_total")

    async def sleep_past_the_timeout() -> None:
        pool = db.make_pool(settings.app_url(), 1, 1, 5, "/media/", settings.db_prepare, {"anon": "100ms"})
        await pool.open()
        try:
            await db.call(pool, "anon", None, "select pg_sleep(0.5)", [], True)
        finally:
            await pool.close()

    with pytest.raises(psycopg.errors.QueryCanceled) as cancelled:
        asyncio.run(sleep_past_the_timeout())
    problem = from_database(cancelled.value, anonymous=True)

    assert problem.status == 503
    assert series.registry.get_sample_value("nexus_db_statement_timeouts_total") == (before or 0) + 1


# --- what the database counts ---------------------------------------------------------------------

DATABASE_SERIES = {
    "nexus_jobs",
    "nexus_job_oldest_age_seconds",
    "nexus_emails_dead",
    "nexus_webhook_events_received",
    "nexus_webhook_events_duplicated",
    "nexus_webhook_events_failed",
    "nexus_payouts",
    "nexus_exchange_rates_age_seconds",
    "nexus_exchange_rates_failing",
    "nexus_reconciliation_differences",
    "nexus_reconciliation_age_seconds",
    "nexus_reconciliation_failing",
    "nexus_wal_archive_failures",
    "nexus_wal_archive_age_seconds",
    "nexus_replicas",
    "nexus_replica_lag_seconds",
    "nexus_replica_lag_bytes",
    "nexus_database_size_bytes",
    "nexus_database_connections",
}


def database_samples(owner_url: str) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.DatabaseCollector(owner_url))
    return parse(metrics.exposition(registry).decode())


def test_sql_says_what_the_database_counts(owner: psycopg.Connection[Any], owner_url: str) -> None:
    (families,) = owner.execute("select app_private.metrics()").fetchone()  # type: ignore[misc]
    assert {f["name"] for f in families} == DATABASE_SERIES
    assert all(f["type"] in ("gauge", "counter") and f["help"] for f in families)
    owner.execute("set search_path = procrastinate")  # procrastinate's triggers name its objects unqualified
    event = f"evt_metrics_{uuid.uuid4().hex}"
    job = owner.execute(
        "select app_private.defer('payments.apply_event', jsonb_build_object('provider', 'stripe', 'event_id', %s::text))",
        (event,),
    ).fetchone()
    owner.execute(  # received twice; its job is deferred, a minute ago
        "insert into app_private.webhook_events (provider, event_id, type, kind, object_id, deliveries)"
        " values ('stripe', %s, 'payment_intent.succeeded', 'payment', 'pi_metrics', 2)",
        (event,),
    )
    owner.execute(
        "update procrastinate.procrastinate_events set at = now() - interval '60 seconds' where job_id = %s", job
    )
    try:
        during = database_samples(owner_url)
        for status in ("doing", "failed"):  # a worker took it, and its last attempt failed
            owner.execute(f"update procrastinate.procrastinate_jobs set status = '{status}' where id = %s", job)
        failed = database_samples(owner_url)
    finally:
        owner.execute("delete from app_private.webhook_events where event_id = %s", (event,))
        owner.execute("delete from procrastinate.procrastinate_jobs where id = %s", job)

    assert value(during, "nexus_database_metrics_up") == 1
    assert value(during, "nexus_jobs", task="payments.apply_event", status="todo") >= 1
    assert value(during, "nexus_job_oldest_age_seconds", task="payments.apply_event") >= 60
    assert value(during, "nexus_webhook_events_received_total", provider="stripe") >= 1
    assert value(during, "nexus_webhook_events_duplicated_total", provider="stripe") >= 1
    assert ("nexus_webhook_events_failed", frozenset({("provider", "paypal")})) in during  # zero, and there
    assert (
        value(failed, "nexus_webhook_events_failed", provider="stripe")
        == value(during, "nexus_webhook_events_failed", provider="stripe") + 1
    )  # its retries ran out: failed
    assert {("status", s) for s in ("pending", "scheduled", "failed")} == {
        next(iter(labels)) for (name, labels) in during if name == "nexus_payouts"
    }
    assert ("nexus_emails_dead", frozenset()) in during
    assert value(during, "nexus_database_size_bytes") > 1_000_000


def test_a_redelivered_webhook_counts_its_deliveries(owner: psycopg.Connection[Any]) -> None:
    event = f"evt_again_{uuid.uuid4().hex}"
    call = "select api.webhook_receive('stripe', %s, 'charge.refunded')"

    replies = [owner.execute(call, (event,)).fetchone()[0]["new"] for _ in range(3)]  # type: ignore[index]
    (deliveries,) = owner.execute(  # type: ignore[misc]
        "delete from app_private.webhook_events where event_id = %s returning deliveries", (event,)
    ).fetchone()

    assert replies == [True, False, False]
    assert deliveries == 3


def test_a_database_that_does_not_answer_is_up_0_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    collector = metrics.DatabaseCollector(f"postgresql://nexus@127.0.0.1:{free_port()}/nexus?connect_timeout=2")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)

    with caplog.at_level(logging.DEBUG, logger="nexus.metrics"):
        first = parse(metrics.exposition(registry).decode())
        second = parse(metrics.exposition(registry).decode())

    assert value(first, "nexus_database_metrics_up") == 0 and value(second, "nexus_database_metrics_up") == 0
    assert not any(name == "nexus_payouts" for name, _ in first)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1


def test_the_worker_endpoint_serves_the_database_series_behind_the_token(settings: Settings) -> None:
    cfg = replace(settings, worker_metrics_port=free_port(), metrics_token=TOKEN)
    server = metrics.serve_worker(cfg)
    assert server is not None
    url = f"http://127.0.0.1:{cfg.worker_metrics_port}"
    try:
        without = httpx2.get(f"{url}/metrics", timeout=5)
        elsewhere = httpx2.get(f"{url}/other", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        scraped = httpx2.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    finally:
        server.shutdown()
        server.server_close()

    assert without.status_code == 401 and without.headers["www-authenticate"].startswith("Bearer")
    assert elsewhere.status_code == 404
    assert scraped.status_code == 200
    samples = parse(scraped.text)
    assert value(samples, "nexus_database_metrics_up") == 1
    per_task_or_replica = {
        "nexus_jobs",
        "nexus_job_oldest_age_seconds",
        "nexus_replica_lag_seconds",
        "nexus_replica_lag_bytes",
        "nexus_exchange_rates_age_seconds",  # none until the feed first gave rates
        "nexus_reconciliation_age_seconds",  # none until a reconciliation has ended
        "nexus_reconciliation_failing",
        "nexus_wal_archive_failures",  # none while archiving is off (the test clusters)
        "nexus_wal_archive_age_seconds",
    }
    assert DATABASE_SERIES - per_task_or_replica <= {re.sub("_total$", "", name) for name, _ in samples}
    assert metrics.serve_worker(replace(settings, worker_metrics_port=0)) is None  # off unless set


# --- the dashboard and the alerts read only series that exist ---------------------------------------

# node_exporter's, for the disk alert (and its name); the rest must be Nexus's own.
FOREIGN = {"node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_exporter"}


def series_names(kind: str, name: str) -> set[str]:
    """The names a family's samples carry in the exposition."""
    return {
        "counter": {name + "_total"},
        "histogram": {name + "_bucket", name + "_count", name + "_sum"},
    }.get(kind, {name})


def test_the_dashboard_and_the_alert_rules_use_only_series_that_exist(owner: psycopg.Connection[Any]) -> None:
    (database,) = owner.execute("select app_private.metrics()").fetchone()  # type: ignore[misc]
    exposed = {n for f in metrics.enable().registry.collect() for n in series_names(f.type, f.name)}
    exposed |= {n for f in database for n in series_names(f["type"], f["name"])}
    exposed |= {"nexus_database_metrics_up", "nexus_database_metrics_seconds"}
    used: dict[str, set[str]] = {}
    for path in [ROOT / "deploy" / "grafana" / "nexus.json", *sorted((ROOT / "deploy" / "prometheus").glob("*.yml"))]:
        for name in re.findall(r"\b(nexus_[a-z_]+|node_[a-z_]+)\b", path.read_text()):
            used.setdefault(name, set()).add(path.name)

    unknown = {name: files for name, files in used.items() if name not in exposed | FOREIGN}

    assert len(used) >= 15 and unknown == {}


# --- several processes, one service -----------------------------------------------------------------


def test_processes_add_up_and_a_dead_ones_gauges_are_forgotten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What api.serve's workers do: each writes its series to PROMETHEUS_MULTIPROC_DIR; the scrape adds
    them up. Two processes count refusals and hold a gauge, then exit without a word (killed)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = "from api import metrics\ns = metrics.enable()\ns.rate_limited.labels('read').inc(2)\ns.in_flight.set(3)\n"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], cwd=ROOT, env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    samples = parse(metrics.exposition().decode())

    assert value(samples, "nexus_rate_limited_total", limit="read") == 4  # counters: every process, dead or alive
    assert value(samples, "nexus_http_requests_in_flight") == 0  # gauges: the live ones only
    assert not list(tmp_path.glob("gauge_live*"))


def test_metrics_open_to_the_network_need_a_token(settings: Settings) -> None:
    fine = replace(
        settings,
        jwt_keys={"k1": "x" * 40},
        authenticator_password="s3cret",
        cors_origins=["https://app.example"],
        public_url="https://api.example",
        metrics_port=9180,
    )

    assert unsafe(fine) == []  # loopback (METRICS_HOST's default)
    assert any("METRICS_HOST" in p for p in unsafe(replace(fine, metrics_host="0.0.0.0")))
    assert unsafe(replace(fine, metrics_host="0.0.0.0", metrics_token=TOKEN)) == []
    assert unsafe(replace(fine, metrics_host="::1")) == []
