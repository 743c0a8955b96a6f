"""The load benchmark (make bench): the API over HTTP against the same SQL run directly.

One API server (python -m api.serve, against the bench database `nexus_bench`
built by bench/data.py) serves every workload. Each workload is driven

  * over HTTP by wrk (a separate process; bench/wrk.lua varies the URLs), and
  * over SQL by pgbench with the same function call in the same transaction the API
    sends (pipelined before one Sync, one implicit transaction: set_config
    role/claims/read-only, no rate-limit token as reads are leased; the call),
    prepared statements (-M prepared, as the API's pool), the same number of
    connections and the same duration,

after a warm-up of each. It prints requests/s, p50 and p99 for both, and the ratio
API/SQL next to the target (catalog >= 0.9x, detail >= 0.6x), and writes the table
to bench/out/results.md. When api.booking_create exists it adds the booking workloads:
successful bookings/s on distinct listings, and a contention run (rounds of concurrent
requests for one listing and overlapping stays) reporting the conflict rate. `photos`
(bench/photos.py, issue 24): uploads of 12 MP phone photos over HTTP, the worker's variant
job, and the bytes a phone downloads for a search page's 20 thumbnails, before and after.

Every load targets 127.0.0.1 or the local Unix socket, and every loop is bounded in time.

The shared rate limit's cost (issue 14): the workloads named by --limit-cost (default
detail) are also served by a second API with RATE_LIMITS=false, in interleaved slices (on,
off, off, on, ...: a drift in the machine's load weighs on both alike), and the bench prints
requests/s with and without the limit and their ratio. --rate-limits off serves every
workload without the limit.

Metrics' cost (issue 25): the workloads named by --metrics-cost (default detail and the seed
search) are also served by an API with metrics on (METRICS_PORT: every request observed, the
workers' series in PROMETHEUS_MULTIPROC_DIR), in the same interleaved slices against the plain
one, and the bench prints requests/s with and without and their ratio (target: under 5 %).
Tracing's likewise (--tracing-cost, default detail and the seed search): an API with
OTEL_EXPORTER_OTLP_ENDPOINT set to an OTLP/HTTP receiver in this process (every request's spans
made, batched, encoded and sent; --tracing-sample 0.1 keeps one trace in ten instead of all).

Usage: python -m bench.run [--duration 10] [--warmup 2] [--connections 8] [--workers 2]
                           [--only healthz,search,browse,deep,cursor,filter,bbox,radius,facets,detail,signed,
                                   cached,bookings,photos]
                           [--rate-limits on|off] [--limit-cost detail,... | --limit-cost '']
                           [--metrics-cost detail,search,... | --metrics-cost '']
                           [--tracing-cost detail,search,... | --tracing-cost ''] [--tracing-sample 1.0]
                           [--cache-max-bytes N] [--cache-ttl S] [--cache-warmup S] [--cache-fill F]
                           [--p99-connections 32]
                           [--no-bookings] [--no-migrate]

The cached workloads (`cached`) measure a warm cache: each API is warmed by sweeps over its URL
list before its Zipf mix is measured (`--only cached,bbox` runs only bbox's cached run), and the hit ratio printed is the measured window's
(the workers' counters, logged on SIGUSR1, before and after it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import glob
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

from bench.data import DBNAME, IDS_FILE, OUT, ROOT, RUN, data_version, owner_url, superuser_url

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PGBENCH = str(PG_BIN / "pgbench") if (PG_BIN / "pgbench").exists() else (shutil.which("pgbench") or "pgbench")
WRK = shutil.which("wrk") or "wrk"
LUA = ROOT / "bench" / "wrk.lua"
TOKENS_FILE = OUT / "tokens.txt"
SIGNED_FILE = OUT / "signed.txt"  # the signed-in workload's access tokens (write_signed)
SIGNED_SESSIONS = 500  # guests 2011..2510, a session each
CURSORS_FILE = OUT / "cursors.txt"  # the cursor workload's cursors (write_cursors)
ZIPF_DETAIL_FILE = OUT / "zipf-detail.txt"  # the cached workloads' URLs, most popular first (write_zipf)
ZIPF_SEARCH_FILE = OUT / "zipf-search.txt"
ZIPF_BROWSE_FILE = OUT / "zipf-browse.txt"
ZIPF_DEEP_FILE = OUT / "zipf-deep.txt"
ZIPF_CURSOR_FILE = OUT / "zipf-cursor.txt"
ZIPF_FILTER_FILE = OUT / "zipf-filter.txt"
ZIPF_BBOX_FILE = OUT / "zipf-bbox.txt"
ZIPF_RADIUS_FILE = OUT / "zipf-radius.txt"
ZIPF_FACETS_FILE = OUT / "zipf-facets.txt"
# What each worker of an API with the catalog cache logs on SIGUSR1 (api/cache.py).
CACHE_LINE = re.compile(r"catalog cache: (\d+) hits, (\d+) misses, (\d+) entries, (\d+) bytes \(pid (\d+)\)")
PUBLISHED = 95_000  # listings 1..100000 except every 20th (bench/data.sql)
MEDIA_ROOT = OUT / "media"  # the bench API's photos (bench/photos.py uploads them and removes them again)

LIST_CALL = "select count, page, page_size, results from api.product_list({args})"

# The transaction the API sends for an anonymous GET (api/db.py), pipelined in one round trip.
# Reads are admitted under the worker's lease (api/ratelimit.py, rate_limits.lease): the API
# passes nulls and takes no token in the transaction; what it admitted is debited in one
# transaction per worker every 0.2 s, which this transaction does not include.
TX = """\\startpipeline
select app.rate_take(null, null), set_config('role', :role, true), \
set_config('request.jwt.claims', '', true), set_config('nexus.media_url', '/media/', true), \
set_config('statement_timeout', '3s', true), set_config('transaction_read_only', :ro, true), \
set_config('nexus.request_id', '0123456789abcdef0123456789abcdef', true);
{call};
\\endpipeline
"""

# The transaction the API sends for a signed-in GET: the same, as guest with the token's claims
# (one of the SIGNED_SESSIONS guests at random, as the wrk side), and app.check_session() before the call.
TX_SIGNED = """\\set k random(1, {n})
\\startpipeline
select app.rate_take(null, null), set_config('role', 'guest', true), \
set_config('request.jwt.claims', (array[{claims}])[:k], true), set_config('nexus.media_url', '/media/', true), \
set_config('statement_timeout', '5s', true), set_config('transaction_read_only', 'on', true), \
set_config('nexus.request_id', '0123456789abcdef0123456789abcdef', true);
select app.check_session();
{call};
\\endpipeline
"""


@dataclass
class Workload:
    name: str
    title: str
    path: str  # for wrk; {page} is drawn from [lo, hi] in page mode
    call: str  # the SQL call, pgbench :variables bound as parameters
    target: float | None
    mode: str = "fixed"
    pgbench_set: str = ""  # \set lines before the transaction
    defines: dict[str, str] = field(default_factory=dict)  # pgbench -D name=value (text parameters)
    lo: int = 1
    hi: int = 1


WORKLOADS = [
    Workload(
        "search",
        "seed sample query: category=electronics&ordering=-price&search=laptop",
        "/api/products/?category=electronics&ordering=-price&search=laptop",
        LIST_CALL.format(args="p_category => :category, p_search => :search, p_ordering => :ordering"),
        0.9,
        defines={"category": "electronics", "search": "laptop", "ordering": "-price"},
    ),
    Workload(
        "browse", "browse, page 1 (default ordering -created_at)", "/api/products/", LIST_CALL.format(args=""), 0.9
    ),
    Workload(
        "deep",
        "deep page: a random page in 1901-2100 (20 per page, offset ~40k)",
        "/api/products/?page={page}",
        LIST_CALL.format(args="p_page => :page"),
        0.9,
        mode="page",
        pgbench_set="\\set page random(1901, 2100)\n",
        lo=1901,
        hi=2100,
    ),
    Workload(
        "cursor",
        "deep page by cursor: the page after a random page in 1900-2099 (keyset, no OFFSET)",
        "/api/products/?cursor={cursor}",
        LIST_CALL.format(args="p_cursor => :cursor"),
        0.9,
        mode="cursor",
    ),
    Workload(
        "filter",
        "filtered: min_price=100&max_price=300&guests=4&amenities=wifi,pool",
        "/api/products/?min_price=100&max_price=300&guests=4&amenities=wifi,pool",
        LIST_CALL.format(
            args="p_min_price => :min_price, p_max_price => :max_price, p_guests => :guests, p_amenities => :amenities"
        ),
        0.9,
        defines={"min_price": "100", "max_price": "300", "guests": "4", "amenities": "wifi,pool"},
    ),
    Workload(
        "detail",
        "detail: /api/products/<random published id>/",
        "",
        # Listing i has id md5('product:' || i); every 20th is unpublished, so the k-th
        # published one is i = k + (k - 1) / 19. The md5 costs about a microsecond.
        "select api.product_get(p_id => md5('product:' || :i)::uuid::text)",
        0.6,
        mode="detail",
        pgbench_set=f"\\set k random(1, {PUBLISHED})\n\\set i :k + (:k - 1) / 19\n",
    ),
    # The map (issue 26): a city's viewport, a 5 km radius nearest first, the seed query's facets.
    Workload(
        "bbox",
        "map viewport: central Lagos, bbox=3.28,6.38,3.50,6.56 (~4,800 listings; default ordering)",
        "/api/products/?bbox=3.28,6.38,3.50,6.56",
        LIST_CALL.format(args="p_bbox => :bbox"),
        0.9,
        defines={"bbox": "3.28,6.38,3.50,6.56"},
    ),
    Workload(
        "radius",
        "5 km around central Lagos, nearest first: near=6.4550,3.3841&radius_km=5&ordering=distance",
        "/api/products/?near=6.4550,3.3841&radius_km=5&ordering=distance",
        LIST_CALL.format(args="p_near => :near, p_radius_km => :radius_km, p_ordering => :ordering"),
        0.9,
        defines={"near": "6.4550,3.3841", "radius_km": "5", "ordering": "distance"},
    ),
    Workload(
        "facets",
        "facets of the seed query: /api/products/facets/?category=electronics&search=laptop",
        "/api/products/facets/?category=electronics&search=laptop",
        "select api.product_facets(p_category => :category, p_search => :search)",
        0.9,
        defines={"category": "electronics", "search": "laptop"},
    ),
    Workload(
        "signed",
        "signed in: GET /api/users/me/ as one of 500 guests (app.check_session: user, role, epoch, live session)",
        "/api/users/me/",
        "select api.me()",
        None,
        mode="signed",
    ),
]


@dataclass
class Stats:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int = 0
    note: str = ""
    latencies_us: list[int] = field(default_factory=list, repr=False)
    seconds: float = 0.0


def percentile(sorted_us: list[int], q: float) -> float:
    """The q-quantile (nearest rank) of sorted microseconds, in milliseconds."""
    if not sorted_us:
        return float("nan")
    return sorted_us[min(len(sorted_us) - 1, math.ceil(q * len(sorted_us)) - 1)] / 1000


def merge(parts: list[Stats]) -> Stats:
    """pgbench runs measured in slices (before and after the API run) as one."""
    lat = sorted(x for p in parts for x in p.latencies_us)
    seconds = sum(p.seconds for p in parts)
    return Stats(
        rps=sum(p.rps * p.seconds for p in parts) / seconds,
        p50_ms=percentile(lat, 0.50),
        p99_ms=percentile(lat, 0.99),
        requests=sum(p.requests for p in parts),
        errors=sum(p.errors for p in parts),
        latencies_us=lat,
        seconds=seconds,
    )


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, flush=True)


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def has_function(conn: psycopg.Connection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    row = conn.execute(
        "select exists (select from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = %s and p.proname = %s)",
        (schema, name),
    ).fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------------------
# the API server
# --------------------------------------------------------------------------------------


class Server:
    """uvicorn serving api.main:app against nexus_bench on 127.0.0.1:<free port>."""

    def __init__(
        self,
        workers: int,
        pool: int,
        log_path: Path,
        rate_limits: bool = True,
        cache: tuple[int, float] | None = None,  # the catalog cache's (max bytes, ttl seconds); None: off
        env_extra: dict[str, str] | None = None,  # settings of this server alone (METRICS_PORT, ...)
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            DATABASE_URL=owner_url(),
            APP_DATABASE_URL="",
            DB_POOL_MIN=str(pool),
            DB_POOL_MAX=str(pool),
            NEXUS_ENV="development",  # the bench database uses the development defaults
            ACCESS_LOG="false",
            TRUSTED_PROXIES="127.0.0.1",  # wrk.lua names one of 10,000 clients in X-Forwarded-For
            DRAIN_SECONDS="0",  # stopped between workloads: no balancer to tell
            # The cold path: every request reaches PostgreSQL, as the SQL it is compared with; the
            # cached workloads serve with the catalog cache on (--cache-max-bytes, --cache-ttl).
            CACHE_MAX_BYTES=str(cache[0]) if cache else "0",
            CACHE_TTL_SECONDS=str(cache[1] if cache else 60),
            RATE_LIMITS="true" if rate_limits else "false",
            MEDIA_STORAGE="local",  # the photos workload's files: a folder of its own, not the dev API's
            MEDIA_ROOT=str(MEDIA_ROOT),
            MEDIA_URL="/media/",
        )
        env.update(env_extra or {})
        self.log = open(log_path, "wb")  # closed in stop()
        # The production entry point, as deployed (api/serve.py: N workers, TCP_NODELAY kept).
        cmd = [
            sys.executable,
            "-m",
            "api.serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the API exited with {self.proc.returncode}; see {self.log.name}")
            try:
                status, body = http("GET", self.base + "/readyz")
                if status == 200:
                    return
                last = f"{status} {body[:200]!r}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"the API was not ready within {timeout:.0f} s: {last}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


# --------------------------------------------------------------------------------------
# drivers
# --------------------------------------------------------------------------------------


def wrk(base: str, w: Workload, seconds: float, connections: int, threads: int, extra_env: dict[str, str]) -> Stats:
    env = dict(os.environ)
    env.update(
        BENCH_MODE=w.mode,
        BENCH_PATH=w.path,
        BENCH_LO=str(w.lo),
        BENCH_HI=str(w.hi),
        BENCH_IDS=str(IDS_FILE),
        BENCH_LINES=str(CURSORS_FILE),
        BENCH_THREADS=str(threads),
    )
    if w.mode == "signed":
        env["BENCH_TOKENS"] = str(SIGNED_FILE)  # wrk.lua reads the token before each tab
    env.update(extra_env)
    cmd = [WRK, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s", "-s", str(LUA)]
    cmd.append(base + (w.path if w.mode == "fixed" else "/"))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"^BENCH_JSON (.*)$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
    r = json.loads(m.group(1))
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return Stats(
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        requests=r["requests"],
        errors=errors,
        note=f"{r['status']} non-2xx" if r["status"] else "",
    )


def write_cursors() -> None:
    """The cursor after each of pages 1900-2099 of the default ordering (-created_at), one a line.

    Derived in one query, with app.product_list_sql's encoding (base64url of the JSON
    [ordering, created_at in microseconds, id]), rather than by walking 2,100 pages;
    check_workload proves the API takes them.
    """
    with psycopg.connect(owner_url()) as conn:
        rows = conn.execute(
            """select translate(rtrim(encode(convert_to(json_build_array('-created_at',
                        ((extract(epoch from created_at) * 1000000)::bigint)::text, id)::text, 'utf8'),
                      'base64'), '='), E'+/\\n', '-_')
               from (select created_at, id, row_number() over (order by created_at desc, id desc) as n
                     from app.products where published) x
               where n % 20 = 0 and n / 20 between 1900 and 2099 order by n"""
        ).fetchall()
    CURSORS_FILE.write_text("".join(r[0] + "\n" for r in rows))


def write_zipf() -> None:
    """The cached workloads' URLs, one a line, the most popular first (wrk.lua draws the k-th with
    probability ~ 1/k): every published listing's detail; searches over every category x 10
    words x 3 orderings; browse pages 1-100 (page 1 first); the deep workload's pages 1901-2100
    and the cursor workload's 200 cursors (shuffled); 100 filter combinations (5 price ranges x
    4 guest counts x 5 amenity sets, shuffled)."""
    rng = random.Random(2026)
    ZIPF_BROWSE_FILE.write_text("/api/products/\n" + "".join(f"/api/products/?page={n}\n" for n in range(2, 101)))
    deep = [f"/api/products/?page={n}" for n in range(1901, 2101)]
    rng.shuffle(deep)
    ZIPF_DEEP_FILE.write_text("".join(u + "\n" for u in deep))
    cursors = [f"/api/products/?cursor={c}" for c in CURSORS_FILE.read_text().split()]
    rng.shuffle(cursors)
    ZIPF_CURSOR_FILE.write_text("".join(u + "\n" for u in cursors))
    filters = [
        f"/api/products/?min_price={lo}&max_price={hi}&guests={g}&amenities={a}"
        for lo, hi in ((10, 50), (50, 100), (100, 300), (300, 600), (600, 1000))
        for g in (1, 2, 4, 6)
        for a in ("wifi", "wifi,pool", "kitchen", "parking,wifi", "pool,kitchen")
    ]
    rng.shuffle(filters)
    ZIPF_FILTER_FILE.write_text("".join(u + "\n" for u in filters))
    ZIPF_DETAIL_FILE.write_text("".join(f"/api/products/{i}/\n" for i in IDS_FILE.read_text().split()))
    words = ("laptop", "sea", "villa", "quiet", "garden", "pool", "city", "loft", "beach", "modern")
    with psycopg.connect(owner_url()) as conn:
        slugs = [r[0] for r in conn.execute("select slug from app.categories order by slug")]
    urls = [
        f"/api/products/?category={slug}&ordering={ordering}&search={word}"
        for word in words
        for slug in slugs
        for ordering in ("-price", "price", "-rating")
    ]
    random.Random(2026).shuffle(urls)
    ZIPF_SEARCH_FILE.write_text("".join(u + "\n" for u in urls))
    # The map: every city's viewport at three zooms, 2, 5 and 10 km around its centre nearest
    # first, and the facets of the search mix's category x word pairs.
    with psycopg.connect(owner_url()) as conn:
        cities = conn.execute(
            """select avg(map_latitude), avg(map_longitude) from app.products where map_latitude is not null
               group by split_part(location, ', ', 2), split_part(location, ', ', 3) order by 1, 2"""
        ).fetchall()
    boxes = [
        f"/api/products/?bbox={lng - d / math.cos(math.radians(lat)):.4f},{lat - d:.4f},"
        f"{lng + d / math.cos(math.radians(lat)):.4f},{lat + d:.4f}"
        for lat, lng in cities
        for d in (0.05, 0.1, 0.2)
    ]
    rng.shuffle(boxes)
    ZIPF_BBOX_FILE.write_text("".join(u + "\n" for u in boxes))
    radii = [
        f"/api/products/?near={lat:.4f},{lng:.4f}&radius_km={r}&ordering=distance"
        for lat, lng in cities
        for r in (2, 5, 10)
    ]
    rng.shuffle(radii)
    ZIPF_RADIUS_FILE.write_text("".join(u + "\n" for u in radii))
    facets = [f"/api/products/facets/?category={slug}&search={word}" for word in words for slug in slugs]
    rng.shuffle(facets)
    ZIPF_FACETS_FILE.write_text("".join(u + "\n" for u in facets))


@dataclass
class CacheCounts:
    hits: int
    misses: int
    entries: int
    bytes: int

    def __sub__(self, other: CacheCounts) -> CacheCounts:
        return CacheCounts(self.hits - other.hits, self.misses - other.misses, self.entries, self.bytes)

    @property
    def ratio(self) -> float:
        return self.hits / max(1, self.hits + self.misses)


def cache_counts(server: Server, workers: int) -> dict[int, CacheCounts]:
    """Each worker's catalog cache counters, now: SIGUSR1 makes each log them (api/cache.py)."""
    path = Path(server.log.name)
    deadline = time.monotonic() + 30
    while len(re.findall(r"Application startup complete", path.read_text())) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API's {workers} workers did not all start; see {path}")
        time.sleep(0.1)
    text = path.read_text()
    pids = [int(p) for p in re.findall(r"Started server process \[(\d+)\]", text)][-workers:]
    seen = len(CACHE_LINE.findall(text))
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)
    while len(lines := CACHE_LINE.findall(path.read_text())) < seen + len(pids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API's workers did not report their cache counters; see {path}")
        time.sleep(0.05)
    return {int(m[4]): CacheCounts(*map(int, m[:4])) for m in lines[seen:]}


def window(before: dict[int, CacheCounts], after: dict[int, CacheCounts]) -> CacheCounts:
    """The counters of all workers between two readings (entries and bytes: their sum at the second)."""
    total = CacheCounts(0, 0, 0, 0)
    for pid, now in after.items():
        d = now - before.get(pid, CacheCounts(0, 0, 0, 0))
        total = CacheCounts(
            total.hits + d.hits, total.misses + d.misses, total.entries + d.entries, total.bytes + d.bytes
        )
    return total


def cached(args: argparse.Namespace, name: str, lines: Path) -> tuple[Stats, CacheCounts, list[float], str]:
    """A Zipf mix of URLs against an API with the catalog cache on, once the cache is warm: its rate, the
    hit ratio of the measured window (the workers' counters before and after it), /healthz's rate on the
    same server in two halves just before and after the window (so a drift in the machine's load weighs
    on both), and what the warm-up did.

    Warm-up: 5 s slices of sweeps over the URL list (most popular first, every URL in turn, each
    slice on new connections, so each worker sees its share of every URL), until a slice misses
    less than --cache-fill of its requests or --cache-warmup seconds have passed; then the usual
    --warmup of the Zipf mix itself. A server that has run this traffic for a while holds the
    long tail too; a 10 s run from a cold cache measures mostly the filling.
    """
    server = Server(args.workers, args.pool, OUT / f"api-{name}.log", cache=(args.cache_max_bytes, args.cache_ttl))
    w = Workload(name, name, "/", "", None, mode="zipf")
    env = {"BENCH_LINES": str(lines)}
    try:
        server.wait_ready()
        started, offset, slices = time.monotonic(), 0, 0
        first = last = cache_counts(server, args.workers)
        sweep = replace(w, mode="sweep")
        while True:
            st = wrk(server.base, sweep, 5, args.connections, args.threads, {**env, "BENCH_OFFSET": str(offset)})
            offset, slices = offset + st.requests, slices + 1
            now = cache_counts(server, args.workers)
            if window(last, now).ratio >= 1 - args.cache_fill or time.monotonic() - started > args.cache_warmup:
                break
            last = now
        warm_seconds, swept = time.monotonic() - started, window(first, now)
        wrk(server.base, w, args.warmup, args.connections, args.threads, env)
        hz = Workload("healthz", "healthz", "/healthz", "", None)
        healthz = [wrk(server.base, hz, args.duration / 2, args.connections, args.threads, {}).rps]
        before = cache_counts(server, args.workers)
        st = wrk(server.base, w, args.duration, args.connections, args.threads, env)
        measured = window(before, cache_counts(server, args.workers))
        healthz.append(wrk(server.base, hz, args.duration / 2, args.connections, args.threads, {}).rps)
    finally:
        server.stop()
    n = len(lines.read_text().split())
    warmed = (
        f"warm-up {warm_seconds:.0f} s: {slices} slice(s) of sweeps, {offset:,} requests "
        f"({offset / n:.1f} passes over {n:,} URLs), {swept.misses:,} misses, last slice hit {window(last, now).ratio:.1%}; "
        f"then {args.warmup:g} s of the Zipf mix; at the measured window's start {per_worker(before)}"
    )
    return st, measured, healthz, warmed


def per_worker(counts: dict[int, CacheCounts]) -> str:
    return ", ".join(f"{c.entries:,} entries / {c.bytes / 2**20:.0f} MiB" for c in counts.values()) + " per worker"


def pgbench_script(w: Workload) -> str:
    if w.mode == "signed":
        claims = [line.split("\t", 1)[1] for line in SIGNED_FILE.read_text().splitlines() if line]
        listed = ",".join("'" + c.replace("'", "''") + "'" for c in claims)
        return TX_SIGNED.format(n=len(claims), claims=listed, call=w.call)
    if w.mode == "cursor":  # one of the cursors at random, picked inside the call (prepared once)
        cursors = CURSORS_FILE.read_text().split()
        listed = ",".join(f"'{c}'" for c in cursors)
        call = w.call.replace(":cursor", f"(array[{listed}])[:k]")
        return f"\\set k random(1, {len(cursors)})\n" + TX.format(call=call)
    return w.pgbench_set + TX.format(call=w.call)


def pgbench(w: Workload, seconds: float, connections: int, threads: int, workdir: Path, logged: bool) -> Stats:
    script = workdir / f"{w.name}.sql"
    script.write_text(pgbench_script(w))
    defines = {"role": "anon", "ro": "on", **w.defines}  # pgbench -D cannot pass '' (claims)
    cmd = [
        PGBENCH,
        "-h",
        str(RUN),
        "-U",
        "authenticator",
        "-n",
        "-M",
        "prepared",
        "-c",
        str(connections),
        "-j",
        str(threads),
        "-T",
        str(max(1, round(seconds))),
        "-f",
        str(script),
    ]
    for k, v in defines.items():
        cmd += ["-D", f"{k}={v}"]
    prefix = workdir / f"log-{w.name}"
    for old in glob.glob(f"{prefix}.*"):
        os.unlink(old)
    if logged:
        cmd += ["-l", "--log-prefix", str(prefix)]
    cmd.append(DBNAME)
    # pgbench prepares every statement of a pipeline when it connects, before the script's
    # set_config('role', ...) runs; authenticator (NOINHERIT) could not even see schema api
    # then. Starting the session as anon lets the prepare succeed; each transaction still
    # switches role (and sets the media URL photo URLs are built from) itself, exactly as the API does.
    env = {**os.environ, "PGOPTIONS": "-c role=anon"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, cwd=workdir, env=env)
    tps = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", out.stdout, re.M)
    done = re.search(r"^number of transactions actually processed: (\d+)", out.stdout, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", out.stdout, re.M)
    if out.returncode != 0 or not tps or not done:
        raise RuntimeError(f"pgbench failed ({out.returncode}): {out.stdout[-600:]} {out.stderr[-600:]}")
    lat: list[int] = []
    if logged:
        for path in glob.glob(f"{prefix}.*"):
            with open(path) as f:
                lat.extend(int(line.split()[2]) for line in f if line.strip())
    lat.sort()
    return Stats(
        rps=float(tps.group(1)),
        p50_ms=percentile(lat, 0.50),
        p99_ms=percentile(lat, 0.99),
        requests=int(done.group(1)),
        errors=int(failed.group(1)) if failed else 0,
        latencies_us=lat,
        seconds=max(1, round(seconds)),
    )


# --------------------------------------------------------------------------------------
# bookings
# --------------------------------------------------------------------------------------


def write_signed() -> None:
    """The signed-in workload's sessions: SIGNED_SESSIONS guests, a token and its claims each (tab-separated)."""
    import jwt

    tokens = sign_tokens(2011, 2010 + SIGNED_SESSIONS)
    # ": " with a space: pgbench would read :name in the script as one of its variables
    claims = [json.dumps(jwt.decode(t, options={"verify_signature": False})) for t in tokens]
    SIGNED_FILE.write_text("".join(f"{t}\t{c}\n" for t, c in zip(tokens, claims, strict=True)))


def sign_tokens(first: int, last: int, role: str = "guest") -> list[str]:
    """Access tokens for bench users first..last of `role` (1..2000 are hosts, 2011.. guests), valid
    for an hour, each in a new session begun as a DBA would (a live session is what app.check_session
    asks of every signed-in request)."""
    from api.auth import sign_access
    from api.settings import settings

    cfg = replace(settings, access_ttl=3600)
    with psycopg.connect(owner_url()) as conn:
        rows = conn.execute(
            "select u.id::text, app_private.issue_refresh(u.id) ->> 'session' from app.users u"
            " where u.id = any(array(select md5('user:' || i)::uuid from generate_series(%s::int, %s::int) i))"
            " and u.role = %s::app.user_role and u.is_active order by u.id",
            (first, last, role),
        ).fetchall()
    return [sign_access(cfg, user_id, role, session) for user_id, session in rows]


def clear_bookings() -> None:
    """Remove the bookings earlier runs left (bench database only)."""
    with psycopg.connect(owner_url()) as conn:
        tables = [
            t
            for t in ("app.bookings", "app.calendar_entries", "app_private.idempotency_keys")
            if conn.execute("select to_regclass(%s)", (t,)).fetchone() not in (None, (None,))
        ]
        if tables:
            conn.execute(f"truncate {', '.join(tables)} cascade")


async def _http_post(host: str, port: int, path: str, token: str, body: bytes) -> tuple[int, float]:
    """One POST on its own connection; returns (status, seconds). Bounded by a timeout."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        return await asyncio.wait_for(_exchange(reader, writer, head + body), 15)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    writer.write(data)
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()  # Connection: close -> read to EOF
    return int(status_line.split()[1]), time.perf_counter() - started


async def contention(
    port: int, ids: list[str], tokens: list[str], rounds: int, per_round: int, start: dt.date
) -> dict[str, Any]:
    """Rounds of `per_round` requests released together, each for the same listing and
    pairwise-overlapping stays (all contain the night start+2); one should win per round."""
    statuses: list[int] = []
    latencies: list[float] = []
    winners: list[int] = []
    t0 = time.perf_counter()
    for r in range(rounds):
        product = ids[-1 - r]
        barrier = asyncio.Event()

        async def one(
            j: int, r: int = r, product: str = product, barrier: asyncio.Event = barrier
        ) -> tuple[int, float]:
            s = start + dt.timedelta(days=j % 3)
            body = json.dumps(
                {
                    "product_id": product,
                    "start_date": s.isoformat(),
                    "end_date": (s + dt.timedelta(days=3)).isoformat(),
                    "guests": 1,
                }
            ).encode()
            await barrier.wait()
            return await _http_post(
                "127.0.0.1", port, "/api/bookings/", tokens[(r * per_round + j) % len(tokens)], body
            )

        tasks = [asyncio.create_task(one(j)) for j in range(per_round)]
        await asyncio.sleep(0.05)
        barrier.set()
        results = await asyncio.gather(*tasks)
        statuses += [s for s, _ in results]
        latencies += [t for _, t in results]
        winners.append(sum(1 for s, _ in results if s == 201))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "attempts": len(statuses),
        "created": statuses.count(201),
        "conflicts": statuses.count(409),
        "other": len(statuses) - statuses.count(201) - statuses.count(409),
        "other_codes": sorted({s for s in statuses if s not in (201, 409)}),
        "rounds": rounds,
        "per_round": per_round,
        "rounds_one_winner": sum(1 for w in winners if w == 1),
        "elapsed": elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)] * 1000,
    }


def bookings(server: Server, args: argparse.Namespace) -> list[str]:
    """The booking workloads; returns report lines (markdown)."""
    with psycopg.connect(owner_url()) as conn:
        if not has_function(conn, "api.booking_create"):
            log("bookings: not available (no api.booking_create in nexus_bench)")
            return ["bookings: not available (no api.booking_create)"]
    ids = [line for line in IDS_FILE.read_text().split() if line]
    tokens = sign_tokens(2011, 10000)
    TOKENS_FILE.write_text("\n".join(tokens) + "\n")
    today = dt.datetime.now(dt.UTC).date()
    clear_bookings()
    # One request first: the route must answer 201.
    s0 = today + dt.timedelta(days=20)
    body = json.dumps(
        {
            "product_id": ids[0],
            "start_date": s0.isoformat(),
            "end_date": (s0 + dt.timedelta(days=3)).isoformat(),
            "guests": 1,
        }
    ).encode()
    status, resp = http(
        "POST",
        server.base + "/api/bookings/",
        body,
        {"Content-Type": "application/json", "Authorization": "Bearer " + tokens[-1]},
    )
    if status != 201:
        log(f"bookings: POST /api/bookings/ answered {status}: {resp[:300]!r}; skipped")
        return [f"bookings: skipped, POST /api/bookings/ answered {status}"]
    clear_bookings()
    lines = []
    w = Workload("book", "bookings on distinct listings", "", "", None, mode="book")
    warm = {
        "BENCH_TOKENS": str(TOKENS_FILE),
        "BENCH_START": (today + dt.timedelta(days=30)).isoformat(),
        "BENCH_END": (today + dt.timedelta(days=33)).isoformat(),
    }
    measure_start = today + dt.timedelta(days=40)
    measured = {
        **warm,
        "BENCH_START": measure_start.isoformat(),
        "BENCH_END": (measure_start + dt.timedelta(days=3)).isoformat(),
    }
    log(f"\n== bookings: distinct listings, {args.connections} connections, load {loadavg()}")
    wrk(server.base, w, args.warmup, args.connections, args.threads, warm)
    st = wrk(server.base, w, args.duration, args.connections, args.threads, measured)
    with psycopg.connect(owner_url()) as conn:
        row = conn.execute("select count(*) from app.bookings where start_date = %s", (measure_start,)).fetchone()
    created = int(row[0]) if row else 0
    ok_rps = created / args.duration
    log(
        f"   API  {st.rps:8.0f} req/s  p50 {st.p50_ms:7.2f} ms  p99 {st.p99_ms:7.2f} ms  "
        f"created {created} ({ok_rps:.0f}/s)  non-2xx {st.errors}"
    )
    lines.append(
        f"| bookings, distinct listings | {st.rps:,.0f} | {st.p50_ms:.2f} | {st.p99_ms:.2f} | "
        f"{created:,} created = {ok_rps:,.0f}/s | non-2xx or errors: {st.errors} |"
    )
    clear_bookings()
    log(f"\n== bookings: contention, {args.rounds} rounds x {args.per_round} concurrent, load {loadavg()}")
    c = asyncio.run(
        asyncio.wait_for(
            contention(server.port, ids, tokens[::-1], args.rounds, args.per_round, today + dt.timedelta(days=60)),
            timeout=120,
        )
    )
    rate = c["conflicts"] / c["attempts"] if c["attempts"] else float("nan")
    log(
        f"   {c['attempts']} attempts in {c['elapsed']:.1f} s: {c['created']} created, {c['conflicts']} 409, "
        f"{c['other']} other {c['other_codes']}; conflict rate {rate:.1%} (expected "
        f"{(c['per_round'] - 1) / c['per_round']:.1%}); rounds with exactly one winner: "
        f"{c['rounds_one_winner']}/{c['rounds']}; p50 {c['p50_ms']:.1f} ms p99 {c['p99_ms']:.1f} ms"
    )
    lines.append(
        f"| bookings, contention ({c['rounds']} rounds x {c['per_round']} concurrent, one listing, overlapping stays) "
        f"| {c['attempts'] / c['elapsed']:,.0f} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} | "
        f"{c['created']} created, {c['conflicts']} x 409, {c['other']} other | conflict rate {rate:.1%} "
        f"(ideal {(c['per_round'] - 1) / c['per_round']:.1%}); exactly one winner in "
        f"{c['rounds_one_winner']}/{c['rounds']} rounds |"
    )
    clear_bookings()
    return lines


def limit_cost(on: Server, off: Server, w: Workload, args: argparse.Namespace) -> tuple[Stats, Stats]:
    """The same workload against the API with and without the rate limit, interleaved in
    slices (on, off, off, on, on, off, off, on): requests/s of each over all its slices."""
    slices = 4
    seconds = float(max(1, round(args.duration / 2)))  # wrk takes whole seconds
    wrk(off.base, w, args.warmup, args.connections, args.threads, {})
    runs: dict[bool, list[Stats]] = {True: [], False: []}
    for i in range(slices * 2):
        limited = (i % 4) in (0, 3)
        runs[limited].append(wrk((on if limited else off).base, w, seconds, args.connections, args.threads, {}))

    def total(parts: list[Stats]) -> Stats:
        requests = sum(p.requests for p in parts)
        elapsed = sum(p.requests / p.rps for p in parts if p.rps)
        return Stats(
            rps=requests / elapsed,
            p50_ms=statistics.median(p.p50_ms for p in parts),
            p99_ms=max(p.p99_ms for p in parts),
            requests=requests,
            errors=sum(p.errors for p in parts),
        )

    return total(runs[True]), total(runs[False])


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def lift_rate_limits() -> None:
    """The limits stay on (their cost is part of every request) but one load generator on one
    address must never hit them: buckets as large as the table allows."""
    with psycopg.connect(owner_url(), autocommit=True) as conn:
        conn.execute("update app_private.rate_limits set capacity = 100000, per_minute = 9999999")


def check_workload(server: Server, w: Workload) -> str | None:
    """One request of the workload over HTTP and one call over SQL; an error text or None."""
    ids = IDS_FILE.read_text().split()
    cursor = CURSORS_FILE.read_text().split()[0] if w.mode == "cursor" else ""
    path = {
        "fixed": w.path,
        "page": w.path.replace("{page}", str(w.hi)),
        "detail": f"/api/products/{ids[-1]}/",
        "cursor": w.path.replace("{cursor}", cursor),
        "signed": w.path,
    }[w.mode]
    token, claims = SIGNED_FILE.read_text().split("\n", 1)[0].split("\t") if w.mode == "signed" else ("", "")
    status, body = http("GET", server.base + path, headers={"Authorization": f"Bearer {token}"} if token else None)
    if status != 200:
        return f"GET {path} answered {status}: {body[:300]!r}"
    with psycopg.connect(owner_url().replace("nexus@", "authenticator@", 1)) as conn:
        if token:
            conn.execute(
                "select set_config('role', 'guest', false), set_config('request.jwt.claims', %s, false)", [claims]
            )
            conn.execute("select app.check_session()")
        else:
            conn.execute("set role anon")
        sql = w.call
        params: dict[str, Any] = {**w.defines, "page": str(w.hi), "i": 1, "cursor": cursor}
        sql = re.sub(r"(?<!:):(\w+)", lambda m: f"%({m.group(1)})s", sql)
        try:
            conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            return f"SQL failed: {exc}"
    return None


def environment(args: argparse.Namespace) -> list[str]:
    with psycopg.connect(owner_url()) as conn:
        row = conn.execute("select version(), current_setting('shared_buffers'), current_setting('jit')").fetchone()
        leases = conn.execute(
            "select string_agg(class || ' ' || lease, ', ' order by class) from app_private.rate_limits"
        )
        lease_line = (leases.fetchone() or ("?",))[0]
    assert row is not None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    wrk_v = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.splitlines()
    return [
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; commit {commit.stdout.strip()}"
        f"{' + uncommitted changes' if dirty.stdout.strip() else ''}",
        f"- machine: {os.cpu_count()} CPUs ({platform.machine()}), load average at start {loadavg()}"
        " (other people's tests may be running: figures are indicative)",
        f"- PostgreSQL: {row[0].split(',')[0]}; shared_buffers {row[1]}, jit {row[2]}; local Unix socket",
        f"- API: python -m api.serve (uvicorn), {args.workers} worker(s), pool {args.pool} connection(s) per worker, "
        f"no access log (ACCESS_LOG=false); rate-limit leases per class: {lease_line}",
        f"- load: wrk ({wrk_v[0].split(' [')[0] if wrk_v else 'wrk'}) and pgbench -M prepared, "
        f"{args.connections} connections, {args.threads} threads; per workload a {args.warmup:g} s warm-up of each, "
        f"then {args.duration:g} s measured of each (the SQL in two halves, before and after the API run)",
        f"- data: {DBNAME} ({data_version()}): 10k users, 20 categories, 100k listings (95k published)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", 10)))
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", 2)))
    parser.add_argument("--connections", type=int, default=int(os.environ.get("BENCH_CONNECTIONS", 8)))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 2)))
    parser.add_argument("--pool", type=int, default=0, help="connections per worker (default: connections/workers)")
    parser.add_argument(
        "--only",
        default="",
        help="comma list of workloads (healthz,search,browse,deep,cursor,filter,bbox,radius,facets,detail,signed,"
        "cached,bookings,photos); with cached and some of them, only their cached runs",
    )
    parser.add_argument(
        "--rate-limits",
        choices=("on", "off"),
        default="on",
        help="serve the workloads with the shared rate limit or not",
    )
    parser.add_argument(
        "--limit-cost",
        default="detail",
        help="workloads also run without the rate limit, interleaved, to print its cost ('' for none)",
    )
    parser.add_argument(
        "--metrics-cost",
        default="detail,search",
        help="workloads also run by an API with metrics on, interleaved, to print their cost ('' for none)",
    )
    parser.add_argument(
        "--tracing-cost",
        default="detail,search",
        help="workloads also run by an API with traces on, interleaved, to print their cost ('' for none)",
    )
    parser.add_argument(
        "--tracing-sample",
        type=float,
        default=1.0,
        help="the traced API's OTEL_TRACES_SAMPLER_ARG (parentbased_traceidratio); 1: every trace",
    )
    parser.add_argument(
        "--cache-max-bytes",
        type=int,
        default=256 * 2**20,
        help="the cached workloads' CACHE_MAX_BYTES per worker (default 256 MiB: every listing's detail, ~120 MB)",
    )
    parser.add_argument(
        "--cache-ttl", type=float, default=3600, help="the cached workloads' CACHE_TTL_SECONDS (outlasts the warm-up)"
    )
    parser.add_argument(
        "--cache-warmup", type=float, default=240, help="the cached workloads' longest warm-up, in seconds"
    )
    parser.add_argument(
        "--cache-fill",
        type=float,
        default=0.05,
        help="the cached workloads' warm-up ends once a 5 s slice misses less than this share of its requests",
    )
    parser.add_argument(
        "--p99-connections",
        type=int,
        default=32,
        help="the seed search is also run with this many connections, for its p99 (0: not)",
    )
    parser.add_argument("--no-bookings", action="store_true")
    parser.add_argument("--no-migrate", action="store_true")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=50)
    parser.add_argument("--out", default=str(OUT / "results.md"))
    args = parser.parse_args()
    args.pool = args.pool or max(2, math.ceil(args.connections / args.workers))
    if args.duration > 60 or args.warmup > 30 or args.cache_warmup > 300:
        sys.exit("bench: keep --duration <= 60, --warmup <= 30 and --cache-warmup <= 300 (every run is bounded)")
    for tool in (WRK, PGBENCH):
        if not shutil.which(tool) and not Path(tool).exists():
            sys.exit(f"bench: {tool} not found (apt-get install -y wrk postgresql-contrib)")
    if not RUN.exists():
        sys.exit("bench: the local cluster is not running (scripts/pg-local start)")
    with psycopg.connect(superuser_url(), autocommit=True) as admin:
        row = admin.execute("select 1 from pg_database where datname = %s", (DBNAME,)).fetchone()
    if row is None:
        sys.exit(f"bench: no {DBNAME} database; run make bench-data first")
    if not args.no_migrate:
        from api.migrate import migrate

        migrate(owner_url())
    lift_rate_limits()
    if not IDS_FILE.exists():
        from bench.data import write_ids

        write_ids()
    OUT.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(owner_url()) as conn:
        catalog = has_function(conn, "api.product_list") and has_function(conn, "api.product_get")
    only = {x for x in args.only.split(",") if x}
    workloads = [w for w in WORKLOADS if not only or w.name in only] if catalog else []
    cached_too = catalog and (not only or "cached" in only)
    if any(w.mode == "cursor" for w in workloads) or cached_too:  # the cached cursor mix reads them too
        write_cursors()
    if any(w.mode == "signed" for w in workloads):
        write_signed()
    if not catalog:
        log("catalog: not available (no api.product_list / api.product_get in nexus_bench); only /healthz")

    env_lines = environment(args)
    log("\n".join(env_lines))
    started = time.monotonic()
    rows: list[tuple[Workload, Stats | None, Stats | None, str]] = []
    extra: list[str] = []
    photo_lines: list[str] = []  # the photos workload (bench/photos.py)
    server = Server(args.workers, args.pool, OUT / "api.log", rate_limits=args.rate_limits == "on")
    costed = {x for x in args.limit_cost.split(",") if x} if args.rate_limits == "on" else set()
    costed &= {w.name for w in workloads}
    unlimited = Server(args.workers, args.pool, OUT / "api-unlimited.log", rate_limits=False) if costed else None
    metered_names = {x for x in args.metrics_cost.split(",") if x} & {w.name for w in workloads}
    metered = (
        Server(
            args.workers,
            args.pool,
            OUT / "api-metrics.log",
            rate_limits=args.rate_limits == "on",
            env_extra={"METRICS_PORT": str(free_port())},
        )
        if metered_names
        else None
    )
    metrics_costs: list[tuple[Workload, Stats, Stats]] = []
    traced_names = {x for x in args.tracing_cost.split(",") if x} & {w.name for w in workloads}
    receiver = None
    if traced_names:
        from bench.tracing_cost import Receiver  # an OTLP/HTTP endpoint that takes every batch

        receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
    traced = (
        Server(
            args.workers,
            args.pool,
            OUT / "api-traced.log",
            rate_limits=args.rate_limits == "on",
            env_extra={
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": str(args.tracing_sample),
            },
        )
        if receiver is not None
        else None
    )
    tracing_costs: list[tuple[Workload, Stats, Stats]] = []
    costs: list[tuple[Workload, Stats, Stats]] = []
    crowd_rows: list[str] = []  # the seed search with many connections
    extra_rows: list[str] = []  # the cached workloads
    cache_notes: list[str] = []  # and how their caches were warmed
    try:
        server.wait_ready()
        if unlimited is not None:
            unlimited.wait_ready()
        if metered is not None:
            metered.wait_ready()
        if traced is not None:
            traced.wait_ready()
        if not only or "healthz" in only:
            hw = Workload("healthz", "GET /healthz (no database: the HTTP layer alone)", "/healthz", "", None)
            log(f"\n== healthz: {hw.title}, load {loadavg()}")
            wrk(server.base, hw, args.warmup, args.connections, args.threads, {})
            st = wrk(server.base, hw, args.duration, args.connections, args.threads, {})
            log(f"   API  {st.rps:8.0f} req/s  p50 {st.p50_ms:7.2f} ms  p99 {st.p99_ms:7.2f} ms")
            rows.append((hw, st, None, ""))
        with tempfile.TemporaryDirectory(prefix="nexus-bench-") as tmp:
            workdir = Path(tmp)
            for w in workloads:
                log(f"\n== {w.name}: {w.title}, load {loadavg()}")
                problem = check_workload(server, w)
                if problem:
                    log(f"   skipped: {problem}")
                    rows.append((w, None, None, problem))
                    continue
                # Warm both up, then measure SQL-API-SQL: half the SQL time before the API run
                # and half after, so a drift in the machine's load (other people's tests)
                # weighs on both sides alike.
                wrk(server.base, w, args.warmup, args.connections, args.threads, {})
                pgbench(w, args.warmup, args.connections, args.threads, workdir, logged=False)
                half = args.duration / 2
                first = pgbench(w, half, args.connections, args.threads, workdir, logged=True)
                api = wrk(server.base, w, args.duration, args.connections, args.threads, {})
                log(
                    f"   API  {api.rps:8.0f} req/s  p50 {api.p50_ms:7.2f} ms  p99 {api.p99_ms:7.2f} ms"
                    f"  ({api.requests} requests, {api.errors} errors)"
                )
                db = merge([first, pgbench(w, half, args.connections, args.threads, workdir, logged=True)])
                log(
                    f"   SQL  {db.rps:8.0f} tx/s   p50 {db.p50_ms:7.2f} ms  p99 {db.p99_ms:7.2f} ms"
                    f"  ({db.requests} transactions, {db.errors} failed)"
                )
                log(f"   API/SQL {api.rps / db.rps:.2f} (target {w.target})")
                rows.append((w, api, db, ""))
                if w.name == "search" and args.p99_connections:
                    # Issue 15: the seed query's p99 with many clients at once (target < 100 ms).
                    many = wrk(server.base, w, args.duration, args.p99_connections, args.threads, {})
                    verdict = "met" if many.p99_ms < 100 else "NOT met"
                    log(
                        f"   API at {args.p99_connections} connections: {many.rps:8.0f} req/s  p50 {many.p50_ms:7.2f} ms"
                        f"  p99 {many.p99_ms:7.2f} ms (target p99 < 100 ms: {verdict})"
                    )
                    crowd_rows.append(
                        f"| {w.name} at {args.p99_connections} connections | {many.rps:,.0f} | {many.p50_ms:.2f} "
                        f"| {many.p99_ms:.2f} | p99 < 100 ms {verdict} |"
                    )
                if unlimited is not None and w.name in costed:
                    log(f"   rate limit's cost: {w.name} with and without it, interleaved, load {loadavg()}")
                    with_limit, without = limit_cost(server, unlimited, w, args)
                    ratio = with_limit.rps / without.rps
                    log(
                        f"   limits on {with_limit.rps:8.0f} req/s, off {without.rps:8.0f} req/s: "
                        f"on/off {ratio:.3f}, cost {1 - ratio:.1%} (target < 5 %)"
                    )
                    costs.append((w, with_limit, without))
                if metered is not None and w.name in metered_names:
                    log(f"   metrics' cost: {w.name} with and without them, interleaved, load {loadavg()}")
                    measured_on, measured_off = limit_cost(metered, server, w, args)  # the same slicing
                    ratio = measured_on.rps / measured_off.rps
                    log(
                        f"   metrics on {measured_on.rps:8.0f} req/s, off {measured_off.rps:8.0f} req/s: "
                        f"on/off {ratio:.3f}, cost {1 - ratio:.1%} (target < 5 %)"
                    )
                    metrics_costs.append((w, measured_on, measured_off))
                if traced is not None and w.name in traced_names:
                    log(f"   tracing's cost: {w.name} with and without it, interleaved, load {loadavg()}")
                    measured_on, measured_off = limit_cost(traced, server, w, args)  # the same slicing
                    ratio = measured_on.rps / measured_off.rps
                    log(
                        f"   traces on {measured_on.rps:8.0f} req/s, off {measured_off.rps:8.0f} req/s: "
                        f"on/off {ratio:.3f}, cost {1 - ratio:.1%} (target < 5 %; {Receiver.batches} batches taken)"
                    )
                    tracing_costs.append((w, measured_on, measured_off))
        if cached_too:
            write_zipf()
            by_name = {w.name: api for w, api, _, _ in rows if api is not None}
            # Every catalog workload, cached; detail and the seed search have the targets.
            cached_runs: list[tuple[str, Path, str, float | None]] = [
                ("detail", ZIPF_DETAIL_FILE, "healthz", 0.8),
                ("search", ZIPF_SEARCH_FILE, "search", 5.0),
                ("browse", ZIPF_BROWSE_FILE, "browse", None),
                ("deep", ZIPF_DEEP_FILE, "deep", None),
                ("cursor", ZIPF_CURSOR_FILE, "cursor", None),
                ("filter", ZIPF_FILTER_FILE, "filter", None),
                ("bbox", ZIPF_BBOX_FILE, "bbox", None),
                ("radius", ZIPF_RADIUS_FILE, "radius", None),
                ("facets", ZIPF_FACETS_FILE, "facets", None),
            ]
            # --only cached: all of them; --only cached,bbox,...: the cached runs of the workloads named.
            named = only & {name for name, *_ in cached_runs}
            cached_runs = [run for run in cached_runs if not named or run[0] in named]
            for name, lines, against, target in cached_runs:
                log(
                    f"\n== cached {name}: a Zipf mix (s = 1) of {len(lines.read_text().split()):,} URLs, "
                    f"CACHE_MAX_BYTES={args.cache_max_bytes} ({args.cache_max_bytes / 2**20:g} MiB per worker), "
                    f"CACHE_TTL_SECONDS={args.cache_ttl:g}, load {loadavg()}"
                )
                st, measured, healthz, warmed = cached(args, f"cached-{name}", lines)
                hit = measured.ratio
                log(f"   {warmed}")
                log(
                    f"   /healthz on the same server, just before and after: {healthz[0]:.0f} and "
                    f"{healthz[1]:.0f} req/s"
                )
                cache_notes.append(
                    f"- cached {name}: {warmed}; /healthz on the same server just before and after the "
                    f"measured window {healthz[0]:,.0f} and {healthz[1]:,.0f} req/s."
                )
                # detail against /healthz around it on the same server; search against the cold seed search
                base_rps = statistics.mean(healthz) if against == "healthz" else getattr(by_name.get(against), "rps", 0)
                versus = f"{st.rps / base_rps:.2f}x {against}" if base_rps else "-"
                log(
                    f"   API  {st.rps:8.0f} req/s  p50 {st.p50_ms:7.2f} ms  p99 {st.p99_ms:7.2f} ms  "
                    f"hit ratio {hit:.1%} ({measured.hits:,} hits, {measured.misses:,} misses in the measured "
                    f"{args.duration:g} s), {versus}" + (f" (target >= {target})" if target else " (against it cold)")
                )
                extra_rows.append(
                    f"| {name}, cached (Zipf mix) | {st.rps:,.0f} | {st.p50_ms:.2f} | {st.p99_ms:.2f} | {hit:.1%} "
                    f"| {versus} | " + (f">= {target}x {against} |" if target else "- |")
                )
        if not args.no_bookings and (not only or "bookings" in only):
            extra = bookings(server, args)
        if not only or "photos" in only:
            from bench import photos

            photo_lines = photos.run(server.base)
    finally:
        server.stop()
        if unlimited is not None:
            unlimited.stop()
        if metered is not None:
            metered.stop()
        if traced is not None:
            traced.stop()
        if receiver is not None:
            receiver.shutdown()

    table = [
        "| workload | API req/s | API p50 ms | API p99 ms | SQL tx/s | SQL p50 ms | SQL p99 ms | API/SQL | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for w, served, sql, problem in rows:
        if served is None:
            short = re.sub(r"[|\s]+", " ", problem)[:160]
            table.append(f"| {w.name}: {w.title} | skipped: {short} | | | | | | | |")
            continue
        errs = f" ({served.errors} errors)" if served.errors else ""
        if sql is None:
            table.append(
                f"| {w.name}: {w.title} | {served.rps:,.0f}{errs} | {served.p50_ms:.2f} | {served.p99_ms:.2f} "
                "| - | - | - | - | - |"
            )
            continue
        ratio = served.rps / sql.rps
        verdict = "met" if w.target is not None and ratio >= w.target else "NOT met"
        table.append(
            f"| {w.name}: {w.title} | {served.rps:,.0f}{errs} | {served.p50_ms:.2f} | {served.p99_ms:.2f} | {sql.rps:,.0f} "
            f"| {sql.p50_ms:.2f} | {sql.p99_ms:.2f} | **{ratio:.2f}** | >= {w.target} {verdict} |"
        )
    if crowd_rows:
        table += [
            "",
            "| many clients | API req/s | p50 ms | p99 ms | target |",
            "|---|---:|---:|---:|---|",
            *crowd_rows,
        ]
    if costs:
        table += [
            "",
            "| rate limit's cost (interleaved slices) | limits on req/s | limits off req/s | on/off | cost | target |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for w, with_limit, without in costs:
            ratio = with_limit.rps / without.rps
            verdict = "met" if 1 - ratio < 0.05 else "NOT met"
            table.append(
                f"| {w.name} | {with_limit.rps:,.0f} | {without.rps:,.0f} | **{ratio:.3f}** | {1 - ratio:.1%} "
                f"| < 5 % {verdict} |"
            )
    if metrics_costs:
        table += [
            "",
            "| metrics' cost (interleaved slices) | metrics on req/s | metrics off req/s | on/off | cost | target |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for w, measured_on, measured_off in metrics_costs:
            ratio = measured_on.rps / measured_off.rps
            verdict = "met" if 1 - ratio < 0.05 else "NOT met"
            table.append(
                f"| {w.name} | {measured_on.rps:,.0f} | {measured_off.rps:,.0f} | **{ratio:.3f}** | {1 - ratio:.1%} "
                f"| < 5 % {verdict} |"
            )
    if tracing_costs:
        table += [
            "",
            f"| tracing's cost (interleaved slices; sampling {args.tracing_sample:g}) | traces on req/s"
            " | traces off req/s | on/off | cost | target |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for w, measured_on, measured_off in tracing_costs:
            ratio = measured_on.rps / measured_off.rps
            verdict = "met" if 1 - ratio < 0.05 else "NOT met"
            table.append(
                f"| {w.name} | {measured_on.rps:,.0f} | {measured_off.rps:,.0f} | **{ratio:.3f}** | {1 - ratio:.1%} "
                f"| < 5 % {verdict} |"
            )
    if extra_rows:
        table += [
            "",
            "| cached workload | API req/s | p50 ms | p99 ms | hit ratio (measured window) | versus | target |",
            "|---|---:|---:|---:|---:|---:|---|",
            *extra_rows,
            "",
            f"The cached workloads: CACHE_MAX_BYTES {args.cache_max_bytes / 2**20:g} MiB per worker, "
            f"CACHE_TTL_SECONDS {args.cache_ttl:g}.",
            *cache_notes,
        ]
    # The table only when it has more than its header (--only bookings or photos leaves it empty).
    md = ["# Nexus benchmark results", "", *env_lines, *(["", *table] if len(table) > 2 else [])]
    if extra:
        md += ["", "| booking workload | req/s | p50 ms | p99 ms | outcome | notes |", "|---|---:|---:|---:|---|---|"]
        md += [x for x in extra if x.startswith("|")] or []
        md += [x for x in extra if not x.startswith("|")]
    if photo_lines:
        md += ["", *photo_lines]
    md += ["", f"Total run time {time.monotonic() - started:.0f} s."]
    Path(args.out).write_text("\n".join(md) + "\n")
    if rows:
        log("\n" + "\n".join(table))
    if extra:
        log("\n".join(["", *extra]))
    if photo_lines:
        log("\n".join(["", *photo_lines]))
    log(f"\nwritten to {os.path.relpath(args.out, ROOT)}")


if __name__ == "__main__":
    main()
