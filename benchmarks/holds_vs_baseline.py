"""POST /holds beside a bare aiohttp handler, driven by the same load generator in one run.

    python -m benchmarks.holds_vs_baseline [--seconds 10] [--concurrency 64]

Starts a redis-server, the baseline (benchmarks/baseline_server.py) and `holds serve`, one
process each, and prints: POST /holds requests per second and the ratio to the baseline, p50
and p99 at half the service's peak rate, Redis round trips per POST /holds, and Redis memory per
active hold with 100,000 active holds. Redis runs without persistence here, to measure the
service rather than the disk (deploy/redis.conf fsyncs every write).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import BlockingConnectionPool, Redis

from app.catalog.loader import load_catalog
from app.db import keys_repo
from app.db.engine import create_engine, migrate, session_factory
from app.domain.slots import Interval
from app.embedded_redis import EmbeddedRedis, free_port
from app.ids import new_tagged_id, shard_tag
from app.store.holds import Created, HoldStore, NewHold
from app.store.limits import LimitStore

ORG = "org_00000000-0000-4000-8000-0000000000be"
KIND = "type_00000000-0000-4000-8000-0000000000be"
CLINICIANS = 100
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _clinician(n: int) -> str:
    return f"cli_00000000-0000-4000-8000-{n:012d}"


def _catalog() -> dict[str, Any]:
    day_long = [{"weekday": d, "start": "00:00", "end": "23:45"} for d in DAYS]
    clinicians = [
        {"id": _clinician(n), "first_name": "C", "last_name": str(n), "schedule": day_long}
        for n in range(CLINICIANS)
    ]
    kind = {"id": KIND, "name": "Bench", "duration_minutes": 15, "slot_interval_minutes": 15,
            "clinician_ids": [c["id"] for c in clinicians]}  # fmt: skip
    org = {"id": ORG, "name": "Bench", "timezone": "UTC", "clinicians": clinicians,
           "appointment_types": [kind]}  # fmt: skip
    return {"organizations": [org]}


def _bodies(path: Path) -> None:
    """Every free 15-minute slot of the next week, one request body per line."""
    lines = []
    for offset in range(2, 9):
        day = (date.today() + timedelta(days=offset)).isoformat()
        for minute in range(0, 23 * 60 + 30, 15):
            for n in range(CLINICIANS):
                lines.append(json.dumps({
                    "appointment_type_id": KIND, "clinician_id": _clinician(n), "date": day,
                    "start_time": f"{minute // 60:02d}:{minute % 60:02d}",
                }))  # fmt: skip
    path.write_text("\n".join(lines))


async def _prepare(database_url: str) -> str:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = session_factory(engine)
    await load_catalog(sessions, json.dumps(_catalog()))
    async with sessions.begin() as session:
        created = await keys_repo.create_key(session, ORG, ["write_holds"], "bench", True)
    await engine.dispose()
    return created.secret


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error status: the server is up
                return
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def _generate(url: str, key: str, bodies: Path, seconds: float, **mode: float) -> dict[str, Any]:
    flags = [f"--{name}={value}" for name, value in mode.items()]
    command = [sys.executable, "-m", "benchmarks.generate", "--url", url, "--key", key,
               "--bodies", str(bodies), "--seconds", str(seconds), *flags]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(finished.stdout)
    return result


async def _memory_per_hold(redis_url: str, holds: int) -> float:
    """Bytes of Redis memory per active hold: a hold made as POST /holds makes it."""
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(redis_url, max_connections=64))
    await redis.flushall()
    store = HoldStore(redis, ttl_seconds=3600, retention_seconds=86_400)
    limits = LimitStore(redis, per_minute=10**9, max_active_holds=10**9, ttl_seconds=3600)
    for tag in {shard_tag(ORG, _clinician(n)) for n in range(CLINICIANS)}:
        await redis.set(f"holds:{{{tag}}}:ready", "1")
    before = int((await redis.info("memory"))["used_memory"])
    first = date.today() + timedelta(days=30)
    for start in range(0, holds, 1000):
        await asyncio.gather(*(_hold(store, limits, n, first) for n in range(start, start + 1000)))
    after = int((await redis.info("memory"))["used_memory"])
    await redis.aclose()
    return (after - before) / holds


async def _hold(store: HoldStore, limits: LimitStore, n: int, first: date) -> None:
    clinician = _clinician(n % CLINICIANS)
    start = time_at(first, n // CLINICIANS)
    hold_id = new_tagged_id("hold", shard_tag(ORG, clinician))
    await limits.admit("key_bench", hold_id)
    outcome = await store.create(NewHold(
        id=hold_id, org_id=ORG, api_key_id="key_bench", appointment_type_id=KIND,
        clinician_id=clinician, location_id=None, start_time=start,
        end_time=start + timedelta(minutes=15),
        occupied=Interval(start, start + timedelta(minutes=15)),
    ))  # fmt: skip
    assert isinstance(outcome, Created), outcome


def time_at(first: date, index: int) -> datetime:
    midnight = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return midnight + timedelta(minutes=15 * index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--memory-holds", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="holds-bench-") as scratch:
        directory = Path(scratch)
        print(run(directory, args.seconds, args.concurrency, args.memory_holds))


def run(directory: Path, seconds: float, concurrency: int, memory_holds: int) -> str:
    server = EmbeddedRedis(directory / "redis", persistent=False)
    redis_url = server.start()
    database_url = f"sqlite:///{directory / 'bench.sqlite3'}"
    key = asyncio.run(_prepare(database_url))
    bodies = directory / "bodies.jsonl"
    _bodies(bodies)
    base_port, service_port = free_port(), free_port()
    env = dict(os.environ, HOLDS_REDIS_URL=redis_url, HOLDS_DATABASE_URL=database_url,
               HOLDS_RATE_LIMIT_PER_MINUTE="1000000000", HOLDS_LOG_LEVEL="WARNING",
               HOLDS_MAX_ACTIVE_HOLDS_PER_KEY="1000000000")  # fmt: skip
    processes = [
        _start([sys.executable, "-m", "benchmarks.baseline_server", "--port", str(base_port)],
               env, directory / "baseline.log"),
        _start([sys.executable, "-m", "app", "serve", "--port", str(service_port)],
               env, directory / "service.log"),
    ]  # fmt: skip
    try:
        baseline_url = f"http://127.0.0.1:{base_port}/v1/holds"
        service_url = f"http://127.0.0.1:{service_port}/v1/holds"
        _wait(baseline_url)
        _wait(f"http://127.0.0.1:{service_port}/readyz")
        admin = redis.Redis.from_url(redis_url)
        baseline = _generate(baseline_url, key, bodies, seconds, concurrency=concurrency)
        admin.flushall()
        service = _generate(service_url, key, bodies, seconds, concurrency=concurrency)
        admin.flushall()
        # Warm up (restore every tag, fill caches), then measure on slots not yet held.
        warm = _generate(service_url, key, bodies, 2, rate=200)
        admin.config_resetstat()
        half = _generate(
            service_url, key, bodies, seconds, rate=service["rps"] / 2, skip=warm["requests"]
        )
        stats = admin.info("commandstats")
        evalsha = stats.get("cmdstat_evalsha", {}).get("calls", 0)
        memory = asyncio.run(_memory_per_hold(redis_url, memory_holds))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
        server.stop()
    return "\n".join([
        f"baseline (bare aiohttp)  {baseline['rps']:8.0f} req/s  {baseline['statuses']}",
        f"POST /holds              {service['rps']:8.0f} req/s  {service['statuses']}",
        f"ratio to baseline        {service['rps'] / baseline['rps']:8.2f}",
        f"at half peak ({service['rps'] / 2:.0f}/s)    p50 {half['p50_ms']:.2f} ms, "
        f"p99 {half['p99_ms']:.2f} ms  {half['statuses']}",
        f"Redis round trips        {evalsha / max(1, half['requests']):8.2f} per POST /holds "
        "(EVALSHA calls / requests)",
        f"Redis memory             {memory:8.0f} bytes per active hold ({memory_holds} holds)",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
