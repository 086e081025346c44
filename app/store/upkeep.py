"""What the workers read and tidy in Redis: due expiries, the persistence backlog, old intervals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from redis.asyncio import Redis

from app.ids import tag_of
from app.store import codec, keys
from app.store.holds import LONGEST_OCCUPIED


class UpkeepStore:
    def __init__(self, redis: Redis, scripts: codec.ScriptHost | None = None) -> None:
        self.redis = redis
        self._expire = codec.script(scripts or redis, "expire_holds.lua")

    async def expire(self, hold_ids: list[str]) -> list[int]:
        """Expire each hold whose time is up: one script call per hash tag, all at once (an
        auto-pipelined host sends them in one write per Redis node). Per hold, in no
        particular order: the cleanup lag in ms, or -1 (nothing to do) or -2 (not yet)."""
        by_tag: dict[str, list[str]] = {}
        for hold_id in hold_ids:
            by_tag.setdefault(tag_of(hold_id), []).append(hold_id)
        calls = [
            self._expire(
                keys=[
                    keys.expiries(tag),
                    *(keys.hold(hold_id) for hold_id in ids_of_tag),
                    keys.events(tag),
                ],
                args=[keys.occupancy_prefix(tag), *ids_of_tag],
            )
            for tag, ids_of_tag in by_tag.items()
        ]
        replies: list[list[int]] = await asyncio.gather(*calls)
        return [lag for reply in replies for lag in reply]

    async def due_expiries(self, tags: Iterable[str], limit: int) -> list[str]:
        """Ids of holds whose expiry time has come, at most `limit` per tag."""
        tags = list(tags)
        pipe = self.redis.pipeline(transaction=False)
        for tag in tags:
            pipe.zrangebyscore(keys.expiries(tag), "-inf", int(time.time()), start=0, num=limit)
        replies: list[list[bytes]] = await pipe.execute()
        return [member.decode() for members in replies for member in members]

    async def pending_appointments(self, tags: Iterable[str], changed_before: float) -> list[str]:
        """Ids of appointments whose latest change SQL lacks, changed before the given epoch."""
        tags = list(tags)
        pipe = self.redis.pipeline(transaction=False)
        for tag in tags:
            pipe.zrangebyscore(keys.pending(tag), "-inf", changed_before)
        replies: list[list[bytes]] = await pipe.execute()
        return [member.decode() for members in replies for member in members]

    async def backlog_sizes(self, tags: Iterable[str]) -> tuple[int, int]:
        """(active holds, appointments waiting for SQL) over these tags."""
        tags = list(tags)
        pipe = self.redis.pipeline(transaction=False)
        for tag in tags:
            pipe.zcard(keys.expiries(tag))
            pipe.zcard(keys.pending(tag))
        counts: list[int] = await pipe.execute()
        return sum(counts[0::2]), sum(counts[1::2])

    async def forget_past_intervals(self, clinician_tags: dict[str, str]) -> None:
        """Drop occupied intervals that ended long ago; they can no longer block anything."""
        horizon = int(time.time() - LONGEST_OCCUPIED.total_seconds() - 86_400)
        pipe = self.redis.pipeline(transaction=False)
        for clinician_id, tag in clinician_tags.items():
            pipe.zremrangebyscore(keys.occupancy(tag, clinician_id), "-inf", horizon)
        await pipe.execute()
