"""Exchange rates that stay fresh by themselves: the worker's rates.fetch against a feed on loopback
(an HTTP server the test starts, answering ECB-shaped XML or worse), the rates it records, the
pairs derived through the feed's base, an admin's rate winning for its day, and every bad feed
changing no rate while saying why."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from api import rates, worker
from api.settings import Settings
from tests.fix_users import User

TODAY = time.strftime("%Y-%m-%d", time.gmtime())


def ecb(day: str = TODAY, **codes: str) -> bytes:
    cubes = "".join(f'<Cube currency="{c}" rate="{r}"/>' for c, r in codes.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"'
        ' xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">'
        f"<gesmes:subject>Reference rates</gesmes:subject><Cube><Cube time='{day}'>{cubes}</Cube></Cube>"
        "</gesmes:Envelope>"
    ).encode()


@dataclass
class Feed:
    """What the loopback feed answers next: a body, a status, a delay before it, or an endless body."""

    body: bytes = b""
    status: int = 200
    delay: float = 0.0
    endless: bool = False
    url: str = ""


@pytest.fixture(scope="module")
def feed() -> Iterator[Feed]:
    state = Feed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(state.delay)
            self.send_response(state.status)
            self.send_header("Content-Type", "application/xml")
            if state.endless:
                self.end_headers()
                try:
                    for _ in range(50 * 16):  # 50 MB in 64 kB writes, unless the reader hangs up first
                        self.wfile.write(b"<!-- padding -->" * 4096)
                except OSError:
                    pass
                return
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/eurofxref-daily.xml"
    try:
        yield state
    finally:
        server.shutdown()


@pytest.fixture
def fetch(settings: Settings, feed: Feed, owner: psycopg.Connection[Any]) -> Iterator[Callable[..., Any]]:
    """Run the worker's rates.fetch against the loopback feed; the rates table is put back afterwards."""
    owner.execute("create temporary table rates_before as select * from app.exchange_rates")
    configured = replace(settings, exchange_rates_url=feed.url)

    def run(**answer: Any) -> Any:
        for name, value in {"body": b"", "status": 200, "delay": 0.0, "endless": False, **answer}.items():
            setattr(feed, name, value)
        with worker.opened(configured):
            return worker.fetch_rates(int(time.time()))

    yield run
    owner.execute("delete from app.exchange_rates")
    owner.execute("insert into app.exchange_rates select * from rates_before")
    owner.execute("drop table rates_before")
    owner.execute(
        "update app_private.rate_feed set source = null, attempted_at = null, succeeded_at = null, feed_date = null,"
        " base = null, rates = 0, skipped = '[]', error = null, failed_at = null"
    )


def rate(owner: psycopg.Connection[Any], base: str, quote: str) -> Decimal | None:
    row = owner.execute("select app.exchange_rate(%s, %s)", (base, quote)).fetchone()
    return row[0] if row else None


def state(owner: psycopg.Connection[Any]) -> dict[str, Any]:
    row = owner.execute("select to_jsonb(f) from app_private.rate_feed f").fetchone()
    assert row is not None
    return dict(row[0])


def test_the_feed_keeps_rates_fresh_and_gives_every_pair(
    fetch: Callable[..., Any], owner: psycopg.Connection[Any]
) -> None:
    outcome = fetch(body=ecb(USD="1.0800", GBP="0.8600", JPY="162.50", HUF="390.1"))
    assert "'recorded': 3" in outcome
    assert rate(owner, "EUR", "USD") == Decimal("1.08")
    assert rate(owner, "USD", "GBP") == round(Decimal("0.8600") / Decimal("1.0800"), 10)  # through EUR
    assert rate(owner, "GBP", "JPY") == round(Decimal("162.50") / Decimal("0.8600"), 10)
    assert rate(owner, "USD", "NGN") is None  # the ECB has no naira: no rate, as before
    feed = state(owner)
    assert (feed["base"], feed["rates"], feed["feed_date"], feed["error"]) == ("EUR", 3, TODAY, None)
    assert "NGN" in feed["skipped"]["missing"] and feed["skipped"]["unknown"] == ["HUF"]
    source = owner.execute(
        "select source from app.exchange_rates where base = 'EUR' and quote = 'USD' order by fetched_at desc limit 1"
    ).fetchone()
    assert source is not None and source[0].endswith(TODAY) and "127.0.0.1" in source[0]


def test_an_admins_rate_wins_for_its_day(
    fetch: Callable[..., Any], owner: psycopg.Connection[Any], client: TestClient, make_user: Callable[..., User]
) -> None:
    admin = make_user("admin")
    posted = client.post(
        "/api/exchange-rates/", json={"base": "USD", "quote": "GBP", "rate": "0.5"}, headers=admin.auth
    )
    assert posted.status_code == 201, posted.text
    fetch(body=ecb(USD="1.0800", GBP="0.8600"))  # newer, but the admin's rate is today's
    assert rate(owner, "USD", "GBP") == Decimal("0.5")
    owner.execute("update app.exchange_rates set fetched_at = fetched_at - interval '1 day' where source = 'admin'")
    fetch(body=ecb(USD="1.0800", GBP="0.8600"))
    assert rate(owner, "USD", "GBP") == round(
        Decimal("0.8600") / Decimal("1.0800"), 10
    )  # yesterday's admin rate no longer wins


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"body": b"<html>maintenance</html>"}, "no dated Cube"),
        ({"body": b"not xml at all {"}, "not the expected XML"),
        ({"body": ecb(USD="0", GBP="0.86")}, "refused: USD=0"),
        ({"body": ecb(USD="-1.08", GBP="0.86")}, "refused: USD=-1.08"),
        ({"body": ecb(USD="1e3")}, "refused: USD=1e3"),
        ({"body": ecb(day="1999-01-04", USD="1.17")}, "not within the last week"),
        ({"body": b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'}, "not the expected XML"),  # no entities, ever
        ({"status": 503, "body": b"down"}, "answered 503"),
        ({"endless": True}, "larger than"),
        ({"delay": 1.5, "body": ecb(USD="1.08")}, "longer than"),
    ],
    ids=["html", "not-xml", "zero", "negative", "exponent", "old", "entities", "503", "50MB", "slow"],
)
def test_a_bad_feed_changes_no_rate_and_says_why(
    fetch: Callable[..., Any], owner: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch, answer: Any, error: str
) -> None:
    fetch(body=ecb(USD="1.0800", GBP="0.8600"))
    good = state(owner)
    monkeypatch.setattr(rates, "RATES_TIMEOUT", 0.5)

    outcome = fetch(**answer)

    assert "'recorded': 0" in outcome and error in outcome
    assert rate(owner, "EUR", "USD") == Decimal("1.08") and rate(owner, "EUR", "GBP") == Decimal("0.86")
    after = state(owner)
    assert error in after["error"] and after["failed_at"] is not None
    assert after["succeeded_at"] == good["succeeded_at"] and after["rates"] == good["rates"]


def test_a_partial_feed_keeps_the_last_good_rate_of_what_it_lacks(
    fetch: Callable[..., Any], owner: psycopg.Connection[Any]
) -> None:
    fetch(body=ecb(USD="1.0800", GBP="0.8600"))
    fetch(body=ecb(USD="1.1000"))
    assert rate(owner, "EUR", "USD") == Decimal("1.1") and rate(owner, "EUR", "GBP") == Decimal("0.86")
    assert "GBP" in state(owner)["skipped"]["missing"]


def test_a_feed_that_does_not_answer_is_recorded_and_shown_to_admins(
    fetch: Callable[..., Any],
    owner: psycopg.Connection[Any],
    client: TestClient,
    make_user: Callable[..., User],
    feed: Feed,
    settings: Settings,
) -> None:
    from tests.loopback import free_port

    with worker.opened(replace(settings, exchange_rates_url=f"http://127.0.0.1:{free_port()}/rates.xml")):
        assert "could not be reached" in worker.fetch_rates(int(time.time()))
    shown = client.get("/api/admin/system/", headers=make_user("admin").auth).json()["exchange_rates"]
    assert "could not be reached" in shown["error"] and shown["failed_at"]
    with worker.opened(replace(settings, exchange_rates_url="")):
        assert worker.fetch_rates(int(time.time())).startswith("off")
