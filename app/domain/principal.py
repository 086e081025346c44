"""Who is calling: an API key, its organisation and scopes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.keys_repo import find_by_hash, hash_key
from app.refresh_ahead import RefreshAheadCache


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    org_id: str
    scopes: frozenset[str]
    is_test: bool


class KeyCache:
    """Resolves presented keys by hash. Answers, found or not, are trusted for `max_age`
    seconds, so a revoked key stops working within that time and the database sees about one
    lookup per key per half period."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_age: float) -> None:
        self._sessions = sessions
        self._cache = RefreshAheadCache(self._lookup, max_age)

    async def aclose(self) -> None:
        await self._cache.aclose()

    async def principal_for(self, secret: str) -> Principal | None:
        return await self._cache.get(hash_key(secret))

    async def _lookup(self, key_hash: str, _cached: Principal | None) -> Principal | None:
        async with self._sessions() as session:
            row = await find_by_hash(session, key_hash)
        if row is None or row.revoked_at is not None:
            return None
        return Principal(row.id, row.org_id, frozenset(row.scopes), row.is_test)
