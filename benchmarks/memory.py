"""Redis memory per active hold, with every structure of a hold as POST /holds makes it.

    python -m benchmarks.memory [--holds 100000]

Makes HOLDS holds over the benchmark catalog's clinicians and one API key, each as POST /holds
makes it (its rate limit place, a client secret's hash, its event in the outbox), on a
redis-server of its own
with no persistence, and prints used_memory per hold: first with every hold's `hold.created`
event still in its outbox (as while no worker runs), then with the outbox trimmed (as a worker
leaves it a minute after moving the events to SQL). Then MEMORY USAGE per hold by structure
(which leaves out Redis's own per-key entries, so it sums to less).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from redis.asyncio import BlockingConnectionPool, Redis

from app import client_secrets
from app.domain.slots import Interval
from app.embedded_redis import EmbeddedRedis
from app.ids import new_tagged_id, shard_tag
from app.store import keys
from app.store.holds import Created, HoldStore, NewHold
from app.store.limits import LimitStore
from benchmarks.workload import API_KEY_ID, CLINICIANS, KIND, ORG, clinician, time_at


@dataclass(frozen=True)
class Figures:
    holds: int
    with_outbox: float  # used_memory per hold, each hold's hold.created still in the outbox
    trimmed: float  # the same once the outbox is trimmed
    by_structure: dict[str, float]  # MEMORY USAGE per hold, by kind of key


async def measure(redis_url: str, holds: int) -> Figures:
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(redis_url, max_connections=64))
    store = HoldStore(redis, ttl_seconds=3600, retention_seconds=86_400)
    limits = LimitStore(redis, per_minute=10**9, max_active_holds=10**9, ttl_seconds=3600)
    tags = {shard_tag(ORG, clinician(n)) for n in range(CLINICIANS)}
    for tag in tags:
        await redis.set(keys.ready(tag), "1")
    before = await _used(redis)
    first = date.today() + timedelta(days=30)
    for start in range(0, holds, 1000):
        await asyncio.gather(*(_hold(store, limits, n, first) for n in range(start, start + 1000)))
    with_outbox = (await _used(redis) - before) / holds
    by_structure = await _breakdown(redis, holds)
    for tag in tags:
        await redis.xtrim(keys.events(tag), maxlen=0)
    trimmed = (await _used(redis) - before) / holds
    await redis.aclose()
    return Figures(holds, with_outbox, trimmed, by_structure)


def report(figures: Figures) -> None:
    print(f"{figures.holds} active holds over {CLINICIANS} clinicians, one API key:")
    print(f"  {figures.with_outbox:6.0f} bytes per hold with its hold.created event in the outbox")
    print(
        f"  {figures.trimmed:6.0f} bytes per hold once the outbox is trimmed (goal: 1,024 or less)"
    )
    print("  by structure (MEMORY USAGE): "
          + ", ".join(f"{kind} {used:.0f}" for kind, used in figures.by_structure.items()),
          flush=True)  # fmt: skip


async def _used(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def _breakdown(redis: Redis, holds: int) -> dict[str, float]:
    usage: dict[str, float] = {}
    async for key in redis.scan_iter(match="holds:*", count=10_000):
        kind = "active (per key)" if b"{key:" in key else key.decode().split(":")[2]
        usage[kind] = usage.get(kind, 0) + (await redis.memory_usage(key, samples=0) or 0) / holds
    return dict(sorted(usage.items(), key=lambda item: -item[1]))


async def _hold(store: HoldStore, limits: LimitStore, n: int, first: date) -> None:
    clinician_id = clinician(n % CLINICIANS)
    start = time_at(first, n // CLINICIANS)
    hold_id = new_tagged_id("hold", shard_tag(ORG, clinician_id))
    await limits.admit(API_KEY_ID, hold_id)
    outcome = await store.create(NewHold(
        id=hold_id, org_id=ORG, api_key_id=API_KEY_ID, appointment_type_id=KIND,
        clinician_id=clinician_id, location_id=None, start_time=start,
        end_time=start + timedelta(minutes=15),
        occupied=Interval(start, start + timedelta(minutes=15)),
        secret_hash=client_secrets.digest(client_secrets.new()),
    ))  # fmt: skip
    assert isinstance(outcome, Created), outcome


def measure_alone(holds: int) -> Figures:
    """`measure` on a redis-server of its own: one that served other work first reuses the
    memory that work freed, and its keys would be counted by structure."""
    with tempfile.TemporaryDirectory(prefix="holds-memory-") as scratch:
        server = EmbeddedRedis(Path(scratch), persistent=False)
        try:
            return asyncio.run(measure(server.start(), holds))
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holds", type=int, default=100_000)
    args = parser.parse_args()
    report(measure_alone(args.holds))


if __name__ == "__main__":
    main()
