"""Every request is held to its limits (api/app.py, RequestContext): a body that trickles in gets
408, a request still running at REQUEST_TIMEOUT gets 503 with Retry-After (its query cancelled,
the pool fine), a body past the largest any route accepts gets 413 even without Content-Length;
the notification stream is long-lived by design and has no deadline. Real HTTP on loopback."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson
import psycopg

from api.settings import Settings
from tests.fix_users import MakeUser
from tests.loopback import LiveApp, Server

PROBLEM = "application/problem+json"


def raw_exchange(base_url: str, head: bytes, chunks: Iterator[bytes], pause: float) -> tuple[bytes, float]:
    """Send `head`, then `chunks` with `pause` between them until the server answers; the answer and
    the seconds it took (a client that trickles its body, which no HTTP library would do)."""
    url = urlsplit(base_url)
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], pause)[0]:
                break  # the server has answered
            try:
                sock.sendall(chunk)
            except OSError:
                break  # it answered and closed
        answer = b""
        while data := sock.recv(65536):
            answer += data
    return answer, time.monotonic() - started


def parsed(answer: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, orjson.loads(body) if body else {}


def test_a_body_that_trickles_in_gets_408_at_the_deadline(settings: Settings) -> None:
    own = replace(settings, request_timeout=1.0)
    head = (
        b"POST /admin/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )

    with Server(LiveApp(own), lifespan="on") as app:
        answer, seconds = raw_exchange(app.base_url, head, iter([b"email=a"] * 100), pause=0.2)

    status, headers, body = parsed(answer)
    assert status == 408 and headers["content-type"] == PROBLEM
    assert body["status"] == 408 and "within 1 seconds" in body["detail"] and body["request_id"]
    assert headers["connection"] == "close"
    assert 0.9 < seconds < 3.5  # at the deadline, not when the client gives up


def test_a_request_past_its_deadline_gets_503_and_its_query_is_cancelled(settings: Settings, owner_url: str) -> None:
    own = replace(settings, request_timeout=1.0)  # below anon's statement timeout (3 s)
    waiting_sql = "select count(*) from pg_locks where relation = 'app.amenities'::regclass and not granted"
    answers: list[httpx2.Response] = []
    with (
        Server(LiveApp(own), lifespan="on") as app,
        httpx2.Client(base_url=app.base_url, timeout=10) as client,
        psycopg.connect(owner_url) as locker,
        psycopg.connect(owner_url, autocommit=True) as watcher,
    ):

        def waiting() -> int:
            return watcher.execute(waiting_sql).fetchone()[0]  # type: ignore[index,no-any-return]

        locker.execute("lock table app.amenities in access exclusive mode")  # the request's query waits
        started = time.monotonic()
        slow = threading.Thread(target=lambda: answers.append(client.get("/api/amenities/")))
        slow.start()
        while not (waited := waiting()) and time.monotonic() < started + 5:
            time.sleep(0.02)
        slow.join(timeout=10)
        seconds = time.monotonic() - started
        left = waiting()  # at once: the statement timeout (3 s) has not ended it
        locker.commit()
        after = [client.get("/api/amenities/").status_code for _ in range(5)]

    [answer] = answers
    assert waited == 1  # the query waited for the lock
    assert answer.status_code == 503 and answer.headers["content-type"] == PROBLEM
    assert answer.headers["retry-after"] == "5" and "within 1 seconds" in answer.json()["detail"]
    assert 0.9 < seconds < 3  # the deadline answered, before the statement timeout would have
    assert left == 0  # psycopg cancelled the query on the server before the answer went out
    assert after == [200] * 5  # the pool is fine


def test_a_body_past_every_limit_is_413_even_without_content_length(settings: Settings, make_user: MakeUser) -> None:
    own = replace(settings, max_body_bytes=16_384, max_upload_bytes=32_768)  # the cap: 32 KiB + 64 KiB
    user = make_user("guest")
    head = (
        b"PUT /api/users/me/photo/ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nAuthorization: Bearer " + user.token.encode() + b"\r\n\r\n"
    )
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG\r\n\x1a\n'
    chunk = b"0" * 16_384
    chunks = iter([b"%x\r\n%s\r\n" % (len(part), part)] + [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 64)

    def stored() -> set[Path]:
        return {p for p in own.media_root.rglob("*") if p.is_file()}

    before = stored()  # the media folder is the session's: earlier tests' photos are there
    with Server(LiveApp(own), lifespan="on") as app:
        answer, _ = raw_exchange(app.base_url, head, chunks, pause=0.02)

    status, headers, body = parsed(answer)
    assert status == 413 and headers["content-type"] == PROBLEM, answer[:300]
    assert "98304 bytes" in body["detail"]
    assert stored() - before == set()  # nothing of the refused upload was kept


def test_the_notification_stream_has_no_deadline(settings: Settings, make_user: MakeUser) -> None:
    own = replace(settings, request_timeout=0.5, sse_heartbeat_seconds=0.2)
    user = make_user("guest")
    frames = []

    with Server(LiveApp(own), lifespan="on") as app, httpx2.Client(base_url=app.base_url, timeout=10) as client:
        with client.stream("GET", "/api/notifications/stream", headers=user.auth) as stream:
            started = time.monotonic()
            for line in stream.iter_lines():
                frames.append(line)
                if time.monotonic() - started > 1.5:
                    break
        assert stream.status_code == 200

    assert frames.count(": heartbeat") >= 4  # still streaming three deadlines later
