"""The catalog cache (api/cache.py): public reads from memory, dropped by the database's NOTIFY.

The suite's other apps run without it (settings.cache_max_bytes = 0), so their reads right
after a write in SQL need no wait; here it is on, and each test shows one of its promises.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from api.cache import Cache, CatalogCache, Entry
from api.settings import Settings
from tests.fix_contract import contract_app
from tests.fix_data import new_listing
from tests.fix_users import User


def cached_app(settings: Settings) -> TestClient:
    return TestClient(
        contract_app(replace(settings, cache_max_bytes=8_000_000, cache_ttl=60)), base_url="http://testserver"
    )


@pytest.fixture
def cached(settings: Settings) -> Iterator[TestClient]:
    with cached_app(settings) as c:
        yield c


def layer(client: TestClient) -> CatalogCache:
    node: Any = client.app
    while not isinstance(node, CatalogCache):
        node = getattr(node, "middleware_stack", None) or node.app
    return node


def listening(client: TestClient) -> CatalogCache:
    """Warm the listener (the first cacheable request starts it) and wait until it hears."""
    client.get("/api/categories/")
    cache = layer(client)
    deadline = time.monotonic() + 10
    while not cache.listening.is_set():
        assert time.monotonic() < deadline, "the cache's listener did not connect"
        time.sleep(0.01)
    return cache


def silently(owner: psycopg.Connection[Any], name: str, listing: str) -> None:
    """Rename a listing without its trigger (in one transaction, so nobody else sees it off): no NOTIFY."""
    with owner.transaction():
        owner.execute("alter table app.products disable trigger products_catalog_changed")
        owner.execute("update app.products set name = %s where id = %s", (name, listing))
        owner.execute("alter table app.products enable trigger products_catalog_changed")


def until(predicate: Callable[[], bool], seconds: float = 5) -> float:
    """Seconds until predicate() holds (fails after `seconds`)."""
    started = time.perf_counter()
    while not predicate():
        assert time.perf_counter() - started < seconds, "not within the bound"
        time.sleep(0.0005)
    return time.perf_counter() - started


def test_a_public_read_is_served_from_memory_until_the_database_says_it_changed(
    cached: TestClient, owner: psycopg.Connection[Any], host: User
) -> None:
    listing = new_listing(owner, host.id)
    cache = listening(cached)
    url = f"/api/products/{listing}/"
    first = cached.get(url)
    assert first.status_code == 200
    silently(owner, "Changed behind its back", listing)
    assert cached.get(url).json()["name"] == first.json()["name"]  # from memory: the database was not asked
    assert cached.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 304

    owner.execute("update app.products set name = 'Renamed' where id = %s", (listing,))  # NOTIFY p:<id>
    until(lambda: cached.get(url).json()["name"] == "Renamed")
    assert cache.cache.hits >= 2


def test_a_hit_answers_with_the_headers_the_database_did(
    cached: TestClient, owner: psycopg.Connection[Any], host: User
) -> None:
    listing = new_listing(owner, host.id)
    cache = listening(cached)
    url = f"/api/products/{listing}/"
    browser = {"Origin": "https://nexus.example"}  # CORS adds to a response's headers: never to the kept ones

    def head(response: Any) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in response.headers.items() if k != "x-request-id")

    from_database = cached.get(url, headers=browser)  # a miss: kept
    hits = [cached.get(url, headers=browser) for _ in range(3)]
    revalidate = {"If-None-Match": from_database.headers["etag"], **browser}
    hit_304s = [cached.get(url, headers=revalidate) for _ in range(2)]
    database_304 = cached.get(url, headers={**revalidate, "Cookie": "a=b"})  # a cookie: never from memory

    assert from_database.status_code == 200 and cache.cache.hits >= 5
    assert all(h.status_code == 200 and h.content == from_database.content for h in hits)
    assert all(head(h) == head(from_database) for h in hits)
    assert hits[0].headers["x-request-id"] != hits[1].headers["x-request-id"]
    assert [r.status_code for r in [*hit_304s, database_304]] == [304, 304, 304]
    assert head(hit_304s[0]) == head(hit_304s[1]) == head(database_304)


def test_lists_go_with_any_listing_and_everything_goes_with_a_category(
    cached: TestClient, owner: psycopg.Connection[Any], host: User
) -> None:
    listing = new_listing(owner, host.id)
    listening(cached)
    search = f"/api/products/?host={host.id}&ordering=-created_at"
    assert cached.get(search).json()["count"] == 1
    silently(owner, "Quietly", listing)
    assert "Quietly" not in cached.get(search).text
    owner.execute("update app.products set max_guests = max_guests where id = %s", (listing,))
    until(lambda: "Quietly" in cached.get(search).text)

    (slug,) = owner.execute(
        "select slug from app.categories c join app.products p on p.category_id = c.id where p.id = %s", (listing,)
    ).fetchone() or ("",)
    detail = f"/api/products/{listing}/"
    assert cached.get(f"/api/categories/{slug}/").json()["description"] != "New words"
    assert cached.get(detail).json()["category"]["name"] == slug
    owner.execute("update app.categories set name = 'New name', description = 'New words' where slug = %s", (slug,))
    until(lambda: cached.get(f"/api/categories/{slug}/").json()["description"] == "New words")
    assert cached.get(detail).json()["category"]["name"] == "New name"  # '*': the listings that show it went too


def test_the_facets_are_kept_and_go_with_any_listing(
    cached: TestClient, owner: psycopg.Connection[Any], host: User
) -> None:
    listing = new_listing(owner, host.id, max_guests=4)
    cache = listening(cached)
    url = f"/api/products/facets/?host={host.id}"

    def at_least_8() -> int:
        return {g["min_guests"]: g["count"] for g in cached.get(url).json()["guests"]}[8]  # type: ignore[no-any-return]

    assert at_least_8() == 0
    hits = cache.cache.hits
    assert at_least_8() == 0 and cache.cache.hits == hits + 1  # from memory
    owner.execute("update app.products set max_guests = 9 where id = %s", (listing,))  # NOTIFY p:<id>: every list
    until(lambda: at_least_8() == 1)


def test_signed_in_and_private_reads_never_enter(
    cached: TestClient, owner: psycopg.Connection[Any], host: User
) -> None:
    new_listing(owner, host.id, published=False)
    cache = listening(cached)
    before = len(cache.cache.entries)
    assert cached.get("/api/products/?host=me", headers=host.auth).status_code == 200
    assert cached.get("/api/users/me/", headers=host.auth).status_code == 200
    assert cached.get(f"/api/products/{new_listing(owner, host.id, published=False)}/").status_code == 404
    assert len(cache.cache.entries) == before


def test_a_write_on_one_instance_reaches_the_other_and_the_latency_is_measured(
    settings: Settings, owner: psycopg.Connection[Any], host: User
) -> None:
    listing = new_listing(owner, host.id)
    url = f"/api/products/{listing}/"
    with cached_app(settings) as one, cached_app(settings) as other:
        listening(one)
        cache = listening(other)
        latencies = []
        for n in range(30):
            other.get(url)  # cached there
            key = next(k for k in cache.cache.entries if url in k)
            with owner.transaction():
                owner.execute("update app.products set name = %s where id = %s", (f"Name {n}", listing))
            committed = time.perf_counter()
            until(lambda key=key: key not in cache.cache.entries)
            latencies.append(time.perf_counter() - committed)
            assert other.get(url).json()["name"] == f"Name {n}"
        p50 = statistics.median(latencies) * 1000
        p99 = sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000
        print(f"invalidation latency (commit -> stale entry gone), 30 writes: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


ABC, DEF = "0000abc0-0000-4000-8000-000000000abc", "0000def0-0000-4000-8000-000000000def"


def test_memory_is_bounded_least_recently_used_first() -> None:
    cache = Cache(max_bytes=8_000, ttl=60)

    def entry(tag: str = "list") -> Entry:
        return Entry(b"x" * 1_000, [], b"", tag, time.monotonic() + 60)

    for n in range(8):
        cache.put(f"k{n}", entry(), cache.generation)
    assert cache.get("k0") is not None  # k0 is now the most recently used
    cache.put("k8", entry(), cache.generation)
    assert "k1" not in cache.entries and "k0" in cache.entries and cache.size <= 8_000
    stale = cache.generation
    cache.invalidate(f"p:{ABC}")
    cache.put("late", entry(), stale)  # filled before an invalidation: not kept
    assert "late" not in cache.entries
    cache.put("p", entry(f"p:{ABC}"), cache.generation)
    cache.put("q", entry(f"p:{DEF}"), cache.generation)
    cache.invalidate(f"p:{ABC}")
    assert "p" not in cache.entries and "q" in cache.entries
    cache.invalidate("*")
    assert not cache.entries and cache.size == 0


MALFORMED = {
    "not json": "not json",
    "empty": "",
    "p: alone": "p:",
    "p: not a listing id": "p:not-a-listing",
    "p: and 7990 characters": "p:" + "x" * 7990,
    "7000 braces": "{" * 7000,
    "JSON": '{"p": 1}',
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_message_the_cache_does_not_understand_drops_everything_and_the_listener_stays(
    cached: TestClient, owner: psycopg.Connection[Any], host: User, payload: str
) -> None:
    listing = new_listing(owner, host.id)
    cache = listening(cached)
    connects = cache.connects
    url = f"/api/products/{listing}/"
    assert cached.get(url).status_code == 200 and any(url in k for k in cache.cache.entries)

    owner.execute("select pg_notify(%s, %s)", (cache.channel, payload))

    until(lambda: not any(url in k for k in cache.cache.entries))  # not understood: everything goes
    assert cache.listening.is_set() and cache.connects == connects
    assert cached.get(url).status_code == 200  # and the cache fills again
    assert any(url in k for k in cache.cache.entries)


def test_a_listing_id_in_capitals_drops_that_listing(
    cached: TestClient, owner: psycopg.Connection[Any], host: User
) -> None:
    listing, other = new_listing(owner, host.id), new_listing(owner, host.id)
    cache = listening(cached)
    cached.get(f"/api/products/{listing}/")
    cached.get(f"/api/products/{other}/")

    owner.execute("select pg_notify(%s, %s)", (cache.channel, f"p:{listing.upper()}"))

    until(lambda: not any(str(listing) in k for k in cache.cache.entries))
    assert any(str(other) in k for k in cache.cache.entries)  # only that listing went


def test_a_client_role_cannot_empty_the_cache(
    cached: TestClient, owner: psycopg.Connection[Any], analyst_url: str, host: User
) -> None:
    listing = new_listing(owner, host.id)
    cache = listening(cached)
    url = f"/api/products/{listing}/"
    cached.get(url)

    with psycopg.connect(analyst_url, autocommit=True) as analyst:
        analyst.execute("notify nexus_catalog, '*'")
        analyst.execute("select pg_notify('nexus_catalog', %s)", (f"p:{listing}",))
    time.sleep(0.3)  # an invalidation arrives in about a millisecond

    hits = cache.cache.hits
    assert cached.get(url).status_code == 200 and cache.cache.hits == hits + 1  # still a hit
    assert cache.channel.startswith("nexus_catalog_")
    owner.execute("update app.products set name = 'Renamed' where id = %s", (listing,))  # the product's own NOTIFY
    until(lambda: cached.get(url).json()["name"] == "Renamed")
