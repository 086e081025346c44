"""Moving events from the Redis outbox into SQL, where they are kept and delivered from.

Every script that changes a hold or appointment appends its event to the hash tag's outbox
stream in the same atomic step. Here a worker copies new entries into SQL (the event, and one
pending delivery per endpoint that wants it) in one transaction, then records how far it got
(`holds:{T}:events:moved`) and trims what SQL has, keeping the last minute for live readers.
Event ids come from the entry, so two workers moving the same entries write each event once;
a lease lets one worker at a time do the moving, so the others do not repeat its work.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from app.catalog.cache import CatalogCache
from app.db import webhooks_repo
from app.db.models import WebhookEndpoint
from app.events import outbox as payloads
from app.store import keys
from workers.context import WorkerContext

log = logging.getLogger("holds.worker.outbox")
MOVE_INTERVAL_SECONDS = 0.2
ROUND_LIMIT = 2000  # events one round moves, over all tags
LEASE_MS = 5000
MAX_WAIT_FOR_CLEANUP_SECONDS = 1.0
MIN_PER_TAG = 20
KEEP_FOR_LIVE_READERS_MS = 60_000
ENDPOINTS_MAX_AGE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Entry:
    """One event read from a tag's outbox (an entry shared by several expiries gives several)."""

    tag: str
    event: payloads.Event


class OutboxMover:
    """One worker's mover: remembers each tag's position between rounds."""

    def __init__(self, worker: WorkerContext, catalogs: CatalogCache) -> None:
        self.worker = worker
        self.catalogs = catalogs
        self.moved: dict[str, str] = {}
        self._resume_at = 0  # where in the sorted tags the next round begins
        self.name = uuid.uuid4().hex  # this mover, in the lease
        self._endpoints: dict[str, list[WebhookEndpoint]] = {}
        self._endpoints_read_at = 0.0

    async def move_once(self) -> int:
        """Copy new outbox events of every tag into SQL, if this worker holds the mover's
        lease; returns how many."""
        if not await self._hold_lease():
            return 0
        await self._after_cleanups()
        tags = sorted(await self.worker.tags())
        await self._learn_positions(tags)
        entries = await self._new_entries(tags)
        if not entries:
            return 0
        await self._record(entries)
        await self._advance(entries)
        return len(entries)

    async def _hold_lease(self) -> bool:
        """One worker moves at a time, so workers do not all decode and write the same
        entries; another takes over within LEASE_MS of the mover's death. The lease saves
        work only: two movers at once would still record each event once."""
        redis, key = self.worker.redis, keys.outbox_mover()
        if await redis.set(key, self.name, nx=True, px=LEASE_MS):
            self.moved.clear()  # another may have moved on meanwhile: read where it got to
            return True
        if await redis.get(key) == self.name.encode():
            await redis.pexpire(key, LEASE_MS)
            return True
        return False

    async def _after_cleanups(self) -> None:
        """Wait (a little) while this worker cleans up expired holds: a burst of expiries
        frees its slots before its events are moved, which may be a moment later."""
        waited = 0.0
        while self.worker.cleanups_running and waited < MAX_WAIT_FOR_CLEANUP_SECONDS:
            await asyncio.sleep(0.01)
            waited += 0.01

    async def _learn_positions(self, tags: list[str]) -> None:
        unknown = [tag for tag in tags if tag not in self.moved]
        if not unknown:
            return
        pipe = self.worker.redis.pipeline(transaction=False)
        for tag in unknown:
            pipe.get(keys.events_moved(tag))
        for tag, position in zip(unknown, await pipe.execute(), strict=True):
            self.moved[tag] = position.decode() if position else "0-0"

    async def _new_entries(self, tags: list[str]) -> list[Entry]:
        """The next events to move: at most ROUND_LIMIT (or one entry's), whole entries only,
        so one transaction stays a few thousand events and the worker's expiry cleanup is
        never starved behind it. A round that runs out starts the next at the tag it left."""
        if not tags:
            return []
        tags = tags[self._resume_at % len(tags) :] + tags[: self._resume_at % len(tags)]
        per_tag = max(MIN_PER_TAG, ROUND_LIMIT // len(tags))
        pipe = self.worker.redis.pipeline(transaction=False)
        for tag in tags:
            pipe.xrange(keys.events(tag), min=f"({self.moved[tag]}", count=per_tag)
        taken: list[Entry] = []
        for position, (tag, reply) in enumerate(zip(tags, await pipe.execute(), strict=True)):
            for entry_id, fields in reply:
                events = payloads.events_of(entry_id, _flat(fields))
                if taken and len(taken) + len(events) > ROUND_LIMIT:
                    self._resume_at += position
                    return await self._completed(taken)
                taken += [Entry(tag, event) for event in events]
        return await self._completed(taken)

    async def _completed(self, entries: list[Entry]) -> list[Entry]:
        """Change-only entries (expiries) made whole from their holds' records, which Redis
        keeps for the retention period after a hold ends: one read for all of them."""
        partial = [n for n, entry in enumerate(entries) if payloads.is_change_only(entry.event)]
        if not partial:
            return entries
        pipe = self.worker.redis.pipeline(transaction=False)
        for n in partial:
            pipe.hgetall(keys.hold(entries[n].event.id))
        for n, record in zip(partial, await pipe.execute(), strict=True):
            if record:
                entry = entries[n]
                whole = payloads.completed(entry.event, _decoded(record))
                entries[n] = Entry(entry.tag, whole)
        return entries

    async def _record(self, entries: list[Entry]) -> None:
        events = await self._events(entries)
        endpoints = await self._live_endpoints({event["org_id"] for event in events})
        deliveries = [
            {
                "event_id": event["id"],
                "endpoint_id": endpoint.id,
                "subject_id": event["subject_id"],
                "sequence": event["sequence"],
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": event["created_at"],
                "created_at": event["created_at"],
            }
            for event in events
            for endpoint in endpoints.get(event["org_id"], ())
            if event["type"] in endpoint.events and endpoint.created_at <= event["created_at"]
        ]
        async with self.worker.sessions.begin() as session:
            await webhooks_repo.record_events(session, events, deliveries)

    async def _events(self, entries: list[Entry]) -> list[dict[str, Any]]:
        """The events' SQL rows. A change-only entry whose hold record Redis no longer has
        (the workers were away for longer than the hold retention) takes the data of the
        hold's previous event, with the change applied."""
        rows: list[dict[str, Any]] = []
        latest: dict[str, dict[str, Any]] = {}
        earlier = await self._kept_events(
            {entry.event.id for entry in entries if payloads.is_change_only(entry.event)}
        )
        for entry in entries:
            event = entry.event
            if not payloads.is_change_only(event):
                row = await self._event(entry)
            elif (before := latest.get(event.id) or earlier.get(event.id)) is not None:
                row = _row(
                    entry, before["org_id"], before["data"] | {"status": event.record["status"]}
                )
            else:
                log.error("an expiry with nothing to complete it from; not recorded",
                          extra={"hold_id": event.id, "entry": event.entry_id})  # fmt: skip
                continue
            rows.append(row)
            latest[event.id] = row
        return rows

    async def _kept_events(self, subject_ids: set[str]) -> dict[str, dict[str, Any]]:
        if not subject_ids:
            return {}
        async with self.worker.sessions() as session:
            found = await webhooks_repo.latest_events(session, subject_ids)
        return {subject: {"org_id": row.org_id, "data": row.data} for subject, row in found.items()}

    async def _event(self, entry: Entry) -> dict[str, Any]:
        event = entry.event
        catalog = await self.catalogs.get(event.record["org"])
        return _row(entry, event.record["org"], payloads.data_of(event, catalog))

    async def _live_endpoints(self, org_ids: Iterable[str]) -> dict[str, list[WebhookEndpoint]]:
        """Endpoints by organisation, re-read every few seconds (a new endpoint receives the
        events of changes made after its creation)."""
        if time.monotonic() - self._endpoints_read_at > ENDPOINTS_MAX_AGE_SECONDS:
            async with self.worker.sessions() as session:
                found = await webhooks_repo.live_endpoints(session)
            self._endpoints = {}
            for endpoint in found:
                self._endpoints.setdefault(endpoint.org_id, []).append(endpoint)
            self._endpoints_read_at = time.monotonic()
        return {org: self._endpoints.get(org, []) for org in org_ids}

    async def _advance(self, entries: list[Entry]) -> None:
        last = {entry.tag: entry.event.entry_id for entry in entries}
        horizon_ms = int(time.time() * 1000) - KEEP_FOR_LIVE_READERS_MS
        pipe = self.worker.redis.pipeline(transaction=False)
        for tag, entry_id in last.items():
            pipe.set(keys.events_moved(tag), entry_id)
            trim_to = min(int(entry_id.split("-", 1)[0]), horizon_ms)
            pipe.xtrim(keys.events(tag), minid=str(trim_to), approximate=False)
        await pipe.execute()
        self.moved.update(last)


def _row(entry: Entry, org_id: str, data: dict[str, Any]) -> dict[str, Any]:
    event = entry.event
    return {
        "id": payloads.event_id(entry.tag, event.place),
        "org_id": org_id,
        "type": event.type,
        "subject_id": event.id,
        "sequence": _sortable(event.entry_id),
        "data": data,
        "created_at": payloads.entry_moment(event.entry_id),
    }


def _decoded(record: dict[bytes, bytes]) -> dict[str, str]:
    return {field.decode(): value.decode() for field, value in record.items()}


def _flat(fields: dict[bytes, bytes]) -> list[bytes]:
    """redis-py's XRANGE reply fields as the flat list XREAD gives `events_of`."""
    return [item for pair in fields.items() for item in pair]


def _sortable(entry_id: str) -> str:
    """The entry id padded, so text order is the order of the changes."""
    millis, sequence = entry_id.split("-", 1)
    return f"{int(millis):015d}-{int(sequence):08d}"


async def move(worker: WorkerContext, mover: OutboxMover, moved: asyncio.Event) -> None:
    """Move outbox entries into SQL five times a second; `moved` wakes the deliverer."""
    while True:
        try:
            if await mover.move_once():
                moved.set()
                continue
        except (RedisError, OSError, SQLAlchemyError) as exc:
            log.warning("could not move events yet", extra={"error": type(exc).__name__})
            await asyncio.sleep(1)
        except Exception:  # an entry it cannot read: say so loudly, keep the worker alive
            log.exception("could not move events")
            await asyncio.sleep(1)
        await asyncio.sleep(MOVE_INTERVAL_SECONDS)
