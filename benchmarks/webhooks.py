"""What webhooks cost and how fast they arrive, in one run.

    python -m benchmarks.webhooks [--before REV] [--seconds 10] [--rounds 3]

POST /holds peak throughput (the benchmark's load generator, closed loop, 64 connections) on
`holds serve` as it is, (a) with no webhook endpoint and (b) with one endpoint and one
`holds worker` delivering every event to a local receiver while the load runs, and with
`--before REV` (c) `holds serve` at a revision without the outbox, all in alternating rounds.
Then, on a fresh stack of its own (redis-server, SQLite, one `holds worker`, one endpoint;
holds held for HOLD_SECONDS so they expire while it runs), at steady offered rates of 100 and 400
holds a second (open loop): the rate at which events are delivered, the lag from each change (its
event's time in SQL, from the outbox entry) to its arrival at the receiver, and for `hold.expired`
the lag from the hold's `expires_at`. Each target has a redis-server of its own (no persistence).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import text

from app.db.engine import create_engine, session_factory
from app.embedded_redis import EmbeddedRedis, free_port
from app.loadtest.report import percentile
from app.webhooks import endpoints
from benchmarks import serving
from benchmarks.holds_vs_baseline import Load, _generate, _median, _say
from benchmarks.workload import ORG, write_bodies

PRIVATE_OK = {"webhook_allow_private_targets": "true"}
DELIVERY_RATES = (100, 400)  # hold.created events offered a second
WORKER_HEALTH_KEY = "arq:queue:health-check"  # arq writes it once the worker runs
HOLD_SECONDS = 3  # the delivery stack's hold TTL: every hold also yields a hold.expired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REV", help="also measure holds serve at this rev")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="holds-webhooks-") as scratch, ExitStack() as stack:
        run(Path(scratch), stack, args)


def run(directory: Path, stack: ExitStack, args: argparse.Namespace) -> None:
    bodies = directory / "bodies.jsonl"
    write_bodies(bodies)
    receiver_url = stack.enter_context(_receiver(directory / "peak.txt", directory / "peak.log"))
    targets: dict[str, tuple[serving.Served, str]] = {}
    off_redis = _redis(stack, directory / "redis-off")
    targets["no endpoint"] = (serving.server(stack, directory / "off", off_redis, None), off_redis)
    on_redis = _redis(stack, directory / "redis-on")
    on = serving.server(stack, directory / "on", on_redis, None, **PRIVATE_OK)
    asyncio.run(_register(on.database_url, receiver_url))
    stack.enter_context(_worker(on_redis, on.database_url, directory / "worker.log"))
    targets["one endpoint, 1 worker delivering"] = (on, on_redis)
    if args.before:
        tree = stack.enter_context(serving.worktree(args.before, directory / "before-tree"))
        before_redis = _redis(stack, directory / "redis-before")
        before = serving.server(stack, directory / "before", before_redis, tree)
        targets[f"at {args.before} (no outbox)"] = (before, before_redis)
    _throughput(targets, bodies, args)
    _delivery(stack, directory / "delivery", bodies, args.seconds)


def _redis(stack: ExitStack, directory: Path) -> str:
    server = EmbeddedRedis(directory, persistent=False)
    url = server.start()
    stack.callback(server.stop)
    return url


async def _register(database_url: str, url: str) -> None:
    engine = create_engine(database_url)
    async with session_factory(engine).begin() as session:
        await endpoints.register(session, ORG, url, None, "benchmark", allow_private=True)
    await engine.dispose()


@contextmanager
def _receiver(out: Path, log: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.webhook_receiver", "--port", str(port),
               "--out", str(out)]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        time.sleep(1.5)
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def _worker(redis_url: str, database_url: str, log: Path) -> Iterator[None]:
    env = dict(os.environ, HOLDS_REDIS_URL=redis_url, HOLDS_DATABASE_URL=database_url,
               HOLDS_LOG_LEVEL="WARNING", HOLDS_WEBHOOK_ALLOW_PRIVATE_TARGETS="true")  # fmt: skip
    command = [sys.executable, "-m", "app", "worker", "--metrics-port", "0"]
    admin = redis.Redis.from_url(redis_url)
    admin.delete(WORKER_HEALTH_KEY)
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        while not admin.exists(WORKER_HEALTH_KEY):  # measure deliveries, not its start
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _throughput(
    targets: dict[str, tuple[serving.Served, str]], bodies: Path, args: argparse.Namespace
) -> None:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (served, redis_url) in targets.items():
            load = Load(served.key, bodies, args.seconds, 64)
            runs[name].append(serving.peak(load, served.target, redis.Redis.from_url(redis_url)))
    _say(f"POST /holds, closed loop, median of {args.rounds} alternating rounds:")
    for name, results in runs.items():
        peak = _median(results)
        generator = sum(r["generator_cpu_s"] for r in results) / sum(r["requests"] for r in results)
        _say(f"  {name:36s} {peak['rps']:7.0f} req/s  {peak['cpu_us']:4.0f} us CPU/request  "
             f"(generator {generator * 1e6:.0f} us CPU/request)")  # fmt: skip


def _delivery(stack: ExitStack, directory: Path, bodies: Path, seconds: float) -> None:
    """At steady offered rates: how many events a second one worker delivers, and the lag
    from each change (and each hold's expires_at) to its arrival at the receiver."""
    directory.mkdir()
    received = directory / "received.txt"
    receiver_url = stack.enter_context(_receiver(received, directory / "receiver.log"))
    redis_url = _redis(stack, directory / "redis")
    served = serving.server(stack, directory / "serve", redis_url, None,
                            hold_ttl_seconds=str(HOLD_SECONDS), **PRIVATE_OK)  # fmt: skip
    asyncio.run(_register(served.database_url, receiver_url))
    stack.enter_context(_worker(redis_url, served.database_url, directory / "worker.log"))
    skip = 0
    for rate in DELIVERY_RATES:
        before = _count(received)
        sent = _generate(served.target.url, served.key, bodies, seconds, rate=rate, skip=skip)
        skip += sent["requests"]  # fresh slots for the next rate
        held = sent["statuses"].get("201", 0)
        _wait_for(received, before + 2 * held)  # each hold: hold.created and hold.expired
        _report(rate, received.read_text().splitlines()[before:], served.database_url)


def _report(rate: int, lines: list[str], database_url: str) -> None:
    changed_at = asyncio.run(_event_times(database_url))
    arrivals = {event: (float(at), kind, due) for event, at, kind, due in map(str.split, lines)}
    lags = sorted(at - changed_at[e] for e, (at, _, _) in arrivals.items() if e in changed_at)
    expiry_lags = sorted(at - float(due) for at, kind, due in arrivals.values()
                         if kind == "hold.expired")  # fmt: skip
    first = min(changed_at[e] for e in arrivals if e in changed_at)
    span = max(at for at, _, _ in arrivals.values()) - first
    _say(f"offered {rate} holds/s: {len(arrivals) / span:.0f} events/s delivered by 1 worker "
         f"({len(arrivals)} events); change to arrival {_spread(lags)}; "
         f"hold.expired, expires_at to arrival {_spread(expiry_lags)}")  # fmt: skip


def _spread(lags: list[float]) -> str:
    if not lags:
        return "none arrived"
    p50, p99 = percentile(lags, 0.5) * 1000, percentile(lags, 0.99) * 1000
    return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {lags[-1] * 1000:.0f} ms"


def _count(received: Path) -> int:
    return len(received.read_text().splitlines()) if received.exists() else 0


def _wait_for(received: Path, deliveries: int, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and _count(received) < deliveries:
        time.sleep(0.5)
    if _count(received) < deliveries:
        _say(f"  (only {_count(received)} of {deliveries} deliveries within {within:.0f} s)")


async def _event_times(database_url: str) -> dict[str, float]:
    """When each event's change happened (SQL keeps the outbox entry's millisecond time)."""
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT id, created_at FROM events"))
        times = {row.id: _epoch(row.created_at) for row in rows}
    await engine.dispose()
    return times


def _epoch(value: Any) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC).timestamp() if moment.tzinfo is None else moment.timestamp()


if __name__ == "__main__":
    main()
