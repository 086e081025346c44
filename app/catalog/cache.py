"""The API's in-process copy of each organisation's catalog, refreshed every few seconds.

A hold request needs the whole catalog of its organisation; reading it from SQL on every request
would put a database round trip on the hot path.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.catalog_repo import fetch_org_catalog
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
        # One reload per organisation at a time, however many requests are waiting.
        async with self._locks.setdefault(org_id, asyncio.Lock()):
            entry = self._entries.get(org_id)
            if entry is not None and time.monotonic() - entry[0] < self._max_age:
                return entry[1]
            async with self._sessions() as session:
                catalog = await fetch_org_catalog(session, org_id)
            if catalog is None:
                raise NotFound("This organisation has no catalog.")
            self._entries[org_id] = (time.monotonic(), catalog)
            return catalog
