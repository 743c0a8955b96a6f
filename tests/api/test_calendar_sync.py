"""Calendar sync (sql/functions/32_calendar_sync.sql, api/calendars.py): the iCal export, the feeds
a host imports, and every bad feed, against an iCal server on loopback (tests/ical_standin.py).

The worker's import job runs as in production (procrastinate, queue `calendars`), with
ICAL_ALLOW_PRIVATE=127.0.0.1 so that it may reach the loopback server and short timeouts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from icalendar import Calendar
from psycopg.types.json import Jsonb
from starlette.testclient import TestClient

from api import calendars
from api.settings import Settings
from api.worker import make_app, run_until_idle
from tests.fix_api import assert_problem
from tests.fix_data import day, new_listing, today
from tests.fix_users import User
from tests.ical_standin import CalendarServer

MB = 1_048_576


# --- helpers -----------------------------------------------------------------------------------


def d(offset: int) -> str:
    """A day from today as iCalendar writes a DATE."""
    return (today() + dt.timedelta(days=offset)).strftime("%Y%m%d")


def all_day(start: int, end: int | None = None) -> str:
    return f"DTSTART;VALUE=DATE:{d(start)}\r\n" + (f"DTEND;VALUE=DATE:{d(end)}\r\n" if end is not None else "")


def ics(*events: str) -> bytes:
    body = "".join(
        f"BEGIN:VEVENT\r\nUID:{i}@other.example\r\nSUMMARY:Reserved\r\n{e}END:VEVENT\r\n" for i, e in enumerate(events)
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other platform//EN\r\n{body}END:VCALENDAR\r\n".encode()


def run_imports(settings: Settings) -> None:
    """Run the worker's due calendar jobs (the first fetch of a new feed, or one deferred by `refetch`)."""
    asyncio.run(run_until_idle(make_app(settings), queues=["calendars"]))


def refetch(owner: psycopg.Connection[Any], feed_id: str) -> None:
    """Make the feed due now, and let the schedule defer its fetch (as every minute in production)."""
    owner.execute("update app_private.calendar_feeds set next_fetch_at = now() where id = %s", (feed_id,))
    owner.execute("select app_private.calendar_schedule()")


def add_feed(client: TestClient, user: User, listing: str, url: str, **body: Any) -> Any:
    return client.post(f"/api/products/{listing}/calendar-feeds/", json={"url": url, **body}, headers=user.auth)


def feeds(client: TestClient, user: User, listing: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/products/{listing}/calendar-feeds/", headers=user.auth)
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


def taken(client: TestClient, host: User, listing: str) -> list[tuple[str, str, str | None]]:
    """The listing's taken ranges as its host sees them: (start, end, feed_id)."""
    r = client.get(f"/api/products/{listing}/availability/", headers=host.auth)
    assert r.status_code == 200, r.text
    return [(u["start_date"], u["end_date"], u["feed_id"]) for u in r.json()["unavailable"]]


def book(client: TestClient, guest: User, listing: str, start: int, end: int) -> Any:
    body = {"product_id": listing, "start_date": day(start), "end_date": day(end), "guests": 1}
    return client.post("/api/bookings/", json=body, headers=guest.auth)


def export_path(client: TestClient, user: User, listing: str) -> str:
    r = client.get(f"/api/products/{listing}/ical-export/", headers=user.auth)
    assert r.status_code == 200, r.text
    url: str = r.json()["url"]
    assert url.startswith("http://testserver/api/calendars/") and url.endswith(".ics")
    return url.removeprefix("http://testserver")


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _no_feed_outlives_the_module(owner_url: str) -> Iterator[None]:
    """Later tests run the worker's queues: the feeds made here are gone by then (their jobs find nothing)."""
    yield
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute("delete from app_private.calendar_feeds")


@pytest.fixture(scope="module")
def ical() -> Iterator[CalendarServer]:
    with CalendarServer() as server:
        yield server


@pytest.fixture
def sync(settings: Settings) -> Settings:
    """The worker's settings: the loopback iCal server allowed, short timeouts."""
    return replace(settings, ical_allow_private=("127.0.0.1/32",), ical_connect_timeout=0.5, ical_fetch_timeout=1.0)


@pytest.fixture
def http_feeds(owner: psycopg.Connection[Any]) -> Iterator[None]:
    """Plain http:// feed URLs accepted (the loopback server has no certificate), as for the whole test."""
    owner.execute("update app_private.calendar_settings set https_only = false")
    try:
        yield
    finally:
        owner.execute("update app_private.calendar_settings set https_only = true")


@pytest.fixture
def listing(owner: psycopg.Connection[Any], host: User) -> str:
    return new_listing(owner, host.id)


@pytest.fixture
def imported(
    client: TestClient, ical: CalendarServer, sync: Settings, http_feeds: None, host: User, listing: str
) -> dict[str, Any]:
    """A feed of two stays (days 10-13 and 20-22) imported into the host's listing: the feed."""
    path = f"/{listing}.ics"
    url = ical.serve(path, ics(all_day(10, 13), all_day(20, 22)), etag='"v1"')
    assert add_feed(client, host, listing, url, name="Airbnb").status_code == 201
    run_imports(sync)
    (feed,) = feeds(client, host, listing)
    assert feed["status"] == "ok", feed
    return feed


# --- the export --------------------------------------------------------------------------------


def test_the_export_gives_booked_and_blocked_days_and_nothing_about_the_guest(
    client: TestClient, host: User, guest: User, listing: str
) -> None:
    booking = book(client, guest, listing, 5, 8).json()
    block = client.post(
        f"/api/products/{listing}/blocked-dates/",
        json={"start_date": day(12), "end_date": day(14), "reason": "Plumber fixes the boiler"},
        headers=host.auth,
    ).json()
    path = export_path(client, host, listing)

    r = client.get(path)  # anyone holding the URL: no token needed

    assert r.status_code == 200 and r.headers["content-type"] == "text/calendar; charset=utf-8"
    assert r.headers["cache-control"] == "private, no-cache"
    events = Calendar.from_ical(r.content).walk("VEVENT")
    assert [(str(e["SUMMARY"]), e["DTSTART"].dt, e["DTEND"].dt) for e in events] == [
        ("Booked", today() + dt.timedelta(days=5), today() + dt.timedelta(days=8)),
        ("Blocked", today() + dt.timedelta(days=12), today() + dt.timedelta(days=14)),
    ]
    assert b"DTSTART;VALUE=DATE:" in r.content and len({str(e["UID"]) for e in events}) == 2
    for private in (guest.email, guest.id, booking["id"], "Plumber", block["id"]):
        assert private.encode() not in r.content
    again = client.get(path, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_rotating_the_export_ends_the_old_url(client: TestClient, host: User, listing: str) -> None:
    old = export_path(client, host, listing)

    r = client.post(f"/api/products/{listing}/ical-export/rotate/", headers=host.auth)

    assert r.status_code == 200, r.text
    new = r.json()["url"].removeprefix("http://testserver")
    assert new != old and new == export_path(client, host, listing)
    assert_problem(client.get(old), 404)
    assert client.get(new).status_code == 200


def test_who_may_read_and_rotate_the_export_url(
    client: TestClient, host: User, other_host: User, guest: User, admin: User, listing: str
) -> None:
    read = f"/api/products/{listing}/ical-export/"
    rotate = f"/api/products/{listing}/ical-export/rotate/"

    assert_problem(client.get(read), 401)
    assert_problem(client.post(rotate), 401)
    assert_problem(client.get(read, headers=guest.auth), 403)
    assert_problem(client.get(read, headers=other_host.auth), 403)
    assert_problem(client.post(rotate, headers=other_host.auth), 403)
    assert client.get(read, headers=host.auth).status_code == 200
    assert client.post(rotate, headers=admin.auth).status_code == 200
    assert client.get(read, headers=admin.auth).json() == client.get(read, headers=host.auth).json()
    assert_problem(client.get("/api/calendars/" + "A" * 32 + ".ics"), 404)  # no such token
    assert_problem(client.get("/api/calendars/not-a-token.ics"), 404)


def test_the_secret_url_never_reaches_the_access_log(
    client: TestClient, host: User, listing: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = export_path(client, host, listing)
    token = path.rsplit("/", 1)[-1].removesuffix(".ics")

    with caplog.at_level(logging.INFO, logger="nexus.access"):
        assert client.get(path).status_code == 200

    lines = [r.getMessage() for r in caplog.records if r.name == "nexus.access"]
    assert any("/api/calendars/<secret>" in line for line in lines)
    assert token not in caplog.text


# --- feeds: who, and which URLs ----------------------------------------------------------------


def test_who_may_add_list_and_delete_feeds(
    client: TestClient, host: User, other_host: User, guest: User, admin: User, listing: str
) -> None:
    url = "https://192.0.2.10/calendar/ical/1234.ics?s=secret"  # TEST-NET: its fetch is refused unresolved, unsent
    listed = f"/api/products/{listing}/calendar-feeds/"

    assert_problem(client.post(listed, json={"url": url}), 401)
    assert_problem(client.get(listed), 401)
    assert_problem(add_feed(client, guest, listing, url), 403)
    assert_problem(add_feed(client, other_host, listing, url), 403)
    assert_problem(client.get(listed, headers=other_host.auth), 403)
    mine = add_feed(client, host, listing, url)
    assert mine.status_code == 201, mine.text
    feed = mine.json()
    assert (feed["name"], feed["url"], feed["status"]) == ("192.0.2.10", url, "pending")
    assert add_feed(client, admin, listing, "webcal://192.0.2.11/feed", name="VRBO").status_code == 201
    assert [f["name"] for f in feeds(client, admin, listing)] == ["192.0.2.10", "VRBO"]
    assert feeds(client, host, listing)[1]["url"] == "https://192.0.2.11/feed"  # webcal is https
    gone = f"{listed}{feed['id']}/"
    assert_problem(client.delete(gone, headers=other_host.auth), 403)
    assert client.delete(gone, headers=host.auth).status_code == 204
    assert_problem(client.delete(gone, headers=host.auth), 404)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://calendar.example.org/feed.ics", "https://"),
        ("ftp://calendar.example.org/feed.ics", "https://"),
        ("https://user:pass@calendar.example.org/f", "user name"),
        ("https://calendar.example.org:70000/f", "port"),
        ("https://calendar example.org/feed.ics", "ASCII"),
        ("https:///nohost/feed.ics", "ASCII"),
    ],
)
def test_a_feed_url_that_is_not_an_https_calendar_is_a_400(
    client: TestClient, host: User, listing: str, url: str, why: str
) -> None:
    problem = assert_problem(add_feed(client, host, listing, url), 400, "url")

    assert why in problem["errors"]["url"][0]
    assert feeds(client, host, listing) == []


def test_a_listing_imports_a_few_calendars_each_once(
    client: TestClient, owner: psycopg.Connection[Any], host: User, listing: str
) -> None:
    (most,) = owner.execute("select max_feeds_per_listing from app_private.calendar_settings").fetchone()  # type: ignore[misc]
    for n in range(most):
        assert add_feed(client, host, listing, f"https://192.0.2.{n + 1}/feed.ics").status_code == 201

    assert_problem(add_feed(client, host, listing, "https://192.0.2.1/feed.ics"), 409, "url")
    assert_problem(add_feed(client, host, listing, "https://192.0.2.99/feed.ics"), 409, "url")
    assert len(feeds(client, host, listing)) == most


# --- importing ---------------------------------------------------------------------------------


def test_a_feed_blocks_its_events_and_a_booking_over_them_is_refused(
    client: TestClient, ical: CalendarServer, imported: dict[str, Any], host: User, guest: User, listing: str
) -> None:
    blocks = taken(client, host, listing)

    assert blocks == [(day(10), day(13), imported["id"]), (day(20), day(22), imported["id"])]
    assert (imported["events_imported"], imported["events_skipped"], imported["last_error"]) == (2, 0, None)
    assert_problem(book(client, guest, listing, 12, 15), 409, "start_date")
    assert book(client, guest, listing, 13, 15).status_code == 201  # check-out day of the block: free
    r = client.get(f"/api/products/?check_in={day(11)}&check_out={day(12)}&host={host.id}")
    assert listing not in {p["id"] for p in r.json()["results"]}  # the search's free-dates filter sees it
    block_id = client.get(f"/api/products/{listing}/availability/", headers=host.auth).json()["unavailable"][0]
    assert_problem(
        client.delete(f"/api/products/{listing}/blocked-dates/{block_id['block_id']}/", headers=host.auth), 409
    )


def test_an_unchanged_feed_is_a_304_and_a_changed_one_unblocks_what_it_removed(
    client: TestClient,
    owner: psycopg.Connection[Any],
    ical: CalendarServer,
    imported: dict[str, Any],
    sync: Settings,
    host: User,
    guest: User,
    listing: str,
) -> None:
    path = f"/{listing}.ics"
    export = export_path(client, host, listing)
    uids_before = {str(e["UID"]) for e in Calendar.from_ical(client.get(export).content).walk("VEVENT")}

    refetch(owner, imported["id"])
    run_imports(sync)

    assert ical.seen(path)[-1].headers["if-none-match"] == '"v1"'
    (feed,) = feeds(client, host, listing)
    assert (
        feed["last_success_at"] > imported["last_success_at"] and feed["last_changed_at"] == imported["last_changed_at"]
    )
    assert len(taken(client, host, listing)) == 2

    ical.serve(path, ics(all_day(20, 22), all_day(30, 31)), etag='"v2"')  # days 10-13 freed, 30 taken
    refetch(owner, imported["id"])
    run_imports(sync)

    assert taken(client, host, listing) == [(day(20), day(22), imported["id"]), (day(30), day(31), imported["id"])]
    assert book(client, guest, listing, 10, 13).status_code == 201
    uids_after = {str(e["UID"]) for e in Calendar.from_ical(client.get(export).content).walk("VEVENT")}
    assert len(uids_before & uids_after) == 1  # days 20-22 kept their row, so their UID
    client.delete(f"/api/products/{listing}/calendar-feeds/{imported['id']}/", headers=host.auth)
    assert [t[2] for t in taken(client, host, listing)] == [None]  # the feed's blocks went with it; the booking stays


def test_a_body_that_differs_only_by_when_it_was_written_is_not_read_again(
    client: TestClient,
    owner: psycopg.Connection[Any],
    ical: CalendarServer,
    sync: Settings,
    http_feeds: None,
    host: User,
    listing: str,
) -> None:
    path = f"/{listing}-no-etag.ics"
    stamped = ics(all_day(4, 6) + "DTSTAMP:20260101T000000Z\r\n")
    feed = add_feed(client, host, listing, ical.serve(path, stamped)).json()  # no ETag, no Last-Modified
    run_imports(sync)
    first = feeds(client, host, listing)[0]

    ical.serve(path, stamped.replace(b"DTSTAMP:20260101T000000Z", b"DTSTAMP:20260102T101010Z"))
    refetch(owner, feed["id"])
    run_imports(sync)

    again = feeds(client, host, listing)[0]
    assert len(ical.seen(path)) == 2 and "if-none-match" not in ical.seen(path)[-1].headers
    assert again["last_success_at"] > first["last_success_at"] and again["last_changed_at"] == first["last_changed_at"]
    assert [(s, e) for s, e, _ in taken(client, host, listing)] == [(day(4), day(6))]


def test_nights_a_block_held_are_taken_once_it_goes_even_on_a_304(
    client: TestClient,
    owner: psycopg.Connection[Any],
    ical: CalendarServer,
    sync: Settings,
    http_feeds: None,
    host: User,
    listing: str,
) -> None:
    own = client.post(
        f"/api/products/{listing}/blocked-dates/", json={"start_date": day(30), "end_date": day(32)}, headers=host.auth
    ).json()
    feed = add_feed(
        client, host, listing, ical.serve(f"/{listing}-around.ics", ics(all_day(29, 33)), etag='"a"')
    ).json()
    run_imports(sync)
    assert feeds(client, host, listing)[0]["overlapping"] == [
        {"start_date": day(29), "end_date": day(33), "with": "block"}
    ]
    assert [(s, e) for s, e, _ in taken(client, host, listing)] == [
        (day(29), day(30)),
        (day(30), day(32)),
        (day(32), day(33)),
    ]

    client.delete(f"/api/products/{listing}/blocked-dates/{own['id']}/", headers=host.auth)
    refetch(owner, feed["id"])
    run_imports(sync)

    assert ical.seen(f"/{listing}-around.ics")[-1].headers["if-none-match"] == '"a"'  # answered 304
    assert taken(client, host, listing) == [(day(29), day(33), feed["id"])]


def test_the_events_rules_no_end_past_far_recurring_cancelled_and_overlaps(
    client: TestClient, ical: CalendarServer, sync: Settings, http_feeds: None, host: User, guest: User, listing: str
) -> None:
    book(client, guest, listing, 40, 43)
    body = ics(
        all_day(5),  # a DATE with no end: one day (RFC 5545)
        f"DTSTART:{d(8)}T100000Z\r\n",  # a DATE-TIME with no end: a moment, no night
        f"DTSTART:{d(9)}T150000Z\r\nDURATION:P2D\r\n",  # 2 days from its start: nights 9 and 10
        all_day(15, 14),  # ends before it starts
        "DTSTART;VALUE=DATE:garbage\r\n",
        all_day(-10, -5),  # over
        all_day(-2, 3),  # under way: taken whole
        all_day(900, 905),  # past the booking horizon
        all_day(50, 52) + "RRULE:FREQ=WEEKLY;COUNT=3\r\n",
        all_day(60, 62) + "STATUS:CANCELLED\r\n",
        all_day(38, 45),  # over the guest's booking 40-43: its free nights only
    )
    url = ical.serve(f"/{listing}-rules.ics", body)

    add_feed(client, host, listing, url)
    run_imports(sync)

    (feed,) = feeds(client, host, listing)
    assert feed["events_imported"] == 4 and feed["events_skipped"] == 7
    assert feed["skipped"] == {"no_end": 1, "invalid": 2, "past": 1, "out_of_range": 1, "recurring": 1, "cancelled": 1}
    assert feed["overlapping"] == [{"start_date": day(38), "end_date": day(45), "with": "booking"}]
    assert [(s, e) for s, e, _ in taken(client, host, listing)] == [
        (day(-2), day(3)),
        (day(5), day(6)),
        (day(9), day(11)),
        (day(38), day(40)),
        (day(40), day(43)),  # the booking
        (day(43), day(45)),
    ]


def test_an_imported_range_keeps_its_row_from_one_day_to_the_next(
    owner: psycopg.Connection[Any], host: User, listing: str
) -> None:
    (feed,) = owner.execute(
        "insert into app_private.calendar_feeds (product_id, url, name) values (%s, 'https://192.0.2.30/f', 'f')"
        " returning id",
        (listing,),
    ).fetchone()  # type: ignore[misc]
    events = Jsonb({"events": [{"start": day(-3), "end": day(800), "all_day": True}]})  # under way, past the horizon
    apply = "select app_private.calendar_feed_apply(%s, %s, now() + %s * interval '1 day')"
    rows = "select id, stay::text from app.calendar_entries where feed_id = %s"

    owner.execute(apply, (feed, events, 0))
    today_rows = owner.execute(rows, (feed,)).fetchall()
    owner.execute(apply, (feed, events, 1))

    assert owner.execute(rows, (feed,)).fetchall() == today_rows == [(today_rows[0][0], f"[{day(-3)},{day(800)})")]


def test_five_hundred_events_import(
    client: TestClient, ical: CalendarServer, sync: Settings, http_feeds: None, host: User, listing: str
) -> None:
    body = ics(*(all_day(2 * n, 2 * n + 1) for n in range(1, 501)))  # every other night for 1000 days
    url = ical.serve(f"/{listing}-500.ics", body)

    add_feed(client, host, listing, url)
    run_imports(sync)

    (feed,) = feeds(client, host, listing)
    horizon = 365  # 731-day windows at most: read the next year
    assert feed["events_imported"] + feed["skipped"].get("out_of_range", 0) == 500
    assert len(taken(client, host, listing)) == len([n for n in range(1, 501) if 2 * n < horizon])


# --- bad feeds: a per-feed error, nothing else changed -----------------------------------------


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"body": b"<html><body>Sign in</body></html>", "content_type": "text/html"}, "not an iCalendar"),
        ({"size": 50 * MB}, "larger than"),
        ({"size": 50 * MB, "declare_size": True}, "larger than"),
        ({"hang": True}, "did not answer within"),
        ({"status": 302, "location": "http://169.254.169.254/latest/meta-data/"}, "not a public internet address"),
        ({"status": 302, "location": "http://10.0.0.1/calendar.ics"}, "not a public internet address"),
        ({"status": 500}, "answered 500"),
        ({"body": ics(*[all_day(1, 2)] * 5001)}, "more than 5000 events"),
    ],
    ids=[
        "not-ical",
        "50MB",
        "50MB-declared",
        "never-answers",
        "redirect-to-metadata",
        "redirect-to-private",
        "500",
        "5001-events",
    ],
)
def test_a_bad_feed_is_an_error_for_its_host_and_changes_nothing(
    client: TestClient,
    owner: psycopg.Connection[Any],
    ical: CalendarServer,
    imported: dict[str, Any],
    sync: Settings,
    host: User,
    listing: str,
    answer: dict[str, Any],
    error: str,
) -> None:
    before = taken(client, host, listing)
    path = f"/{listing}.ics"
    ical.serve(path, **answer)
    seen = len(ical.requests)

    refetch(owner, imported["id"])
    run_imports(sync)

    (feed,) = feeds(client, host, listing)
    assert feed["status"] == "error" and error in feed["last_error"], feed["last_error"]
    assert taken(client, host, listing) == before
    assert (feed["events_imported"], feed["last_changed_at"]) == (
        imported["events_imported"],
        imported["last_changed_at"],
    )
    assert [r.path for r in ical.requests[seen:]] == [path]  # a redirect to a private address is never followed


def test_loopback_is_refused_unless_allowed_and_the_checked_address_is_the_one_connected(
    ical: CalendarServer, sync: Settings
) -> None:
    url = ical.serve("/direct.ics", ics(all_day(3, 4)))
    closed = calendars.Limits(connect_timeout=0.5, total_timeout=1.0, max_bytes=MB, https_only=False)
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        """Answers loopback first, a private address to anyone asking again (DNS rebinding)."""
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["10.0.0.1"]

    opened = replace(closed, allowed=(ipaddress.ip_network("127.0.0.1/32"),), resolve=rebinding)
    seen = len(ical.requests)

    assert "not a public internet address" in asyncio.run(calendars.read_feed(url, None, None, closed))["error"]
    by_name = ical.url("/direct.ics", host="localhost")
    assert "not a public internet address" in asyncio.run(calendars.read_feed(by_name, None, None, closed))["error"]
    assert len(ical.requests) == seen  # refused before connecting
    read = asyncio.run(calendars.read_feed(ical.url("/direct.ics", host="calendar.test"), None, None, opened))
    assert len(read["events"]) == 1 and lookups == ["calendar.test"]  # resolved once, connected to what was checked


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert calendars.is_public(ipaddress.ip_address(address)) is public


def test_the_schedule_defers_due_feeds_only(
    client: TestClient, owner: psycopg.Connection[Any], host: User, listing: str
) -> None:
    feed = add_feed(client, host, listing, "https://192.0.2.20/due.ics").json()
    owner.execute("select app_private.calendar_schedule(now() + interval '14 minutes')")
    jobs_before = owner.execute(
        "select count(*) from procrastinate.procrastinate_jobs where args->>'feed_id' = %s", (feed["id"],)
    ).fetchone()

    owner.execute("select app_private.calendar_schedule(now() + interval '16 minutes')")

    jobs_after = owner.execute(
        "select count(*) from procrastinate.procrastinate_jobs where args->>'feed_id' = %s", (feed["id"],)
    ).fetchone()
    assert jobs_before == (1,) and jobs_after == (2,)  # the first fetch at once, the next after 15 minutes
