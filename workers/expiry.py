"""Expiry cleanup: Redis' keyspace `expired` events, backed by a sweep of the expiry index.

Notifications are lost while no subscriber is connected and arrive late on large keyspaces, so
the sweeper is what guarantees cleanup; the listener makes it prompt. Both call the same
idempotent script, so any number of workers may run them at once.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app import metrics
from app.store import keys
from workers.context import WorkerContext

log = logging.getLogger("holds.worker.expiry")
SWEEP_INTERVAL_SECONDS = 0.25
SWEEP_BATCH = 1000
TOPOLOGY_CHECK_SECONDS = 2.0
_EXPIRED_CHANNEL = "__keyevent@*__:expired"


async def enable_keyspace_events(redis: Redis) -> bool:
    """Turn on expired-key events where the server lets us; say clearly where it does not."""
    try:
        flags = (await redis.config_get("notify-keyspace-events")).get("notify-keyspace-events", "")
        if "E" not in flags or not ({"x", "A"} & set(flags)):
            await redis.config_set("notify-keyspace-events", "".join(sorted(set(flags + "Ex"))))
        return True
    except ResponseError as exc:
        log.warning(
            "cannot enable keyspace events (set notify-keyspace-events Ex on the server); "
            "expired holds are cleaned by the sweeper alone",
            extra={"error": str(exc)},
        )
        return False


async def expire(worker: WorkerContext, hold_ids: list[str]) -> int:
    """Clean up these holds if their time is up; returns how many this call expired."""
    worker.cleanups_running += 1
    try:
        lags = await worker.upkeep.expire(hold_ids)
    finally:
        worker.cleanups_running -= 1
    cleaned = [lag for lag in lags if lag >= 0]
    for lag in cleaned:
        metrics.EXPIRY_LAG_SECONDS.observe(lag / 1000)
    metrics.HOLDS_EXPIRED.inc(len(cleaned))
    return len(cleaned)


async def listen(worker: WorkerContext) -> None:
    """Clean a hash tag's due holds the moment Redis reports the expiry tick of their second.

    Each Redis node announces only its own keys' expiries, so on a cluster every master gets a
    subscription of its own, and the set of masters is read again every few seconds: a replica
    promoted by a failover, or a master added, is listened to from then on."""
    listeners: dict[str, asyncio.Task[None]] = {}
    try:
        while True:
            try:
                urls = set(await worker.event_urls())
            except (RedisError, OSError) as exc:
                log.warning("cannot read the Redis topology", extra={"error": str(exc)})
                urls = set(listeners)
            for url in set(listeners) - urls:
                listeners.pop(url).cancel()
            for url in urls - set(listeners):
                listeners[url] = asyncio.create_task(_listen_on(worker, url))
            await asyncio.sleep(TOPOLOGY_CHECK_SECONDS)
    finally:
        for task in listeners.values():
            task.cancel()
        await asyncio.gather(*listeners.values(), return_exceptions=True)


async def _listen_on(worker: WorkerContext, url: str) -> None:
    """One node's `expired` events, resubscribed whenever the connection drops."""
    # No read timeout: an idle channel is no fault.
    events = Redis.from_url(url, socket_keepalive=True, health_check_interval=30)
    try:
        while True:
            try:
                await enable_keyspace_events(events)
                async with events.pubsub() as pubsub:
                    await pubsub.psubscribe(_EXPIRED_CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "pmessage":
                            await _on_expired(worker, message["data"].decode())
            except (RedisError, OSError) as exc:
                log.warning("expiry listener lost Redis; reconnecting",
                            extra={"error": str(exc), "node": url})  # fmt: skip
                await asyncio.sleep(1)
    finally:
        await events.aclose()


async def _on_expired(worker: WorkerContext, key: str) -> None:
    tag = keys.tag_of_expiry_tick(key)
    if tag is not None:
        due = await worker.upkeep.due_expiries([tag], SWEEP_BATCH)
        if due:
            await expire(worker, due)


async def sweep(worker: WorkerContext) -> None:
    """Every quarter second, clean every hold whose expiry time has passed."""
    while True:
        try:
            tags = await worker.tags()
            due = await worker.upkeep.due_expiries(tags, SWEEP_BATCH)
            for start in range(0, len(due), SWEEP_BATCH):
                await expire(worker, due[start : start + SWEEP_BATCH])
            if len(due) < SWEEP_BATCH:
                await asyncio.sleep(SWEEP_INTERVAL_SECONDS)
        except (RedisError, OSError) as exc:
            log.warning("sweeper lost Redis; retrying", extra={"error": str(exc)})
            await asyncio.sleep(1)
