"""Who is calling: an API key, its organisation and scopes."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.keys_repo import find_by_hash, hash_key


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    org_id: str
    scopes: frozenset[str]
    is_test: bool


class KeyCache:
    """Resolves presented keys by hash. Answers, found or not, are trusted for `max_age`
    seconds, so a revoked key stops working within that time and the database sees at most
    one lookup per key per period."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_age: float) -> None:
        self._sessions = sessions
        self._max_age = max_age
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    async def principal_for(self, secret: str) -> Principal | None:
        key_hash = hash_key(secret)
        entry = self._entries.get(key_hash)
        if entry is not None and time.monotonic() - entry[0] < self._max_age:
            return entry[1]
        async with self._sessions() as session:
            row = await find_by_hash(session, key_hash)
        principal = None
        if row is not None and row.revoked_at is None:
            principal = Principal(row.id, row.org_id, frozenset(row.scopes), row.is_test)
        if len(self._entries) > 100_000:
            self._entries.clear()  # bounded memory under a flood of random keys
        self._entries[key_hash] = (time.monotonic(), principal)
        return principal
