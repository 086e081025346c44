"""Handing appointments to the workers for persistence (arq)."""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings, create_pool

PERSIST_JOB = "persist_appointment"


def persist_job_id(appointment_id: str, version: int) -> str:
    """One job per appointment version: enqueueing the same change twice runs it once."""
    return f"persist:{appointment_id}:{version}"


async def connect(url: str) -> ArqRedis:
    pool: ArqRedis = await create_pool(RedisSettings.from_dsn(url))
    return pool


class PersistQueue:
    def __init__(self, arq: ArqRedis) -> None:
        self.arq = arq

    async def enqueue(self, appointment_id: str, version: int) -> None:
        await self.arq.enqueue_job(
            PERSIST_JOB, appointment_id, _job_id=persist_job_id(appointment_id, version)
        )
