"""The application factory: resources opened and closed in cleanup contexts."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from app.catalog.cache import CatalogCache
from app.clock import Clock
from app.config import Settings
from app.db.engine import create_engine, migrate, session_factory
from app.domain.holds import HoldService
from app.domain.principal import KeyCache
from app.store.holds import HoldStore
from app.web.middleware import envelope
from app.web.routes import add_routes
from app.web.state import (
    CATALOGS,
    CLOCK,
    ENGINE,
    HOLD_STORE,
    HOLDS,
    KEYS,
    REDIS,
    SESSIONS,
    SETTINGS,
)

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """The HTTP API. `settings.redis_url` must be set (`holds serve` starts Redis when not)."""
    if not settings.redis_url:
        raise ValueError("create_app needs settings.redis_url")
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[envelope])
    app[SETTINGS] = settings
    app[CLOCK] = clock or Clock()
    app.cleanup_ctx.extend([_database, _redis, _services])
    add_routes(app, settings.base_path)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[SETTINGS].effective_database_url)
    await migrate(engine)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    yield
    await engine.dispose()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    # A blocking pool makes a burst wait for a connection instead of failing with 503.
    pool = BlockingConnectionPool.from_url(
        app[SETTINGS].redis_url,
        max_connections=256,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
    )
    client = Redis(connection_pool=pool)
    app[REDIS] = client
    yield
    await client.aclose()


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = HoldStore(
        app[REDIS],
        ttl_seconds=settings.hold_ttl_seconds,
        retention_seconds=settings.hold_retention_seconds,
    )
    catalogs = CatalogCache(app[SESSIONS], settings.cache_seconds)
    app[HOLD_STORE] = store
    app[CATALOGS] = catalogs
    app[KEYS] = KeyCache(app[SESSIONS], settings.cache_seconds)
    app[HOLDS] = HoldService(store, catalogs, app[SESSIONS], app[CLOCK])
    yield
