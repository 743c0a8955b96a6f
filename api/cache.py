"""A cache of public catalog reads in each process, invalidated by PostgreSQL.

What enters: anonymous GETs (no Authorization header) of the public catalog, answered 200 —
categories, amenities, currencies, the listing search and its facets, a listing, its availability
and its reviews (`CACHED`). Nothing signed in, nothing private, no other status.

Key: scheme, host, path (trailing slash normalised) and the sorted query: the page envelope's
next/previous links are absolute, so the host is part of the answer.

Invalidation is the database's: triggers on every table behind these answers NOTIFY the
catalog channel when a change commits (sql/functions/23_catalog_cache.sql) with `p:<listing
id>` (that listing's entries and every list go) or `*` (everything goes: categories,
amenities, currencies, a host's public name or photo). The channel's name is secret
('nexus_catalog_<suffix>', sql/functions/04_channels.sql), so no client role can empty the
caches; the listener learns it from app.listen_channels() each time it connects. One LISTEN
connection per process (its own, outside the pool) hears them. A message that is neither (not
sent by these triggers: another version's, a DBA's, or garbage) drops everything too, with a
warning the first time: a cache that ignored what it cannot read could keep an answer the
message meant to end, and one that cleared too much only costs database reads. The listener
never reconnects over a message. An entry filled while any invalidation arrived is not kept
(the read may predate the change), while the listener is down nothing is served from or kept
in the cache, and on (re)connecting everything goes, so a missed notification never leaves a
stale answer. Memory is bounded (least recently used entries go past `max_bytes`) and `ttl`
seconds is a safety net (e.g. a hold expiring by time), not the mechanism.

A hit costs no database work, so it takes no rate-limit token (a miss does, as any request).
ETag, Cache-Control and Vary are kept, so If-None-Match gets its 304 from a hit too.

Counters: each process logs "catalog cache: N hits, M misses, E entries, B bytes (pid P)" at
shutdown and whenever it receives SIGUSR1 (how `make bench` takes the hit ratio of a measured
window: the counters before and after it). With metrics on, api/metrics.py copies them into the
nexus_catalog_cache_* series every second, and a hit is counted under the route that filled it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import psycopg
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.events import listen

log = logging.getLogger("nexus.cache")

CHANNEL = "catalog"  # its name in app.listen_channels()
UUID = "[0-9a-fA-F-]{36}"
# The one message that drops less than everything: one listing's answers (and every list).
LISTING = re.compile(r"p:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.IGNORECASE)
# The public catalog reads, in one pattern (trailing slash normalised): categories, amenities and
# currencies (a list or one), the listing search and its facets, and a listing, its availability and its
# reviews, which carry the listing's id (their tag is "p:<id>"; every other answer's is "list").
CACHED = re.compile(
    r"/api/(?:(?:categories|amenities|currencies)/(?:[^/]+/)?"
    rf"|products/(?:facets/|(?P<id>{UUID})/(?:(?:availability|reviews)/)?)?)"
)
KEPT_HEADERS = (b"content-type", b"etag", b"cache-control", b"vary")
QUERIES = 10_000  # normalised query strings remembered (a hit on a query then costs one lookup)


@dataclass(slots=True)
class Entry:
    body: bytes
    headers: list[tuple[bytes, bytes]]
    etag: bytes
    tag: str  # "list" or "p:<listing id>"
    expires: float
    route: Any = None  # the route that answered (scope["route"]): a hit is counted under it (api/metrics.py)
    # The response heads a hit sends, built once when the entry is made (copied per request:
    # a layer above may add to the list it is given).
    head: list[tuple[bytes, bytes]] = field(init=False, repr=False)
    head_304: list[tuple[bytes, bytes]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.head = [*self.headers, (b"content-length", str(len(self.body)).encode())]
        self.head_304 = [h for h in self.headers if h[0] != b"content-type"]


class Cache:
    """Least-recently-used entries up to max_bytes, each for at most ttl seconds."""

    def __init__(self, max_bytes: int, ttl: float) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.size = 0
        self.generation = 0  # bumped by every invalidation: a fill that saw it change is not kept
        self.hits = 0
        self.misses = 0
        self.unknown = 0  # messages neither "*" nor "p:<listing id>" (each dropped everything)

    def get(self, key: str) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None or entry.expires < time.monotonic():
            if entry is not None:
                self._drop(key)
            self.misses += 1
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: str, entry: Entry, generation: int) -> None:
        if generation != self.generation or len(entry.body) > self.max_bytes // 8:
            return
        if key in self.entries:
            self._drop(key)
        self.entries[key] = entry
        self.size += len(entry.body)
        while self.size > self.max_bytes:
            self._drop(next(iter(self.entries)))

    def invalidate(self, message: str) -> None:
        """`p:<listing id>`: that listing's entries and every list; `*` or anything else: everything.

        A message this process does not understand clears everything rather than nothing: it
        may mean a change this version cannot name, and a stale answer is the one thing the
        cache must never serve (an empty cache only costs database reads).
        """
        # Only the owner's triggers and functions can send on the channel (its name is secret), so
        # clearing on a message it cannot read is no lever for a client role.
        self.generation += 1
        listing = LISTING.fullmatch(message)
        if listing is None:
            if message != "*":
                self.unknown += 1
                level = logging.WARNING if self.unknown == 1 else logging.DEBUG
                log.log(level, "catalog cache: a message it does not understand cleared everything: %.80r", message)
            self.clear()
            return
        tag = "p:" + listing[1].lower()  # entries are tagged with the id as PostgreSQL writes it
        for key in [k for k, e in self.entries.items() if e.tag in (tag, "list")]:
            self._drop(key)

    def clear(self) -> None:
        self.generation += 1
        self.entries.clear()
        self.size = 0

    def _drop(self, key: str) -> None:
        self.size -= len(self.entries.pop(key).body)


class CatalogCache:
    """The ASGI layer: serve hits, keep 200s of cacheable misses, listen for invalidations."""

    def __init__(self, app: ASGIApp, conninfo: str, max_bytes: int, ttl: float) -> None:
        self.app = app
        self.conninfo = conninfo
        self.cache = Cache(max_bytes, ttl)
        self.listening = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.channel = ""  # the channel's secret name, learned when the listener connects
        self.connects = 0  # listening connections made (1 while nothing went wrong)
        self.queries: dict[bytes, bytes] = {}  # raw query string -> its parameters sorted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            if scope["type"] == "lifespan":
                receive = self._on_lifespan(receive)
            await self.app(scope, receive, send)
            return
        # The hit path, kept short: one pattern, one pass over the headers, one lookup.
        path = scope["path"]
        if path[-1:] != "/":
            path += "/"
        m = CACHED.fullmatch(path)
        if m is None:
            await self.app(scope, receive, send)
            return
        host = match = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = host or value
            elif name == b"if-none-match":
                match = match or value
            elif name == b"authorization" or name == b"cookie":  # signed in, or may be: never cached
                await self.app(scope, receive, send)
                return
        if self.task is None:
            self.task = asyncio.create_task(self._listen(), name="catalog-cache-listen")
        if not self.listening.is_set():  # no invalidations can reach us: the database answers
            await self.app(scope, receive, send)
            return
        query = scope["query_string"]
        if query:
            query = self.queries.get(query) or self._normalise(query)
        key = f"{scope['scheme']}://{(host or b'').decode('latin-1')}{path}?{query.decode('latin-1')}"
        entry = self.cache.get(key)
        if entry is None:
            listing = m["id"]
            await self._fill(scope, receive, send, key, f"p:{listing.lower()}" if listing else "list")
        elif entry.etag and match and entry.etag in match:
            scope["route"] = entry.route
            await send({"type": "http.response.start", "status": 304, "headers": entry.head_304.copy()})
            await send({"type": "http.response.body", "body": b""})
        else:
            scope["route"] = entry.route
            await send({"type": "http.response.start", "status": 200, "headers": entry.head.copy()})
            await send({"type": "http.response.body", "body": entry.body})

    def _normalise(self, query: bytes) -> bytes:
        """The query's parameters sorted (remembered: a search's next hit costs a lookup)."""
        normal = urlencode(sorted(parse_qsl(query.decode("latin-1"), keep_blank_values=True))).encode("latin-1")
        if len(self.queries) >= QUERIES:
            self.queries.clear()
        self.queries[query] = normal
        return normal

    async def _fill(self, scope: Scope, receive: Receive, send: Send, key: str, tag: str) -> None:
        generation = self.cache.generation
        status, headers, chunks = 0, [], []

        async def keep(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(n.lower(), v) for n, v in message.get("headers", []) if n.lower() in KEPT_HEADERS]
            elif message["type"] == "http.response.body" and status == 200:
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)
        if status == 200:
            etag = next((v for n, v in headers if n == b"etag"), b"")
            expires = time.monotonic() + self.cache.ttl
            entry = Entry(b"".join(chunks), headers, etag, tag, expires, scope.get("route"))
            self.cache.put(key, entry, generation)

    def report(self) -> None:
        """Log the counters (at shutdown, and on SIGUSR1)."""
        c = self.cache
        log.info(
            "catalog cache: %d hits, %d misses, %d entries, %d bytes (pid %d)",
            c.hits,
            c.misses,
            len(c.entries),
            c.size,
            os.getpid(),
        )

    def _on_lifespan(self, receive: Receive) -> Receive:
        async def watch() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Only the main thread's loop can take signals (not a test client's portal thread).
                with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.report)
            elif message["type"] == "lifespan.shutdown":
                self.report()
                if self.task is not None:
                    self.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self.task
                    self.task = None
            return message

        return watch

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    self.channel = await listen(conn, CHANNEL)
                    self.connects += 1
                    self.cache.clear()  # whatever changed while nobody listened
                    self.listening.set()
                    async for note in conn.notifies():
                        self.cache.invalidate(note.payload)
            except asyncio.CancelledError:
                self.listening.clear()
                raise
            except (psycopg.Error, OSError) as exc:
                self.listening.clear()
                self.cache.clear()
                log.warning("catalog cache listener lost its connection, reconnecting: %s", exc)
                await asyncio.sleep(1)
