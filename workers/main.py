"""The arq worker: `holds worker`, or in process under `holds serve` with an embedded Redis."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import time
from typing import Any

from aiohttp import web
from arq import Worker, cron
from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name
from arq.worker import func
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from app import metrics
from app.catalog.cache import CatalogCache
from app.config import Settings
from app.queue import PERSIST_JOB
from workers import expiry, outbox, webhooks
from workers.context import WorkerContext
from workers.outbox import OutboxMover
from workers.persistence import persist_appointment, reconcile
from workers.webhooks import Deliverer

log = logging.getLogger("holds.worker")
HEALTH_CHECK_INTERVAL_SECONDS = 10
REPORT_INTERVAL_SECONDS = 5.0
SHUTDOWN_SECONDS = 10.0
# Workers sharing a host take the first free port from the base (HOLDS_WORKER_METRICS_PORT) on.
METRICS_PORT_SCAN = 32


class Heartbeat:
    """When this worker last proved healthy: its poll loop ran and its Redis health write
    succeeded. arq's own health key is one per queue, so it cannot tell workers apart."""

    def __init__(self) -> None:
        self.last: float | None = None

    def beat(self) -> None:
        self.last = time.monotonic()

    def age(self) -> float | None:
        return None if self.last is None else time.monotonic() - self.last

    @property
    def healthy(self) -> bool:
        age = self.age()
        return age is not None and age <= HEALTH_CHECK_INTERVAL_SECONDS


class _HeartbeatWorker(Worker):
    """arq's worker, beating `heartbeat` on every poll whose health record stands."""

    def __init__(self, *args: Any, heartbeat: Heartbeat, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heartbeat = heartbeat

    async def record_health(self) -> None:
        # arq writes its health key when due and raises if Redis refuses, so returning here
        # means the loop is alive and the last write (at most one interval ago) succeeded.
        await super().record_health()
        self.heartbeat.beat()


def build_worker(
    settings: Settings,
    *,
    redis_pool: ArqRedis | None = None,
    handle_signals: bool = True,
    heartbeat: Heartbeat | None = None,
) -> Worker:
    """An arq worker with the persistence job, the reconciler, and expiry cleanup tasks."""

    async def startup(ctx: dict[str, Any]) -> None:
        worker = await WorkerContext.open(settings)
        ctx["holds"] = worker
        mover = OutboxMover(worker, CatalogCache(worker.sessions, settings.cache_seconds))
        moved = asyncio.Event()
        deliverer = Deliverer(worker, wake=moved)
        worker.closers.append(deliverer.close)
        worker.tasks += [
            asyncio.create_task(expiry.listen(worker)),
            asyncio.create_task(expiry.sweep(worker)),
            asyncio.create_task(outbox.move(worker, mover, moved)),
            asyncio.create_task(webhooks.deliver(deliverer)),
            asyncio.create_task(_report(worker, ctx["redis"])),
        ]

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "holds" in ctx:
            await ctx["holds"].close()

    return _HeartbeatWorker(
        heartbeat=heartbeat or Heartbeat(),
        functions=[func(persist_appointment, name=PERSIST_JOB, max_tries=10, timeout=30)],
        cron_jobs=[
            cron(reconcile, second=set(range(0, 60, 5)), run_at_startup=True, timeout=60),
            cron(trim_events, minute=7, second=0, run_at_startup=True, timeout=300),
        ],
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


async def trim_events(ctx: dict[str, Any]) -> int:
    """Hourly: forget events past their retention period."""
    return await webhooks.trim(ctx["holds"])


async def report_backlogs(worker: WorkerContext, queue: ArqRedis) -> None:
    active, pending = await worker.upkeep.backlog_sizes(await worker.tags())
    metrics.ACTIVE_HOLDS.set(active)
    metrics.PERSISTENCE_BACKLOG.set(pending)
    depth = await queue.zcard(default_queue_name)
    oldest = await queue.zrange(default_queue_name, 0, 0, withscores=True)
    metrics.QUEUE_DEPTH.set(depth)
    metrics.QUEUE_OLDEST_AGE.set(max(0.0, time.time() - oldest[0][1] / 1000) if oldest else 0.0)
    await webhooks.report(worker)


def run(settings: Settings, metrics_host: str, metrics_port: int, *, exact_port: bool) -> int:
    """`holds worker`: run until SIGINT or SIGTERM, riding out Redis outages."""

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await serve_worker(settings, stopping, metrics_host, metrics_port, exact_port=exact_port)

    asyncio.run(main())
    return 0


async def serve_worker(
    settings: Settings,
    stopping: asyncio.Event,
    metrics_host: str,
    metrics_port: int,
    *,
    exact_port: bool = False,
) -> None:
    """Run a worker and its metrics and health endpoint until `stopping` is set."""
    heartbeat = Heartbeat()
    endpoint = None
    if metrics_port:
        endpoint = await open_endpoint(heartbeat, metrics_host, metrics_port, exact=exact_port)
    try:
        await _supervise(settings, stopping, heartbeat)
    finally:
        if endpoint is not None:
            await endpoint.cleanup()


async def open_endpoint(
    heartbeat: Heartbeat, host: str, port: int, *, exact: bool
) -> web.AppRunner | None:
    """Serve `/metrics` and `/healthz` on `port`, or (unless `exact`) the first free port after
    it, so any number of workers may share a host. A worker without a free port works on."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", lambda request: _healthz(heartbeat))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    last = port if exact else min(port + METRICS_PORT_SCAN - 1, 65535)
    for candidate in range(port, last + 1):
        site = web.TCPSite(runner, host, candidate)
        try:
            await site.start()
        except OSError as exc:
            await site.stop()  # the runner registered it before binding
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        where = {"host": host, "port": candidate}
        if candidate == port:
            log.info("metrics and health on their port", extra=where)
        else:
            log.warning(f"metrics port {port} is taken; serving on {candidate}", extra=where)
        return runner
    await runner.cleanup()
    taken = f"{port}" if exact else f"{port}-{last}"
    log.warning(f"metrics port {taken} taken; working on without metrics or health endpoint")
    return None


async def _metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def _healthz(heartbeat: Heartbeat) -> web.Response:
    """200 while this worker's health record is fresh; 503 before its first and after it stalls."""
    age = heartbeat.age()
    body = {
        "status": "ok" if heartbeat.healthy else "unhealthy",
        "pid": os.getpid(),
        "seconds_since_healthy": None if age is None else round(age, 3),
    }
    return web.json_response(body, status=200 if heartbeat.healthy else 503)


async def _supervise(settings: Settings, stopping: asyncio.Event, heartbeat: Heartbeat) -> None:
    """Run the arq worker; when Redis goes away (arq's worker then stops), start a fresh one,
    so a Redis restart needs no worker restart."""
    while not stopping.is_set():
        worker = build_worker(settings, handle_signals=False, heartbeat=heartbeat)
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
