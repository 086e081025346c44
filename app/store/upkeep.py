"""What the workers read and tidy in Redis: due expiries, the persistence backlog, old intervals."""

from __future__ import annotations

import time
from collections.abc import Iterable

from redis.asyncio import Redis

from app.store import codec, keys
from app.store.holds import LONGEST_OCCUPIED


class UpkeepStore:
    def __init__(self, redis: Redis, scripts: codec.ScriptHost | None = None) -> None:
        self.redis = redis
        self._expire = codec.script(scripts or redis, "expire_due.lua")

    async def expire_due(self, tag: str, limit: int) -> tuple[bool, list[int]]:
        """Expire up to `limit` of the tag's holds whose time is up, soonest first. Returns
        whether more may be due (call again) and the cleanup lag in ms of each hold expired."""
        more, *lags = await self._expire(
            keys=[keys.expiries(tag), keys.events(tag)],
            args=[keys.occupancy_prefix(tag), keys.hold_prefix(tag), limit],
        )
        return bool(more), lags

    async def tags_with_due_expiries(self, tags: Iterable[str]) -> list[str]:
        """Those of these tags that have a hold whose expiry time has come."""
        tags = list(tags)
        now = int(time.time())
        pipe = self.redis.pipeline(transaction=False)
        for tag in tags:
            pipe.zcount(keys.expiries(tag), "-inf", now)
        counts: list[int] = await pipe.execute()
        return [tag for tag, count in zip(tags, counts, strict=True) if count]

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
