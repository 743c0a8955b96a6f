"""Calendar sync's Python side: write a listing's iCal export, fetch and read other platforms' calendars.

SQL decides everything about dates (sql/functions/32_calendar_sync.sql); this module speaks the
format (RFC 5545, through the `icalendar` library) and the network:

- `render`: the export JSON api.calendar_export builds, as an iCalendar file of all-day events
  (`Rendered` keeps the last ones written, by ETag).
- `read_feed`: fetch one feed and read its events, as the outcome app_private.calendar_feed_apply
  takes: {"events": [...], "etag", "last_modified"}, {"not_modified": true} or {"error": "..."}.
  Nothing a feed does raises: every failure is an error the feed's host reads.

A feed is someone else's URL, fetched by our worker: it must not reach what only our network
can (SSRF). So a fetch:
- connects only to public addresses: each host name is resolved once, every address it gives must
  be public (not loopback, private, link-local, shared, reserved, multicast or unspecified), and
  the connection is made to that address, then checked again on the socket (`GuardedBackend`).
  No second lookup happens, so a name that answers a public address to the check and a private
  one to the connection (DNS rebinding) cannot get through. Proxies from the environment are
  ignored (trust_env=False): a proxy would make the connection instead. ICAL_ALLOW_PRIVATE names
  addresses or networks allowed anyway (a local test server; never in production);
- follows at most MAX_REDIRECTS redirects, each to an allowed address and, unless https_only is
  off, over https;
- gives up after ICAL_CONNECT_TIMEOUT to connect and ICAL_FETCH_TIMEOUT for the whole fetch
  (a server that trickles bytes cannot hold it longer), and reads at most ICAL_MAX_BYTES (a
  declared larger Content-Length is refused before reading; a body that grows past it is cut);
- is conditional: the ETag and Last-Modified of the last body imported go back as If-None-Match
  and If-Modified-Since, and a 304 keeps the blocks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import ipaddress
import re
import socket
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore2
import httpx2
from icalendar import Calendar, Event

from api.settings import Settings

MAX_REDIRECTS = 3
# Events read from one feed at most. A platform's export of one listing holds tens to hundreds;
# 2 MiB of bare VEVENTs would be ~35,000, seconds of parsing for nothing a listing can use.
MAX_EVENTS = 5000
USER_AGENT = "Nexus-Calendar-Sync/1.0 (+iCalendar import)"
PRODID = "-//Nexus//Listing calendar//EN"
SUMMARIES = {"booked": "Booked", "blocked": "Blocked"}  # all the export says about an event

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]  # host, port -> its addresses
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # an IPv4 address inside an IPv6 one, through a NAT64 gateway


# --- the export --------------------------------------------------------------------------------


def render(export: dict[str, Any]) -> bytes:
    """The iCalendar file of a listing's taken dates (api.calendar_export's JSON): one all-day event each."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"Nexus: {export['name']}")
    for entry in export["events"]:
        event = Event()
        event.add("uid", entry["uid"])
        # DTSTAMP is required; the entry's creation keeps the file (and its ETag) the same until it changes.
        event.add("dtstamp", dt.datetime.fromisoformat(entry["stamp"]).astimezone(dt.UTC))
        event.add("dtstart", dt.date.fromisoformat(entry["start_date"]))
        event.add("dtend", dt.date.fromisoformat(entry["end_date"]))
        event.add("summary", SUMMARIES[entry["kind"]])
        event.add("transp", "OPAQUE")
        calendar.add_component(event)
    return bytes(calendar.to_ical())


class Rendered:
    """The exports written last, by ETag (a hash of the JSON they were written from), least recently
    used out past `size`: a platform polling an unchanged calendar costs the SQL call, not a new file
    (icalendar writes ~1.4 events a millisecond). Used from the event loop only."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, tag: str) -> bytes | None:
        body = self.items.get(tag)
        if body is not None:
            self.items.move_to_end(tag)
        return body

    def put(self, tag: str, body: bytes) -> None:
        self.items[tag] = body
        self.items.move_to_end(tag)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


# --- reading a feed ----------------------------------------------------------------------------


class NotCalendar(Exception):
    """The body is not an iCalendar file (or not one a listing can use: MAX_EVENTS)."""


def parse(data: bytes) -> list[dict[str, Any]]:
    """The VEVENTs of an iCalendar body, each as the facts SQL judges (app_private.calendar_feed_apply):
    start and end days (ISO dates; end null without DTEND and DURATION), all_day (DTSTART is a DATE),
    recurring (RRULE, RDATE or RECURRENCE-ID: not expanded), cancelled (STATUS:CANCELLED or
    TRANSP:TRANSPARENT: not busy). An event whose dates cannot be read is {"start": null}.
    A date-time counts by its calendar day where it is given (its TZID, UTC, or floating)."""
    if data.count(b"BEGIN:VEVENT") > MAX_EVENTS:  # counted before parsing: the parse is what costs
        raise NotCalendar(f"The calendar has more than {MAX_EVENTS} events.")
    try:
        calendars = Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # the library's errors on arbitrary bytes are many: any is "not iCal"
        raise NotCalendar("The calendar is not an iCalendar (RFC 5545) file.") from exc
    if not calendars or any(c.name != "VCALENDAR" for c in calendars):
        raise NotCalendar("The calendar is not an iCalendar (RFC 5545) file.")
    return [facts(event) for calendar in calendars for event in calendar.walk("VEVENT")]


def facts(event: Any) -> dict[str, Any]:
    try:
        start = event["DTSTART"].dt
        end = event["DTEND"].dt if "DTEND" in event else None
        if end is None and "DURATION" in event:
            end = start + event["DURATION"].dt
        if not isinstance(start, dt.date) or not (end is None or isinstance(end, dt.date)):
            raise TypeError("not a date")
    except Exception:  # missing DTSTART, an unreadable value, a date out of Python's range
        return {"start": None}
    status = str(event.get("STATUS", "")).upper()
    transparency = str(event.get("TRANSP", "")).upper()
    return {
        "start": day(start).isoformat(),
        "end": day(end).isoformat() if end is not None else None,
        "all_day": not isinstance(start, dt.datetime),
        "recurring": any(name in event for name in ("RRULE", "RDATE", "RECURRENCE-ID")),
        "cancelled": status == "CANCELLED" or transparency == "TRANSPARENT",
    }


def day(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


@dataclass(frozen=True)
class Limits:
    """How a feed may be fetched: ICAL_* settings, and https_only from app_private.calendar_settings."""

    connect_timeout: float
    total_timeout: float
    max_bytes: int
    allowed: tuple[Network, ...] = ()
    https_only: bool = True
    resolve: Resolver | None = None  # how host names are resolved (default: the system's resolver, `resolve`)

    @classmethod
    def from_settings(cls, settings: Settings, https_only: bool = True) -> Limits:
        return cls(
            connect_timeout=settings.ical_connect_timeout,
            total_timeout=settings.ical_fetch_timeout,
            max_bytes=settings.ical_max_bytes,
            allowed=tuple(ipaddress.ip_network(n, strict=False) for n in settings.ical_allow_private),
            https_only=https_only,
        )


class Refused(Exception):
    """A fetch that must not be made or go on; its message is the feed's error, for its host."""


async def read_feed(
    url: str, etag: str | None, last_modified: str | None, limits: Limits, digest: str | None = None
) -> dict[str, Any]:
    """Fetch and read a feed: the outcome app_private.calendar_feed_apply records. Never raises for the feed's faults.

    `digest` is that of the body last imported (`body_digest`): the same body again is not read
    (many servers send no ETag and answer every GET in full, with a fresh DTSTAMP in each event).
    """
    try:
        async with asyncio.timeout(limits.total_timeout):
            fetched = await fetch(url, etag, last_modified, limits)
    except TimeoutError:
        return {"error": f"The calendar did not answer within {limits.total_timeout:g} seconds."}
    except Refused as exc:
        return {"error": str(exc)}
    except httpx2.HTTPError as exc:
        return {"error": f"The calendar could not be fetched: {describe(exc)}"}
    if "body" not in fetched:
        return fetched
    body = fetched.pop("body")
    fetched["digest"] = body_digest(body)
    if fetched["digest"] == digest:
        return {"not_modified": True}
    try:
        events = await asyncio.to_thread(parse, body)
    except NotCalendar as exc:
        return {"error": str(exc)}
    return {"events": events, **fetched}


DTSTAMP = re.compile(rb"^DTSTAMP[;:][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*\r?\n", re.MULTILINE)


def body_digest(body: bytes) -> str:
    """SHA-256 of a calendar body without its DTSTAMP lines (when the file was written, not what it says)."""
    return hashlib.sha256(DTSTAMP.sub(b"", body)).hexdigest()


def describe(exc: httpx2.HTTPError) -> str:
    if isinstance(exc, httpx2.ConnectTimeout):
        return "no connection within the time allowed."
    if isinstance(exc, httpx2.TimeoutException):
        return "it stopped answering."
    if isinstance(exc, httpx2.ConnectError):
        return "no connection (" + (str(exc) or type(exc).__name__) + ")."
    return str(exc) or type(exc).__name__


async def fetch(url: str, etag: str | None, last_modified: str | None, limits: Limits) -> dict[str, Any]:
    """GET the feed, following at most MAX_REDIRECTS redirects: {"body", "etag", "last_modified"} or
    {"not_modified": true}; Refused (with the reason) for anything else."""
    headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5", "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    timeout = httpx2.Timeout(limits.total_timeout, connect=limits.connect_timeout)
    async with httpx2.AsyncClient(
        transport=GuardedTransport(limits.allowed, limits.resolve or resolve),
        follow_redirects=False,
        trust_env=False,
        timeout=timeout,
    ) as client:
        target = httpx2.URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            if target.scheme not in ("https", "http") or (limits.https_only and target.scheme != "https"):
                raise Refused(f"Refused to follow {target.scheme}:// (only https:// calendars are fetched).")
            async with client.stream("GET", target, headers=headers) as response:
                if response.is_redirect and "location" in response.headers:
                    target = response.url.join(response.headers["location"])
                    continue
                if response.status_code == 304:
                    return {"not_modified": True}
                if response.status_code != 200:
                    raise Refused(f"The calendar's server answered {response.status_code} {response.reason_phrase}.")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limits.max_bytes:
                    raise Refused(f"The calendar is larger than {limits.max_bytes} bytes ({declared} declared).")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limits.max_bytes:
                        raise Refused(f"The calendar is larger than {limits.max_bytes} bytes.")
                return {
                    "body": bytes(body),
                    "etag": response.headers.get("etag"),
                    "last_modified": response.headers.get("last-modified"),
                }
        raise Refused(f"The calendar redirected more than {MAX_REDIRECTS} times.")


# --- only public addresses ---------------------------------------------------------------------


def is_public(address: Address) -> bool:
    """Whether an address is on the public internet (IPv4 inside IPv6 judged as the IPv4 it carries)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = (
            address.ipv4_mapped
            or address.sixtofour
            or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None)
        )
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


def allowed_address(address: Address, allowed: Iterable[Network]) -> bool:
    return is_public(address) or any(address in network for network in allowed)


async def resolve(host: str, port: int) -> list[str]:
    """The addresses of a host name (or the address itself), by the system's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to allowed addresses: the name is resolved here
    once, every address checked, the connection made to a checked address (never to the name, so
    nothing resolves it again) and its peer checked once more on the socket."""

    def __init__(self, allowed: tuple[Network, ...], resolver: Resolver = resolve) -> None:
        self.allowed = allowed
        self.resolver = resolver
        self.inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                found = await self.resolver(host.strip("[]"), port)
        except (OSError, TimeoutError) as exc:
            raise Refused(f"The calendar's host {host} could not be resolved.") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in found))
        refused = [a for a in addresses if not allowed_address(a, self.allowed)]
        if refused or not addresses:
            where = f"{host} ({refused[0]})" if refused and str(refused[0]) != host.strip("[]") else host
            raise Refused(f"Refused: {where} is not a public internet address.")
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = await self.inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore2.ConnectError as exc:
                failure = exc
                continue
            peer = stream.get_extra_info("server_addr")
            if not peer or not allowed_address(ipaddress.ip_address(str(peer[0]).split("%")[0]), self.allowed):
                await stream.aclose()
                raise Refused(f"Refused: the connection to {host} reached {peer}, not a public internet address.")
            return stream
        raise failure or httpcore2.ConnectError(f"could not connect to {host}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise Refused("Refused: a calendar is never read from a local socket.")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context for every fetch (certificate verification on): making one reads the CA store (~80 ms)."""
    return httpx2.create_ssl_context(trust_env=False)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx's transport over a GuardedBackend (httpx takes no backend of its own: its pool is made anew here)."""

    def __init__(self, allowed: tuple[Network, ...], resolver: Resolver = resolve) -> None:
        super().__init__(verify=ssl_context(), trust_env=False, retries=0)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context(),
            max_connections=4,
            network_backend=GuardedBackend(allowed, resolver),
        )
