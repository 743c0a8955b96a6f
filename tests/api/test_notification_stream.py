"""The live stream of notifications (Server-Sent Events), against the app served by uvicorn on loopback.

A real server, not the in-process client: the stream is endless, and what is tested is that a
notification committed by another request arrives within a second, that heartbeats flow, and
that a reconnect with Last-Event-ID replays what was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx2
import orjson
import psycopg
import pytest
from psycopg import sql
from starlette.types import Message

from api import events
from api.settings import Settings
from tests.fix_api import assert_problem
from tests.fix_data import day, new_listing
from tests.fix_users import MakeUser, User
from tests.loopback import LiveApp, Server


@dataclass
class KeptApp(LiveApp):
    """A LiveApp that keeps the app it serves (its state: the Broker)."""

    built: Any = None

    def app(self) -> Any:
        self.built = super().app()
        return self.built

    @property
    def broker(self) -> events.Broker:
        broker: events.Broker = self.built.state.broker
        return broker


@pytest.fixture(scope="module")
def live(pay_settings: Settings) -> Iterator[KeptApp]:
    with Server(KeptApp(replace(pay_settings, sse_heartbeat_seconds=0.3)), lifespan="on") as app:
        yield app


class Stream:
    """Read an SSE stream in a thread; `next_event()` waits for the next event (skipping comments)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.client = httpx2.Client(timeout=httpx2.Timeout(10.0))
        self.response = self.client.send(self.client.build_request("GET", url, headers=headers), stream=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines():
                self.lines.put(line)
        except httpx2.HTTPError:
            pass

    def next_event(self, timeout: float) -> dict[str, Any]:
        event: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line == "" and "data" in event:
                return event
            if line.startswith(":"):
                event.setdefault("comments", []).append(line)
            elif ":" in line:
                key, value = line.split(":", 1)
                event[key] = value.strip()

    def close(self) -> None:
        self.response.close()
        self.client.close()


def request_booking(live: LiveApp, owner: psycopg.Connection[Any], host: User, guest: User, offset: int) -> None:
    listing = new_listing(owner, host.id)
    r = httpx2.post(
        f"{live.base_url}/api/bookings/",
        json={"product_id": listing, "start_date": day(offset), "end_date": day(offset + 1), "guests": 1},
        headers=guest.auth,
    )
    assert r.status_code == 201, r.text


def test_a_new_notification_arrives_within_a_second_and_a_reconnect_replays_what_was_missed(
    live: LiveApp, owner: psycopg.Connection[Any], host: User, guest: User
) -> None:
    url = f"{live.base_url}/api/notifications/stream"
    stream = Stream(url, host.auth)
    try:
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        started = time.monotonic()
        request_booking(live, owner, host, guest, 10)
        event = stream.next_event(timeout=2)
        elapsed = time.monotonic() - started
    finally:
        stream.close()
    first = orjson.loads(event["data"])
    assert (event["event"], first["type"], event["id"]) == ("notification", "booking_requested", str(first["seq"]))
    assert elapsed < 1.0, elapsed

    # While disconnected, two more happen; the reconnect replays both, in order, then waits.
    request_booking(live, owner, host, guest, 12)
    request_booking(live, owner, host, guest, 14)
    again = Stream(url, {**host.auth, "Last-Event-ID": event["id"]})
    try:
        replayed = [again.next_event(timeout=2) for _ in range(2)]
        time.sleep(0.7)
        lines = []
        while not again.lines.empty():
            lines.append(again.lines.get())
    finally:
        again.close()
    seqs = [int(e["id"]) for e in replayed]
    assert seqs == sorted(seqs) and seqs[0] > int(event["id"])
    assert [orjson.loads(e["data"])["type"] for e in replayed] == ["booking_requested"] * 2
    assert ": heartbeat" in lines


def test_the_stream_is_only_the_callers_own_and_needs_a_token(
    live: LiveApp, owner: psycopg.Connection[Any], host: User, guest: User, other_host: User
) -> None:
    url = f"{live.base_url}/api/notifications/stream"
    assert httpx2.get(url).status_code == 401
    assert httpx2.get(url, headers={**host.auth, "Last-Event-ID": "yesterday"}).status_code == 400

    stream = Stream(url, other_host.auth)
    try:
        request_booking(live, owner, host, guest, 16)  # for host, not other_host
        with pytest.raises(queue.Empty):
            while True:
                event = stream.next_event(timeout=0.8)
                assert "data" not in event
    finally:
        stream.close()


MALFORMED = [
    "not json",
    "",
    "[1, 2]",
    '"a string"',
    "null",
    "{}",
    '{"seq": 1}',
    '{"user_id": 7, "seq": 1}',
    '{"user_id": ["00000000-0000-0000-0000-000000000000"], "seq": 1}',
    '{"user_id": "not-a-uuid", "seq": 1}',
    '{"user_id": "' + "x" * 7900 + '"}',  # NOTIFY's payloads stop just short of 8000 bytes
    "{" * 7000,
]


def test_malformed_payloads_are_ignored_and_the_listener_stays_connected(
    live: KeptApp, owner: psycopg.Connection[Any], host: User, guest: User, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{live.base_url}/api/notifications/stream"
    stream = Stream(url, host.auth)
    try:
        assert stream.response.status_code == 200  # subscribed: the listener is connected
        broker = live.broker
        connects = broker.connects
        with caplog.at_level(logging.DEBUG, logger="nexus.events"):
            for payload in MALFORMED:
                owner.execute("select pg_notify(%s, %s)", (broker.channel, payload))
            request_booking(live, owner, host, guest, 18)
            event = stream.next_event(timeout=2)
    finally:
        stream.close()

    assert orjson.loads(event["data"])["type"] == "booking_requested"
    assert "lost its connection" not in caplog.text
    assert broker.connects == connects
    warnings = [r for r in caplog.records if r.name == "nexus.events" and r.levelno >= logging.WARNING]
    assert len(warnings) <= 1  # the first malformed payload, at most, is a warning; the rest are debug


def test_a_client_role_cannot_speak_on_the_notification_channel_nor_see_its_name(
    live: KeptApp, owner: psycopg.Connection[Any], analyst_url: str, host: User
) -> None:
    url = f"{live.base_url}/api/notifications/stream"
    stream = Stream(url, host.auth)
    try:
        assert stream.response.status_code == 200  # the listener is listening
        broker = live.broker
        heard = broker.heard
        for_host = orjson.dumps({"user_id": str(host.id), "seq": 1}).decode()
        with psycopg.connect(analyst_url, autocommit=True) as analyst:
            analyst.execute(sql.SQL("notify nexus_notifications, {}").format(sql.Literal(for_host)))
            analyst.execute("select pg_notify('nexus_notifications', %s)", (for_host,))
            # Nor can it read the name from what the listener last ran (pg_stat_activity shows another
            # role's query as "<insufficient privilege>").
            shown = analyst.execute(
                "select count(*) from pg_stat_activity where query ilike %s", (f"%{broker.channel}%",)
            ).fetchone()
        time.sleep(0.3)
        assert broker.heard == heard  # nobody heard the analyst

        owner.execute("select pg_notify(%s, %s)", (broker.channel, for_host))
        deadline = time.monotonic() + 2
        while broker.heard == heard:  # the product's own channel is heard
            assert time.monotonic() < deadline, "the listener did not hear its own channel"
            time.sleep(0.01)
    finally:
        stream.close()
    assert broker.channel.startswith("nexus_notifications_") and shown == (0,)


@pytest.fixture(scope="module")
def capped(pay_settings: Settings) -> Iterator[KeptApp]:
    """An app holding at most 2 streams per user and 4 in all."""
    settings = replace(pay_settings, sse_heartbeat_seconds=0.2, streams_per_user=2, streams_max=4)
    with Server(KeptApp(settings), lifespan="on") as app:
        yield app


def attempt(url: str, user: User) -> httpx2.Response:
    """Ask for a stream and hang up: its status and headers (and a refusal's body); never waits on a stream."""
    with httpx2.Client(timeout=5) as client, client.stream("GET", url, headers=user.auth) as response:
        if response.status_code != 200:
            response.read()
        return response


def open_streams(url: str, user: User, n: int) -> list[Stream]:
    streams = [Stream(url, user.auth) for _ in range(n)]
    assert [s.response.status_code for s in streams] == [200] * n
    return streams


def test_streams_are_capped_per_user_and_per_process_with_a_429_before_any_stream_starts(
    capped: KeptApp, host: User, guest: User, other_host: User, make_user: MakeUser
) -> None:
    url = f"{capped.base_url}/api/notifications/stream"
    streams = open_streams(url, host, 2)  # the host's cap
    try:
        over_user = attempt(url, host)
        streams += open_streams(url, guest, 1) + open_streams(url, other_host, 1)  # another user still gets one
        over_process = attempt(url, make_user("guest"))  # 4 in all: the process's cap

        streams.pop(0).close()  # closing one frees a slot
        deadline = time.monotonic() + 5
        while (again := attempt(url, host)).status_code == 429:
            assert time.monotonic() < deadline, "closing a stream did not free its slot"
            time.sleep(0.05)
        assert again.status_code == 200
    finally:
        for stream in streams:
            stream.close()

    assert (over_user.status_code, over_process.status_code) == (429, 429)
    for refused in (over_user, over_process):
        assert_problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
    assert "2" in over_user.json()["detail"]


def test_a_stream_whose_client_left_before_its_first_byte_gives_its_place_back() -> None:
    async def scenario() -> tuple[int, int]:
        broker = events.Broker("")
        broker.task = asyncio.create_task(asyncio.sleep(3600))  # a listener that is "listening"
        broker.ready.set()
        queue = await broker.subscribe("u1", per_user=1, limit=1)
        held = broker.count

        async def body() -> AsyncIterator[bytes]:
            yield b"never asked for"

        async def gone(message: Message) -> None:
            raise OSError("the client hung up")

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        response = events.EventStream(body(), release=lambda: broker.unsubscribe("u1", queue), headers={})
        with contextlib.suppress(Exception):
            await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, gone)
        await broker.close()
        return held, broker.count

    held, after = asyncio.run(scenario())

    assert (held, after) == (1, 0)
