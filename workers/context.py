"""What every job and background task of a worker process shares."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.catalog_repo import clinician_tags
from app.db.engine import create_engine, migrate, session_factory
from app.domain.appointments import AppointmentService
from app.store import redis_client
from app.store.appointments import AppointmentStore
from app.store.cluster import ClusterAutoPipeline
from app.store.upkeep import UpkeepStore

TAGS_MAX_AGE_SECONDS = 10.0


@dataclass
class WorkerContext:
    settings: Settings
    redis: Redis
    scripts: redis_client.Pipelined  # runs the expiry script, per tag, auto-pipelined
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    appointments: AppointmentService
    upkeep: UpkeepStore
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _tags: dict[str, str] = field(default_factory=dict)
    # Expiry cleanups running now: background moving waits for them (freeing slots comes first).
    cleanups_running: int = 0
    # Set when Redis announces that holds have come due: the sweep starts at once.
    expiries_due: asyncio.Event = field(default_factory=asyncio.Event)
    _tags_read_at: float = 0.0
    _closed: bool = False

    @classmethod
    async def open(cls, settings: Settings) -> WorkerContext:
        engine = create_engine(settings.effective_database_url)
        await migrate(engine)
        sessions = session_factory(engine)
        cluster = await redis_client.detect_cluster(settings.redis_url)
        redis = redis_client.open_redis(
            settings.redis_url, cluster=cluster, socket_timeout=10, health_check_interval=30
        )
        scripts = redis_client.open_pipeline(settings.redis_url, cluster=cluster, reply_timeout=10)
        appointments = AppointmentService(
            AppointmentStore(redis),
            sessions,
            retention_seconds=settings.hold_retention_seconds,
            pause_before_commit=settings.fault_persist_delay_seconds,
        )
        upkeep = UpkeepStore(redis, scripts)
        return cls(settings, redis, scripts, engine, sessions, appointments, upkeep)

    async def event_urls(self) -> list[str]:
        """Where keyspace events are published: the one Redis, or every master of a cluster
        (each announces only its own keys' expiries), as the cluster is now."""
        if isinstance(self.scripts, ClusterAutoPipeline):
            return [self.scripts.node_url(address) for address in await self.scripts.masters()]
        return [self.settings.redis_url]

    async def clinician_tags(self) -> dict[str, str]:
        """Clinician id to shard tag for every clinician SQL knows, re-read every few seconds."""
        if time.monotonic() - self._tags_read_at > TAGS_MAX_AGE_SECONDS:
            async with self.sessions() as session:
                self._tags = await clinician_tags(session)
            self._tags_read_at = time.monotonic()
        return self._tags

    async def tags(self) -> set[str]:
        return set((await self.clinician_tags()).values())

    async def close(self) -> None:
        """Stop background tasks and close connections; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for closer in self.closers:
            await closer()
        await self.redis.aclose()
        await self.scripts.aclose()
        await self.engine.dispose()
