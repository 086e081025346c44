"""What status streams cost one API process, in one run.

    python -m benchmarks.streams [--streams 1000] [--seconds 5]

Starts a redis-server (no persistence) and one `holds serve` (uvloop, no worker), then:
POST /holds peak throughput with no stream open (closed loop, 64 connections, the benchmark's own
load generator in a process of its own); 1,000 holds made in the same Redis second, so they all
expire in one second, each with a status stream open (Bearer key); the API process' memory and
CPU with those streams open and idle; POST /holds throughput again with them open; and, when the
holds expire, the time from `expires_at` to the arrival of each stream's expired event (p50/p99).
On a shared machine compare the two throughputs as a ratio from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis

from app.domain.slots import Interval
from app.embedded_redis import EmbeddedRedis
from app.ids import new_tagged_id, shard_tag
from app.loadtest.report import percentile
from app.store import keys
from app.store.holds import Created, HoldStore, NewHold
from app.store.pipeline import AutoPipeline
from benchmarks.holds_vs_baseline import (
    Target,
    _cpu_seconds,
    _generate,
    _say,
    _serving,
)
from benchmarks.workload import (
    API_KEY_ID,
    CLINICIANS,
    KIND,
    ORG,
    clinician,
    prepare,
    time_at,
    write_bodies,
)

TTL = 60  # long enough for the measurements before the streamed holds expire


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="holds-streams-") as scratch:
        directory = Path(scratch)
        server = EmbeddedRedis(directory / "redis", persistent=False)
        redis_url = server.start()
        try:
            _measure(directory, redis_url, args)
        finally:
            server.stop()


def _measure(directory: Path, redis_url: str, args: argparse.Namespace) -> None:
    bodies = directory / "bodies.jsonl"
    write_bodies(bodies)
    database_url = f"sqlite:///{directory / 'bench.sqlite3'}"
    key = asyncio.run(prepare(database_url))
    env = {
        "HOLDS_REDIS_URL": redis_url, "HOLDS_DATABASE_URL": database_url,
        "HOLDS_RATE_LIMIT_PER_MINUTE": "1000000000", "HOLDS_LOG_LEVEL": "WARNING",
        "HOLDS_MAX_ACTIVE_HOLDS_PER_KEY": "1000000000", "HOLDS_STREAMS_PER_KEY": "100000",
        "HOLDS_HOLD_TTL_SECONDS": str(TTL),
    }  # fmt: skip
    with ExitStack() as stack:
        target = stack.enter_context(
            _serving(["app", "serve"], dict(os.environ, **env), directory / "serve.log")
        )
        _say(f"one API process (pid {target.process.pid}), {args.streams} streams")
        idle = _usage(target, args.seconds)
        without = _throughput(target, key, bodies, args.seconds, skip=0)
        figures = asyncio.run(_with_streams(target, key, redis_url, bodies, args, without))
    _report(idle, without, figures)


def _usage(target: Target, seconds: float) -> dict[str, float]:
    """Resident memory (MiB) and CPU (% of a core) of the API process over `seconds`."""
    before = _cpu_seconds(target.process.pid)
    time.sleep(seconds)
    cpu = (_cpu_seconds(target.process.pid) - before) / seconds * 100
    return {"rss_mib": _rss_mib(target.process.pid), "cpu_percent": cpu}


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _throughput(
    target: Target, key: str, bodies: Path, seconds: float, skip: int
) -> dict[str, Any]:
    before = _cpu_seconds(target.process.pid)
    result = _generate(target.url, key, bodies, seconds, concurrency=64, skip=skip)
    used = _cpu_seconds(target.process.pid) - before
    return result | {"cpu_us": used / max(1, result["requests"]) * 1e6}


async def _with_streams(
    target: Target,
    key: str,
    redis_url: str,
    bodies: Path,
    args: argparse.Namespace,
    without: dict[str, Any],
) -> dict[str, Any]:
    hold_ids, expires_at = await _holds_expiring_together(redis_url, args.streams)
    base = target.url.rsplit("/holds", 1)[0]
    connector = aiohttp.TCPConnector(limit=0)
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        opened = [asyncio.Event() for _ in hold_ids]
        arrivals: list[float] = []
        readers = [
            asyncio.create_task(_read(http, f"{base}/holds/{hold_id}/events", ready, arrivals))
            for hold_id, ready in zip(hold_ids, opened, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), 120)
        loop = asyncio.get_running_loop()
        held = await loop.run_in_executor(None, _usage, target, args.seconds)
        skip = int(without["requests"]) + 1000
        busy = await loop.run_in_executor(
            None, _throughput, target, key, bodies, args.seconds, skip
        )
        if time.time() > expires_at:
            _say("warning: the streamed holds expired before the measurements ended")
        await asyncio.wait_for(asyncio.gather(*readers), expires_at - time.time() + 30)
    lags = [arrival - expires_at for arrival in arrivals]
    return {"held": held, "busy": busy, "lags": lags, "expired": len(arrivals)}


async def _holds_expiring_together(redis_url: str, count: int) -> tuple[list[str], float]:
    """`count` holds made in one Redis second, so they expire in one second: ids, expiry."""
    redis = Redis.from_url(redis_url)
    pipeline = AutoPipeline(redis_url)
    store = HoldStore(redis, ttl_seconds=TTL, retention_seconds=86_400, scripts=pipeline)
    for tag in {shard_tag(ORG, clinician(n)) for n in range(CLINICIANS)}:
        await redis.set(keys.ready(tag), "1")
    _, micros = await redis.time()
    await asyncio.sleep(1 - micros / 1e6 + 0.01)  # the start of a fresh second
    first = date.today() + timedelta(days=40)
    outcomes = await asyncio.gather(*(_hold(store, n, first) for n in range(count)))
    expiries = {hold.expires_at for hold in outcomes}
    await pipeline.aclose()
    await redis.aclose()
    assert len(expiries) == 1, f"holds made across {len(expiries)} seconds"
    return [hold.id for hold in outcomes], expiries.pop().timestamp()


async def _hold(store: HoldStore, n: int, first: date) -> Any:
    clinician_id = clinician(n % CLINICIANS)
    start = time_at(first, n // CLINICIANS)
    end = start + timedelta(minutes=15)
    outcome = await store.create(NewHold(
        id=new_tagged_id("hold", shard_tag(ORG, clinician_id)), org_id=ORG,
        api_key_id=API_KEY_ID, appointment_type_id=KIND, clinician_id=clinician_id,
        location_id=None, start_time=start, end_time=end, occupied=Interval(start, end),
    ))  # fmt: skip
    assert isinstance(outcome, Created), outcome
    return outcome.hold


async def _read(
    http: aiohttp.ClientSession, url: str, opened: asyncio.Event, arrivals: list[float]
) -> None:
    """Follow one stream to its end; note when its expired event arrived."""
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
        assert response.status == 200, response.status
        async for line in response.content:
            if not line.startswith(b"data: "):
                continue
            opened.set()
            if json.loads(line[6:])["status"] == "expired":
                arrivals.append(time.time())


def _report(idle: dict[str, float], without: dict[str, Any], figures: dict[str, Any]) -> None:
    held, busy, lags = figures["held"], figures["busy"], sorted(figures["lags"])
    for name, usage in (("no streams", idle), ("streams open", held)):
        _say(f"  {name:13s} {usage['rss_mib']:6.1f} MiB resident, "
             f"{usage['cpu_percent']:5.1f} % of a core while idle")  # fmt: skip
    _say(f"  streams cost {held['rss_mib'] - idle['rss_mib']:.1f} MiB")
    for name, result in (("no streams", without), ("streams open", busy)):
        _say(f"  POST /holds, {name:13s} {result['rps']:7.0f} req/s, "
             f"{result['cpu_us']:4.0f} us CPU/request")  # fmt: skip
    _say(f"  throughput ratio, streams open / none: {busy['rps'] / without['rps']:.2f}")
    if lags:
        p50, p99 = statistics.median(lags) * 1000, percentile(lags, 0.99) * 1000
        _say(f"  expires_at -> expired event over {figures['expired']} streams: "
             f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {lags[-1] * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
