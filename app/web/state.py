"""Typed keys for what the application holds while it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.catalog.cache import CatalogCache
from app.clock import Clock
from app.config import Settings
from app.domain.appointments import AppointmentService
from app.domain.holds import HoldService
from app.domain.limits import Limits
from app.domain.principal import KeyCache
from app.store.holds import HoldStore
from app.store.idempotency import IdempotencyStore
from app.store.redis_client import Pipelined
from app.store.upkeep import UpkeepStore

if TYPE_CHECKING:  # it builds on these keys itself
    from app.web.hold_streams import HoldStreams

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
REDIS = web.AppKey("redis", Redis)
PIPELINE: web.AppKey[Pipelined] = web.AppKey("pipeline")
QUEUE = web.AppKey("queue", ArqRedis)
CATALOGS = web.AppKey("catalogs", CatalogCache)
KEYS = web.AppKey("keys", KeyCache)
HOLD_STORE = web.AppKey("hold_store", HoldStore)
UPKEEP = web.AppKey("upkeep", UpkeepStore)
HOLDS = web.AppKey("holds", HoldService)
APPOINTMENTS = web.AppKey("appointments", AppointmentService)
LIMITS = web.AppKey("limits", Limits)
HOLD_STREAMS: web.AppKey[HoldStreams] = web.AppKey("hold_streams")
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyStore)
