"""The application factory: resources opened and closed in cleanup contexts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from app import queue
from app.catalog.cache import CatalogCache
from app.clock import Clock
from app.config import Settings
from app.db.engine import create_engine, migrate, session_factory
from app.domain.appointments import AppointmentService
from app.domain.holds import HoldService
from app.domain.limits import Limits
from app.domain.principal import KeyCache
from app.store import redis_client
from app.store.appointments import AppointmentStore
from app.store.holds import HoldStore
from app.store.idempotency import IdempotencyStore
from app.store.limits import LimitStore
from app.store.upkeep import UpkeepStore
from app.web import hold_streams
from app.web.front import front
from app.web.routes import add_routes
from app.web.state import (
    APPOINTMENTS,
    CATALOGS,
    CLOCK,
    ENGINE,
    HOLD_STORE,
    HOLDS,
    IDEMPOTENCY,
    KEYS,
    LIMITS,
    PIPELINE,
    QUEUE,
    REDIS,
    SESSIONS,
    SETTINGS,
    UPKEEP,
)
from app.web.views.booking_page import add_booking_page

MAX_BODY_BYTES = 64 * 1024


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    with_worker: bool = False,
    demo_key: str | None = None,
) -> web.Application:
    """The HTTP API. `settings.redis_url` must be set (`holds serve` starts Redis when not).

    `with_worker` also runs an arq worker in this process, for a one-process laptop setup.
    `demo_key` (`holds serve --demo` only) also serves the demo booking page, which uses it.
    """
    if not settings.redis_url:
        raise ValueError("create_app needs settings.redis_url")
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[front])
    app[SETTINGS] = settings
    app[CLOCK] = clock or Clock()
    app.cleanup_ctx.extend([_database, _redis, _queue, _services, hold_streams.open_streams])
    app.on_shutdown.append(hold_streams.close_streams)
    if with_worker:
        app.cleanup_ctx.append(_in_process_worker)
    add_routes(app, settings.base_path)
    if demo_key is not None:
        add_booking_page(app, settings.base_path, demo_key, settings.default_timezone)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = create_engine(app[SETTINGS].effective_database_url)
    await migrate(engine)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    yield
    await engine.dispose()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    cluster = await redis_client.detect_cluster(settings.redis_url)
    if cluster:
        await redis_client.check_queue(settings.redis_url, settings.queue_redis_url)
        client = redis_client.open_redis(
            settings.redis_url,
            cluster=True,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
    else:
        # A blocking pool makes a burst wait for a connection instead of failing with 503.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=256,
            timeout=5,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=30,
        )
        client = Redis(connection_pool=pool)
    app[REDIS] = client
    # The scripts on the request path share one auto-pipelined connection per Redis node
    # (README, performance).
    app[PIPELINE] = redis_client.open_pipeline(
        settings.redis_url,
        cluster=cluster,
        reply_timeout=5,
        connect_timeout=2,
        replica_timeout_ms=settings.confirm_replica_timeout_ms,
    )
    yield
    await app[PIPELINE].aclose()
    await client.aclose()


async def _queue(app: web.Application) -> AsyncIterator[None]:
    app[QUEUE] = await queue.connect(app[SETTINGS].effective_queue_redis_url)
    yield
    await app[QUEUE].aclose()


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    scripts = app[PIPELINE]
    store = HoldStore(
        app[REDIS],
        ttl_seconds=settings.hold_ttl_seconds,
        retention_seconds=settings.hold_retention_seconds,
        scripts=scripts,
        max_lifetime_seconds=settings.hold_max_lifetime_seconds,
    )
    catalogs = CatalogCache(app[SESSIONS], settings.cache_seconds)
    appointments = AppointmentService(
        AppointmentStore(app[REDIS], scripts),
        app[SESSIONS],
        queue.PersistQueue(app[QUEUE]),
        retention_seconds=settings.hold_retention_seconds,
    )
    limits = Limits(
        LimitStore(
            app[REDIS],
            per_minute=settings.rate_limit_per_minute,
            max_active_holds=settings.max_active_holds_per_key,
            ttl_seconds=settings.hold_ttl_seconds,
            scripts=scripts,
        )
    )
    app[LIMITS] = limits
    app[IDEMPOTENCY] = IdempotencyStore(app[REDIS], scripts)
    app[HOLD_STORE] = store
    app[UPKEEP] = UpkeepStore(app[REDIS])
    app[CATALOGS] = catalogs
    app[KEYS] = KeyCache(app[SESSIONS], settings.cache_seconds)
    app[APPOINTMENTS] = appointments
    app[HOLDS] = HoldService(
        store,
        catalogs,
        app[SESSIONS],
        app[CLOCK],
        appointments,
        limits,
        exit_after_confirm_commit=settings.fault_exit_after_confirm_commit,
    )
    yield
    await app[KEYS].aclose()
    await catalogs.aclose()


async def _in_process_worker(app: web.Application) -> AsyncIterator[None]:
    from workers.main import build_worker  # the API alone does not need the worker code

    worker = build_worker(app[SETTINGS], redis_pool=app[QUEUE], handle_signals=False)
    task = asyncio.create_task(worker.main())
    yield
    await worker.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
