"""Typed keys for what the application holds while it runs."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.catalog.cache import CatalogCache
from app.clock import Clock
from app.config import Settings
from app.domain.holds import HoldService
from app.domain.principal import KeyCache
from app.store.holds import HoldStore

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
REDIS = web.AppKey("redis", Redis)
CATALOGS = web.AppKey("catalogs", CatalogCache)
KEYS = web.AppKey("keys", KeyCache)
HOLD_STORE = web.AppKey("hold_store", HoldStore)
HOLDS = web.AppKey("holds", HoldService)
