"""Reading the hash tags' outbox streams, one non-blocking command per tag, so the cost is
bounded by tags rather than by readers, and no command spans two Redis Cluster slots."""

from __future__ import annotations

from typing import Any

from app.domain.records import Hold
from app.store import codec, keys
from app.store.redis_client import Pipelined

NO_ENTRY = "0-0"
Entry = tuple[bytes, list[bytes]]
BATCH = 1000  # entries read per tag per poll; the rest come on the next one
_HOLD_AND_SECRET = (*codec.HOLD_FIELDS, "sec")  # the hold, and its client_secret's digest


class EventStore:
    def __init__(self, pipeline: Pipelined) -> None:
        self.pipeline = pipeline
        self._get = codec.script(pipeline, "get_hold.lua")

    async def latest_id(self, tag: str) -> str:
        """The id of the tag's newest entry: reading after it gives only what comes next."""
        reply = await self.pipeline.execute("XREVRANGE", keys.events(tag), "+", "-", "COUNT", 1)
        return str(reply[0][0].decode()) if reply else NO_ENTRY

    async def read_after(self, tag: str, last_id: str) -> list[Entry]:
        """The tag's entries after `last_id`, undecoded: (entry id, flat field/value list)."""
        reply: Any = await self.pipeline.execute(
            "XREAD", "COUNT", BATCH, "STREAMS", keys.events(tag), last_id
        )
        if not reply:
            return []
        (_, entries), *_ = reply
        return [(entry_id, fields) for entry_id, fields in entries]

    async def hold(self, hold_id: str) -> tuple[Hold, str] | None:
        """The hold by Redis' clock, with its organisation and client_secret digest."""
        now_ms, *values = await self._get(keys=[keys.hold(hold_id)], args=_HOLD_AND_SECRET)
        fields = codec.named(_HOLD_AND_SECRET, values)
        if not fields:
            return None
        return codec.hold_from(hold_id, fields, now_ms=now_ms), fields.get("sec", "")
