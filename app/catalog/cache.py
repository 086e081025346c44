"""The API's in-process copy of each organisation's catalog.

A hold request needs the whole catalog of its organisation, so it is kept in memory. Every few
seconds one cheap query, in the background, asks whether it changed since; only then is it read
again.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.catalog_repo import catalog_version, fetch_org_catalog
from app.domain.catalog import OrgCatalog
from app.errors import NotFound
from app.refresh_ahead import RefreshAheadCache


class CatalogCache:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_age: float) -> None:
        self._sessions = sessions
        self._cache = RefreshAheadCache(self._current, max_age)

    async def aclose(self) -> None:
        await self._cache.aclose()

    async def get(self, org_id: str) -> OrgCatalog:
        return await self._cache.get(org_id)

    async def _current(self, org_id: str, cached: OrgCatalog | None) -> OrgCatalog:
        async with self._sessions() as session:
            if cached is not None and await catalog_version(session, org_id) == cached.version:
                return cached
            catalog = await fetch_org_catalog(session, org_id)
        if catalog is None:
            raise NotFound("This organisation has no catalog.")
        return catalog
