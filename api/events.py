"""Live notifications: one LISTEN connection per process, fanned out to each user's streams.

`app_private.notify` NOTIFYs the notifications channel with {"user_id", "seq"} when a
notification commits. The channel's name is secret ('nexus_notifications_<suffix>', so that
no client role can speak on it or listen to it: sql/functions/04_channels.sql); the listener
learns it from app.listen_channels() each time it connects (`listen`, shared with api/cache.py). The Broker holds the process's one listening connection (its own,
outside the pool) and wakes the streams of that user; each stream then reads what is new
through the pool (`api.notifications_since`, as the user, under RLS) and gives the
connection back. So a thousand open streams hold one connection, not a thousand.

If the listening connection drops, it reconnects and wakes every stream, which re-reads
from its last event id: nothing is missed.

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
from typing import Any

import orjson
import psycopg
from psycopg import sql

log = logging.getLogger("nexus.events")

CHANNEL = "notifications"  # its name in app.listen_channels()
# {"user_id" : "<uuid>", "seq" : <bigint>} is under 100 characters; anything longer is not ours.
MAX_PAYLOAD = 200
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


class Broker:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.streams: dict[str, set[asyncio.Queue[None]]] = {}
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.channel = ""  # the channel's secret name, learned when the listener connects
        self.connects = 0  # listening connections made (1 while nothing went wrong)
        self.heard = 0  # payloads heard on the channel
        self.ignored = 0  # of those, payloads that were not a notification's

    async def subscribe(self, user_id: str) -> asyncio.Queue[None]:
        """A queue that gets a wake-up whenever a notification for the user commits."""
        if self.task is None:
            self.task = asyncio.create_task(self._listen(), name="notifications-listen")
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self.streams.setdefault(user_id, set()).add(queue)
        await asyncio.wait_for(self.ready.wait(), timeout=10)
        return queue

    def unsubscribe(self, user_id: str, queue: asyncio.Queue[None]) -> None:
        queues = self.streams.get(user_id)
        if queues is not None:
            queues.discard(queue)
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
