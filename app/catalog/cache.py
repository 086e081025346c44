"""The API's in-process copy of each organisation's catalog.

A hold request needs the whole catalog of its organisation, so it is kept in memory. Every few
seconds one cheap query asks whether it changed since; only then is it read again.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.catalog_repo import catalog_version, fetch_org_catalog
from app.domain.catalog import OrgCatalog
from app.errors import NotFound


class CatalogCache:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_age: float) -> None:
        self._sessions = sessions
        self._max_age = max_age
        self._entries: dict[str, tuple[float, OrgCatalog]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, org_id: str) -> OrgCatalog:
        entry = self._entries.get(org_id)
        if entry is not None and time.monotonic() - entry[0] < self._max_age:
            return entry[1]
        # One check per organisation at a time, however many requests are waiting.
        async with self._locks.setdefault(org_id, asyncio.Lock()):
            entry = self._entries.get(org_id)
            if entry is not None and time.monotonic() - entry[0] < self._max_age:
                return entry[1]
            catalog = await self._current(org_id, entry[1] if entry else None)
            self._entries[org_id] = (time.monotonic(), catalog)
            return catalog

    async def _current(self, org_id: str, cached: OrgCatalog | None) -> OrgCatalog:
        async with self._sessions() as session:
            if cached is not None and await catalog_version(session, org_id) == cached.version:
                return cached
            catalog = await fetch_org_catalog(session, org_id)
        if catalog is None:
            raise NotFound("This organisation has no catalog.")
        return catalog
