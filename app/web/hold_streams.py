"""The status streams one API process holds open, and the one loop that feeds them.

Every `poll_seconds` the loop sends one non-blocking XREAD per hash tag that has an open stream
(all in one write, through the auto-pipelined client), and hands each hold's events to the
queues of its streams. So a change made by any API process or worker reaches every stream
within one poll, the cost grows with tags rather than streams, and nothing spans two Redis
Cluster slots. Expiry needs no event: each stream keeps its own timer (views/hold_events.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

from aiohttp import web

from app.errors import TooManyStreams
from app.events.outbox import Event, events_of, subjects_of
from app.ids import tag_of
from app.store.events import Entry, EventStore
from app.web.state import HOLD_STREAMS, PIPELINE, SETTINGS

log = logging.getLogger("holds.streams")

# None tells a stream to end: the process is shutting down.
StreamQueue = asyncio.Queue[Event | None]


class HoldStreams:
    def __init__(self, events: EventStore, *, poll_seconds: float) -> None:
        self.events = events
        self.poll_seconds = poll_seconds
        self._queues: dict[str, dict[str, set[StreamQueue]]] = {}  # tag -> hold id -> queues
        self._last_seen: dict[str, str] = {}  # tag -> id of the last entry handed out
        self._open: Counter[str] = Counter()  # owner (API key or hold) -> open streams
        self._task: asyncio.Task[None] | None = None

    @property
    def open_streams(self) -> int:
        return sum(self._open.values())

    @contextlib.asynccontextmanager
    async def watch(self, hold_id: str, owner: str, limit: int) -> AsyncIterator[StreamQueue]:
        """A queue of the hold's events from now on; at most `limit` at once per owner."""
        if self._open[owner] >= limit:
            raise TooManyStreams(f"At most {limit} status streams may be open at once.")
        self._open[owner] += 1
        queue: StreamQueue = asyncio.Queue()
        tag = tag_of(hold_id)
        self._queues.setdefault(tag, {}).setdefault(hold_id, set()).add(queue)
        try:
            if tag not in self._last_seen:
                latest = await self.events.latest_id(tag)
                self._last_seen.setdefault(tag, latest)
            if self._task is None:
                self._task = asyncio.create_task(self._follow())
            yield queue
        finally:
            self._forget(tag, hold_id, queue)
            self._open[owner] -= 1
            if self._open[owner] <= 0:
                del self._open[owner]

    def _forget(self, tag: str, hold_id: str, queue: StreamQueue) -> None:
        by_hold = self._queues.get(tag, {})
        by_hold.get(hold_id, set()).discard(queue)
        if not by_hold.get(hold_id):
            by_hold.pop(hold_id, None)
        if not by_hold:
            self._queues.pop(tag, None)
            self._last_seen.pop(tag, None)

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            tags = list(self._last_seen.items())
            replies = await asyncio.gather(
                *(self.events.read_after(tag, last) for tag, last in tags),
                return_exceptions=True,
            )
            for (tag, _), reply in zip(tags, replies, strict=True):
                if isinstance(reply, BaseException):
                    log.warning("reading the events of {%s} failed: %r", tag, reply)
                    continue
                try:
                    self._hand_out(tag, reply)
                except Exception:  # one bad entry must not stop every stream of the process
                    log.exception("handing out the events of {%s} failed", tag)

    def _hand_out(self, tag: str, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            if tag in self._last_seen:
                self._last_seen[tag] = entry_id.decode()
            watched = self._queues.get(tag, {})
            if any(subject in watched for subject in subjects_of(fields)):
                for event in events_of(entry_id, fields):
                    for queue in watched.get(event.id, ()):
                        queue.put_nowait(event)

    async def aclose(self) -> None:
        """End every open stream, and stop following."""
        for by_hold in self._queues.values():
            for queues in by_hold.values():
                for queue in queues:
                    queue.put_nowait(None)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


async def open_streams(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the process's status streams."""
    app[HOLD_STREAMS] = HoldStreams(
        EventStore(app[PIPELINE]), poll_seconds=app[SETTINGS].stream_poll_seconds
    )
    yield
    await app[HOLD_STREAMS].aclose()


async def close_streams(app: web.Application) -> None:
    """On shutdown, before aiohttp waits for handlers: end the streams so they finish."""
    await app[HOLD_STREAMS].aclose()
