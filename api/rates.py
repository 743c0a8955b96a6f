"""The exchange-rate feed: fetch it, read it; SQL decides what is recorded (app_private.exchange_rates_record).

The worker's rates.fetch job (hourly) reads EXCHANGE_RATES_URL: by default the European Central
Bank's daily reference rates (about 30 currencies against EUR, published on working days around
16:00 CET), an XML document of this shape:

    <gesmes:Envelope ...><Cube><Cube time="2026-12-04">
      <Cube currency="USD" rate="1.0812"/> ...

Any feed of that shape works (a mirror, a provider's copy). It is read with a deadline
(RATES_TIMEOUT for the whole answer), at most RATES_MAX_BYTES, and parsed with defusedxml (no
entity expansion, no external entities: a feed cannot make the worker fetch or expand anything).
What cannot be read becomes a `FeedError`, recorded by app_private.exchange_rates_failed, and
no rate changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

import defusedxml.ElementTree as SafeXML
import httpx2

RATES_MAX_BYTES = 1_048_576  # the ECB's daily file is ~1.5 kB
RATES_TIMEOUT = 10.0  # seconds for the whole answer
ECB_BASE = "EUR"


class FeedError(Exception):
    """The feed gave nothing usable; the message says why (shown to admins)."""


@dataclass(frozen=True)
class Feed:
    base: str
    day: date | None
    rates: dict[str, str]  # code -> rate as the feed wrote it (SQL checks it is a positive number)


def fetch(url: str, max_bytes: int = RATES_MAX_BYTES, timeout: float = RATES_TIMEOUT) -> bytes:
    """The feed's body: FeedError if it does not answer 200 within `timeout` seconds or is larger than `max_bytes`."""
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx2.Client(timeout=httpx2.Timeout(timeout), follow_redirects=True, max_redirects=3) as client,
            client.stream("GET", url, headers={"Accept": "application/xml, text/xml"}) as response,
        ):
            if response.status_code != 200:
                raise FeedError(f"the feed answered {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FeedError(f"the feed is larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise FeedError(f"the feed took longer than {timeout:g} s")
            return bytes(body)
    except httpx2.TimeoutException as exc:
        raise FeedError(f"the feed took longer than {timeout:g} s") from exc
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        raise FeedError(f"the feed could not be reached: {type(exc).__name__}") from exc


def parse(body: bytes, base: str = ECB_BASE) -> Feed:
    """The rates of an ECB-style document: FeedError if it is not one (not XML, no day, no rate)."""
    try:
        root = SafeXML.fromstring(body)
    except Exception as exc:  # ParseError, and defusedxml's refusals (entities, DTDs)
        raise FeedError(f"the feed is not the expected XML: {type(exc).__name__}") from exc
    day_cube = next((c for c in root.iter() if c.tag.endswith("Cube") and c.get("time")), None)
    if day_cube is None:
        raise FeedError("the feed has no dated Cube element")
    try:
        day = date.fromisoformat(day_cube.get("time", ""))
    except ValueError as exc:
        raise FeedError(f"the feed's date is not a date: {day_cube.get('time')!r}") from exc
    rates = {
        str(c.get("currency", "")).upper(): str(c.get("rate", ""))
        for c in day_cube
        if c.tag.endswith("Cube") and c.get("currency")
    }
    if not rates:
        raise FeedError("the feed has no rate")
    return Feed(base, day, rates)
