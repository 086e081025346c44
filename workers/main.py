"""The arq worker: `holds worker`, or in process under `holds serve` with an embedded Redis."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from arq import Worker, cron
from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name
from arq.worker import async_check_health, func
from prometheus_client import start_http_server
from redis.exceptions import RedisError

from app import metrics
from app.config import Settings
from app.queue import PERSIST_JOB
from workers import expiry
from workers.context import WorkerContext
from workers.persistence import persist_appointment, reconcile

log = logging.getLogger("holds.worker")
HEALTH_CHECK_INTERVAL_SECONDS = 10
REPORT_INTERVAL_SECONDS = 5.0
SHUTDOWN_SECONDS = 10.0


def build_worker(
    settings: Settings, *, redis_pool: ArqRedis | None = None, handle_signals: bool = True
) -> Worker:
    """An arq worker with the persistence job, the reconciler, and expiry cleanup tasks."""

    async def startup(ctx: dict[str, Any]) -> None:
        worker = await WorkerContext.open(settings)
        ctx["holds"] = worker
        worker.tasks += [
            asyncio.create_task(expiry.listen(worker)),
            asyncio.create_task(expiry.sweep(worker)),
            asyncio.create_task(_report(worker, ctx["redis"])),
        ]

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "holds" in ctx:
            await ctx["holds"].close()

    return Worker(
        functions=[func(persist_appointment, name=PERSIST_JOB, max_tries=10, timeout=30)],
        cron_jobs=[cron(reconcile, second=set(range(0, 60, 5)), run_at_startup=True, timeout=60)],
        redis_settings=RedisSettings.from_dsn(settings.effective_queue_redis_url),
        redis_pool=redis_pool,
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=handle_signals,
        max_jobs=50,
        keep_result=3600,
        poll_delay=0.1,
        health_check_interval=HEALTH_CHECK_INTERVAL_SECONDS,
        log_results=False,
    )


async def _report(worker: WorkerContext, queue: ArqRedis) -> None:
    """Keep the backlog gauges current, so metrics show when to add workers."""
    while True:
        try:
            await report_backlogs(worker, queue)
        except (RedisError, OSError) as exc:
            log.warning("could not read backlogs", extra={"error": str(exc)})
        await asyncio.sleep(REPORT_INTERVAL_SECONDS)


async def report_backlogs(worker: WorkerContext, queue: ArqRedis) -> None:
    active, pending = await worker.upkeep.backlog_sizes(await worker.tags())
    metrics.ACTIVE_HOLDS.set(active)
    metrics.PERSISTENCE_BACKLOG.set(pending)
    depth = await queue.zcard(default_queue_name)
    oldest = await queue.zrange(default_queue_name, 0, 0, withscores=True)
    metrics.QUEUE_DEPTH.set(depth)
    metrics.QUEUE_OLDEST_AGE.set(max(0.0, time.time() - oldest[0][1] / 1000) if oldest else 0.0)


def run(settings: Settings, metrics_host: str, metrics_port: int) -> int:
    """`holds worker`: run until SIGINT or SIGTERM, riding out Redis outages."""
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host)
    asyncio.run(_supervise(settings))
    return 0


async def _supervise(settings: Settings) -> None:
    """Run the arq worker; when Redis goes away (arq's worker then stops), start a fresh one,
    so a Redis restart needs no worker restart."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    while not stopping.is_set():
        worker = build_worker(settings, handle_signals=False)
        running = asyncio.create_task(worker.main())
        stop = asyncio.create_task(stopping.wait())
        await asyncio.wait({running, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if running.done() and isinstance(running.exception(), RedisError | OSError):
            log.warning(
                "worker lost Redis; starting again", extra={"error": str(running.exception())}
            )
        await _stop(worker, running)
        if not stopping.is_set():
            await asyncio.sleep(1)


async def _stop(worker: Worker, running: asyncio.Task[None]) -> None:
    """Stop one arq worker within bounded time, whether or not Redis still answers."""
    running.cancel()
    await asyncio.wait({running}, timeout=SHUTDOWN_SECONDS)
    # close() re-raises its jobs' cancellations and skips on_shutdown when Redis is gone, so
    # the context is closed here as well; nothing cancels the supervising loop itself.
    steps = [("arq", worker.close())]
    context = worker.ctx.get("holds")
    if context is not None:
        steps.append(("context", context.close()))
    for name, step in steps:
        try:
            await asyncio.wait_for(step, SHUTDOWN_SECONDS)
        except (Exception, asyncio.CancelledError) as exc:
            log.info("shutdown step ended early", extra={"step": name, "error": repr(exc)})


def check(settings: Settings) -> int:
    """`holds worker --check`: 0 when a worker reported in within its health-check interval."""
    redis_settings = RedisSettings.from_dsn(settings.effective_queue_redis_url)
    healthy: int = asyncio.run(async_check_health(redis_settings, None, default_queue_name))
    return healthy
