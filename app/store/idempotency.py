"""Stored first responses for Idempotency-Keys, per API key, for 24 hours."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.store import codec

RUNNING_MS = 60_000  # longer than any request; frees the key if its process died
KEEP_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    content_type: str
    body: bytes


class IdempotencyStore:
    def __init__(self, redis: Redis, scripts: codec.ScriptHost | None = None) -> None:
        self.redis = redis
        self._begin = codec.script(scripts or redis, "idempotency_begin.lua")
        self._abandon = codec.script(scripts or redis, "idempotency_abandon.lua")

    async def begin(self, record_key: str, fingerprint: str, owner: str) -> str | StoredResponse:
        """'new' (the record is now `owner`'s), 'in_use', 'reused', or the first request's
        stored response."""
        outcome, *stored = await self._begin(
            keys=[record_key], args=[fingerprint, RUNNING_MS, owner]
        )
        if outcome != b"replay":
            return str(outcome.decode())
        status, content_type, body = stored
        return StoredResponse(int(status), content_type.decode(), body)

    async def finish(self, record_key: str, response: StoredResponse) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            record_key,
            mapping={
                "state": "done",
                "status": response.status,
                "content_type": response.content_type,
                "body": response.body,
            },
        )
        pipe.expire(record_key, KEEP_SECONDS)
        await pipe.execute()

    async def abandon(self, record_key: str, owner: str) -> None:
        """Forget `owner`'s unfinished request, so a retry runs afresh; anything else stays."""
        await self._abandon(keys=[record_key], args=[owner])
