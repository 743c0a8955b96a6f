"""Live notifications: one LISTEN connection per process, fanned out to each user's streams.

`app_private.notify` NOTIFYs the notifications channel with {"user_id", "seq"} when a
notification commits. The channel's name is secret ('nexus_notifications_<suffix>', so that
no client role can speak on it or listen to it: sql/functions/04_channels.sql); the listener
learns it from app.listen_channels() each time it connects (`listen`, shared with api/cache.py). The Broker holds the process's one listening connection (its own,
outside the pool) and wakes the streams of that user; each stream then reads what is new
through the pool (`api.notification_since`, as the user, under RLS) and gives the
connection back. So a thousand open streams hold one connection, not a thousand.

If the listening connection drops, it reconnects and wakes every stream, which re-reads
from its last event id: nothing is missed.

Streams are capped per user and per process (STREAMS_PER_USER, STREAMS_MAX): `subscribe`
refuses past either with StreamsFull, counted and added in one step (no await between). A
stream gives its place back however it ends (EventStream), also when the client left before
its first byte, where the body's own `finally` never runs.

A payload `app_private.notify` never sends (not JSON, not an object, no user_id that is a
UUID, longer than any it sends) is ignored: a warning for the first, debug after. Any role
that could NOTIFY the channel used to make every process drop its connection and wake every
stream with one `select pg_notify(..., 'not json')`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterable, Callable, Mapping
from typing import Any

import orjson
import psycopg
from psycopg import sql
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger("nexus.events")

CHANNEL = "notifications"  # its name in app.listen_channels()
# {"user_id" : "<uuid>", "seq" : <bigint>} is under 100 characters; anything longer is not ours.
MAX_PAYLOAD = 200
STREAMS_RETRY_AFTER = 10  # seconds a stream refused for want of a place is told to wait (Retry-After)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def user_of(payload: str) -> str | None:
    """The user a notification is for; None for a payload app_private.notify never sends."""
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    user_id = data.get("user_id") if isinstance(data, dict) else None
    return user_id if isinstance(user_id, str) and UUID.fullmatch(user_id) else None


async def listen(conn: psycopg.AsyncConnection[Any], name: str) -> str:
    """LISTEN on the product's channel `name` (notifications, catalog); its name is returned.

    The names end with a secret suffix: only the login role (authenticator, which the API's and
    LISTEN_DATABASE_URL's connections are) may ask app.listen_channels() for them.
    """
    cursor = await conn.execute("select app.listen_channels()")
    row = await cursor.fetchone()
    channel = row[0].get(name) if row and isinstance(row[0], dict) else None
    if not isinstance(channel, str):
        raise psycopg.ProgrammingError(f"app.listen_channels() names no channel {name!r}")
    await conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
    return channel


class StreamsFull(Exception):
    """No place for another stream: the user's (`per_user` True) or the whole process's."""

    def __init__(self, per_user: bool, limit: int) -> None:
        super().__init__(f"{'per user' if per_user else 'per process'}: {limit}")
        self.per_user = per_user
        self.limit = limit


class EventStream(StreamingResponse):
    """A text/event-stream response that calls `release` when it ends, however it ends.

    Its body's `finally` is not enough: a body never started (the client hung up before the
    response head went out) never runs it, and the stream's place would be held for good.
    """

    def __init__(self, content: AsyncIterable[bytes], release: Callable[[], None], headers: Mapping[str, str]) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()


class Broker:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.streams: dict[str, set[asyncio.Queue[None]]] = {}
        self.count = 0  # open streams (queues in self.streams)
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.channel = ""  # the channel's secret name, learned when the listener connects
        self.connects = 0  # listening connections made (1 while nothing went wrong)
        self.heard = 0  # payloads heard on the channel
        self.ignored = 0  # of those, payloads that were not a notification's

    async def subscribe(
        self, user_id: str, per_user: int | None = None, limit: int | None = None
    ) -> asyncio.Queue[None]:
        """A queue that gets a wake-up whenever a notification for the user commits.

        StreamsFull when the user already has `per_user` streams or the process `limit`.
        """
        if per_user is not None and len(self.streams.get(user_id, ())) >= per_user:
            raise StreamsFull(True, per_user)
        if limit is not None and self.count >= limit:
            raise StreamsFull(False, limit)
        if self.task is None:
            self.task = asyncio.create_task(self._listen(), name="notifications-listen")
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self.streams.setdefault(user_id, set()).add(queue)
        self.count += 1
        try:
            await asyncio.wait_for(self.ready.wait(), timeout=10)
        except BaseException:
            self.unsubscribe(user_id, queue)
            raise
        return queue

    def unsubscribe(self, user_id: str, queue: asyncio.Queue[None]) -> None:
        """Give a stream's place back (again is harmless)."""
        queues = self.streams.get(user_id)
        if queues is not None and queue in queues:
            queues.remove(queue)
            self.count -= 1
            if not queues:
                del self.streams[user_id]

    def _wake(self, queues: Any) -> None:
        for queue in list(queues):
            with contextlib.suppress(asyncio.QueueFull):  # already woken: it will read everything new
                queue.put_nowait(None)

    def _ignore(self, payload: str) -> None:
        self.ignored += 1
        level = logging.WARNING if self.ignored == 1 else logging.DEBUG
        log.log(level, "notification listener ignored a payload that is not a notification's: %.80r", payload)

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    self.channel = await listen(conn, CHANNEL)
                    self.connects += 1
                    self.ready.set()
                    # Whatever committed while we were not listening: every stream re-reads.
                    self._wake([q for qs in self.streams.values() for q in qs])
                    async for note in conn.notifies():
                        self.heard += 1
                        user_id = user_of(note.payload)
                        if user_id is None:
                            self._ignore(note.payload)
                        else:
                            self._wake(self.streams.get(user_id, ()))
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, ValueError) as exc:
                self.ready.clear()
                log.warning("notification listener lost its connection, reconnecting: %s", exc)
                await asyncio.sleep(1)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
