"""Live notifications: one LISTEN connection per process, fanned out to each user's streams.

`app_private.notify` NOTIFYs channel `nexus_notifications` with {"user_id", "seq"} when a
notification commits. The Broker holds the process's one listening connection (its own,
outside the pool) and wakes the streams of that user; each stream then reads what is new
through the pool (`api.notifications_since`, as the user, under RLS) and gives the
connection back. So a thousand open streams hold one connection, not a thousand.

If the listening connection drops, it reconnects and wakes every stream, which re-reads
from its last event id: nothing is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
import psycopg

log = logging.getLogger("nexus.events")

CHANNEL = "nexus_notifications"


class Broker:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.streams: dict[str, set[asyncio.Queue[None]]] = {}
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

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

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    await conn.execute(f"listen {CHANNEL}")
                    self.ready.set()
                    # Whatever committed while we were not listening: every stream re-reads.
                    self._wake([q for qs in self.streams.values() for q in qs])
                    async for note in conn.notifies():
                        user_id = orjson.loads(note.payload).get("user_id")
                        self._wake(self.streams.get(str(user_id), ()))
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
