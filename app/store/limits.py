"""Per-key limits in Redis: request rate and active holds, decided together in one script."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.store import codec, keys


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: int  # 1 admitted, 0 rate limited, -1 no room for another hold
    remaining: int
    retry_after_ms: int


class LimitStore:
    def __init__(
        self,
        redis: Redis,
        *,
        per_minute: int,
        max_active_holds: int,
        ttl_seconds: int,
        scripts: codec.ScriptHost | None = None,
    ):
        self.redis = redis
        self.per_minute = per_minute
        self.max_active_holds = max_active_holds
        self.ttl_ms = ttl_seconds * 1000
        self._admit = codec.script(scripts or redis, "admit.lua")
        self._extend_place = codec.script(scripts or redis, "extend_place.lua")

    async def admit(self, api_key_id: str, new_hold_id: str | None = None) -> Admission:
        """Count one request; with `new_hold_id`, also take a place among the key's holds."""
        verdict, remaining, retry_after = await self._admit(
            keys=[keys.rate(api_key_id), keys.active_holds(api_key_id)],
            args=[self.per_minute, new_hold_id or "", self.max_active_holds, self.ttl_ms],
        )
        return Admission(int(verdict), int(remaining), int(retry_after))

    async def extend(self, api_key_id: str, hold_id: str, expires_ms: int) -> None:
        """Keep a hold's place until at least `expires_ms`; never adds or shortens a place."""
        await self._extend_place(keys=[keys.active_holds(api_key_id)], args=[hold_id, expires_ms])

    async def free(self, api_key_id: str, hold_id: str) -> None:
        """Give back a hold's place at once (released, confirmed, or never created)."""
        await self.redis.zrem(keys.active_holds(api_key_id), hold_id)
