"""Expiry cleanup: a sweep of the expiry indexes, woken by Redis' keyspace `expired` events.

Notifications are lost while no subscriber is connected and arrive late on large keyspaces, so
the sweep, four times a second, is what guarantees cleanup; the listener makes it prompt. The
script takes the due holds from the index itself, so any number of workers may sweep at once
without repeating one another's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app import metrics
from app.store import keys
from workers.context import WorkerContext

log = logging.getLogger("holds.worker.expiry")
SWEEP_INTERVAL_SECONDS = 0.25
_AFTER_THE_SECOND = 0.01  # allowance for Redis' clock, by which holds expire, being behind
# Holds one script call expires (a few ms of Redis), and such calls a worker has in flight:
# enough to keep Redis busy through a burst, few enough that API requests still get between.
BATCH = 200
CALLS_IN_FLIGHT = 4
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


async def clean_up(worker: WorkerContext, tags: list[str]) -> int:
    """Expire every due hold of these tags; returns how many this worker expired."""
    calls = asyncio.Semaphore(CALLS_IN_FLIGHT)

    async def clean_tag(tag: str) -> int:
        expired, more = 0, True
        while more:
            async with calls:
                more, lags = await worker.upkeep.expire_due(tag, BATCH)
            for lag in lags:
                metrics.EXPIRY_LAG_SECONDS.observe(lag / 1000)
            metrics.HOLDS_EXPIRED.inc(len(lags))
            expired += len(lags)
        return expired

    worker.cleanups_running += 1
    try:
        return sum(await asyncio.gather(*(clean_tag(tag) for tag in tags)))
    finally:
        worker.cleanups_running -= 1


async def listen(worker: WorkerContext) -> None:
    """Wake the sweep the moment Redis reports the expiry tick of a hash tag's second.

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
                            _on_expired(worker, message["data"].decode())
            except (RedisError, OSError) as exc:
                log.warning("expiry listener lost Redis; reconnecting",
                            extra={"error": str(exc), "node": url})  # fmt: skip
                await asyncio.sleep(1)
    finally:
        await events.aclose()


def _on_expired(worker: WorkerContext, key: str) -> None:
    if keys.tag_of_expiry_tick(key) is not None:
        worker.expiries_due.set()


def _until_next_sweep() -> float:
    """Seconds to the next sweep: a quarter second at most, and just after each whole second,
    when holds come due (expires_at is a whole second), so a burst is met the moment it is."""
    now = time.time()
    return min(SWEEP_INTERVAL_SECONDS, math.floor(now) + 1 + _AFTER_THE_SECOND - now)


async def sweep(worker: WorkerContext) -> None:
    """Clean every hold whose expiry time has passed, four times a second (one just after each
    whole second) or when woken."""
    while True:
        try:
            due = await worker.upkeep.tags_with_due_expiries(await worker.tags())
            random.shuffle(due)  # workers sweeping at once start on different tags
            worker.expiries_due.clear()
            if due and await clean_up(worker, due):
                continue  # more may have come due meanwhile
            # Nothing expired (none due, or Redis' clock, which decides, is behind ours): wait.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.expiries_due.wait(), _until_next_sweep())
        except (RedisError, OSError) as exc:
            log.warning("sweeper lost Redis; retrying", extra={"error": str(exc)})
            await asyncio.sleep(1)
