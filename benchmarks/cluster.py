"""The service on a 3-master Redis Cluster beside one standalone Redis, in one run.

    python -m benchmarks.cluster [--seconds 5] [--rounds 2] [--concurrency 64]

Starts a standalone redis-server (also the cluster's job queue) and a cluster of 3 masters and
3 replicas (tests/cluster.py), then prints: POST /holds per second with 1 and 2 `holds serve`
processes (two share one port with --reuse-port) against each, the servers' and the load
generator's CPU time per request, the cost of `WAIT 1` after a write, the latency of
`POST /holds/{id}/confirm` with and without its wait for a replica, the worker's cleanup of
10,000 holds expiring at once on the cluster (benchmarks/expiry_lag.py), and how long the
service answers 503 after `kill -9` of a master. Redis runs without persistence here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import redis
from redis.crc import key_slot

from app.embedded_redis import EmbeddedRedis, free_port
from app.ids import shard_tag
from app.store.redis_client import open_redis
from benchmarks import expiry_lag
from benchmarks.holds_vs_baseline import _cpu_seconds, _wait
from benchmarks.workload import ORG, PATIENT, prepare, write_bodies
from tests.cluster import LocalCluster


@contextmanager
def _servers(count: int, env: dict[str, str], log: Path) -> Iterator[tuple[str, list[int]]]:
    """`count` holds serve processes on one port; stopped by their PIDs afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "app", "serve", "--port", str(port), "--reuse-port"]
    processes = [
        subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        for _ in range(count)
    ]
    try:
        _wait(f"http://127.0.0.1:{port}/readyz")
        time.sleep(1)  # every process listening, not only the first
        yield f"http://127.0.0.1:{port}/v1/holds", [p.pid for p in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


def _peak(url: str, pids: list[int], key: str, bodies: Path, args: argparse.Namespace) -> Any:
    """Closed-loop POST /holds; the servers' and the generator's CPU per request."""
    before = sum(_cpu_seconds(pid) for pid in pids)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, "-m", "benchmarks.generate", "--url", url, "--key", key,
               "--bodies", str(bodies), "--seconds", str(args.seconds),
               f"--concurrency={args.concurrency}"]  # fmt: skip
    result: dict[str, Any] = json.loads(
        subprocess.run(command, capture_output=True, text=True, check=True).stdout
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests = max(1, result["requests"])
    generator = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    served = sum(_cpu_seconds(pid) for pid in pids) - before
    return result | {"cpu_us": served / requests * 1e6, "gen_us": generator / requests * 1e6}


def _throughput(directory: Path, standalone: str, cluster: LocalCluster, args: Any) -> None:
    database_url = f"sqlite:///{directory / 'bench.sqlite3'}"
    key = asyncio.run(prepare(database_url))
    bodies = directory / "bodies.jsonl"
    write_bodies(bodies)
    base = dict(os.environ, HOLDS_DATABASE_URL=database_url, HOLDS_LOG_LEVEL="WARNING",
                HOLDS_RATE_LIMIT_PER_MINUTE="1000000000",
                HOLDS_MAX_ACTIVE_HOLDS_PER_KEY="1000000000")  # fmt: skip
    on_cluster = {"HOLDS_REDIS_URL": cluster.url, "HOLDS_QUEUE_REDIS_URL": standalone}
    topologies = {"standalone": base | {"HOLDS_REDIS_URL": standalone}}
    topologies["cluster (3 masters)"] = base | on_cluster
    admin = redis.Redis.from_url(standalone)
    for processes in (1, 2):
        for name, env in topologies.items():
            runs = []
            with _servers(processes, env, directory / "serve.log") as (url, pids):
                for _ in range(args.rounds):
                    admin.flushall()
                    cluster.flush()
                    runs.append(_peak(url, pids, key, bodies, args))
            rps = statistics.median(r["rps"] for r in runs)
            cpu = statistics.median(r["cpu_us"] for r in runs)
            gen = statistics.median(r["gen_us"] for r in runs)
            statuses = sum((Counter(r["statuses"]) for r in runs), Counter())
            print(f"{processes} API process(es), {name:20s} {rps:7.0f} POST /holds/s  "
                  f"servers {cpu:4.0f} us CPU/req, load generator {gen:4.0f} us CPU/req  "
                  f"{dict(statuses)}", flush=True)  # fmt: skip


def _wait_cost(cluster: LocalCluster, calls: int = 2000) -> None:
    """A write alone, and a write followed by `WAIT 1 100` (one replica has it), on a master."""
    key = "holds:{bench}:wait"
    with _owner(cluster, key_slot(key.encode())).client() as client:
        samples: dict[str, list[float]] = {"write": [], "write + WAIT 1": []}
        for n in range(calls):
            waiting = n % 2 == 1
            began = time.perf_counter()
            client.set(key, n)
            if waiting:
                client.execute_command("WAIT", 1, 100)
            samples["write + WAIT 1" if waiting else "write"].append(time.perf_counter() - began)
    for label, values in samples.items():
        values.sort()
        print(f"{label:16s} p50 {values[len(values) // 2] * 1e3:.3f} ms, "
              f"p99 {values[int(len(values) * 0.99)] * 1e3:.3f} ms", flush=True)  # fmt: skip


async def _confirm_latency(
    directory: Path, standalone: str, cluster: LocalCluster, confirms: int
) -> None:
    """One confirm at a time through HTTP, taking turns between two `holds serve` on the same
    cluster, one with HOLDS_CONFIRM_REPLICA_TIMEOUT_MS 0 (no wait) and one with 200 (WAIT 1
    after the script), so the machine's noise falls on both alike. Each hold is made just
    before its confirm."""
    cluster.flush()
    database_url = f"sqlite:///{directory / 'confirm.sqlite3'}"
    key = await prepare(database_url)
    bodies = (directory / "bodies.jsonl").read_text().splitlines()[: 2 * confirms]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    env = dict(os.environ, HOLDS_DATABASE_URL=database_url, HOLDS_LOG_LEVEL="WARNING",
               HOLDS_REDIS_URL=cluster.url, HOLDS_QUEUE_REDIS_URL=standalone,
               HOLDS_RATE_LIMIT_PER_MINUTE="1000000000")  # fmt: skip
    timeouts = (0, 200)
    samples: dict[int, list[float]] = {timeout_ms: [] for timeout_ms in timeouts}
    log = directory / "confirm.log"
    with (
        _servers(1, env | {"HOLDS_CONFIRM_REPLICA_TIMEOUT_MS": "0"}, log) as (no_wait, _),
        _servers(1, env | {"HOLDS_CONFIRM_REPLICA_TIMEOUT_MS": "200"}, log) as (waiting, _),
    ):
        async with aiohttp.ClientSession(headers=headers) as http:
            for n, body in enumerate(bodies):
                url = (no_wait, waiting)[n % 2]
                samples[timeouts[n % 2]].append(await _timed_confirm(http, url, body))
    for timeout_ms, values in samples.items():
        values.sort()
        print(f"confirm, replica timeout {timeout_ms:3d} ms: {len(values)} confirms, "
              f"p50 {values[len(values) // 2] * 1e3:.2f} ms, "
              f"p99 {values[int(len(values) * 0.99)] * 1e3:.2f} ms", flush=True)  # fmt: skip


async def _timed_confirm(http: aiohttp.ClientSession, url: str, body: str) -> float:
    """Seconds one confirm takes, of a hold made just before it."""
    async with http.post(url, data=body) as made:
        hold = await made.json()
    began = time.perf_counter()
    confirm = {"patient_id": PATIENT}
    async with http.post(f"{url}/{hold['data']['id']}/confirm", json=confirm) as done:
        assert done.status == 201, await done.text()
    return time.perf_counter() - began


def _owner(cluster: LocalCluster, slot: int) -> Any:
    with cluster.live_nodes()[0].client() as client:
        for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return cluster.node_for_port(int(master[1]))
    raise SystemExit(f"slot {slot} has no owner")


async def _expiry(directory: Path, standalone: str, cluster: LocalCluster, holds: int) -> None:
    cluster.flush()
    database_url = f"sqlite:///{directory / 'expiry.sqlite3'}"
    client = open_redis(cluster.url, cluster=True)
    os.environ["HOLDS_QUEUE_REDIS_URL"] = standalone  # the workers' queue
    processes = []
    try:
        tags = await expiry_lag._prepare(database_url, client)
        processes = expiry_lag._start_workers(1, cluster.url, database_url, directory)
        await asyncio.sleep(4)  # the worker up and subscribed on every master
        expires_at = float(int(time.time()) + 15)
        created = await expiry_lag._create_holds(client, holds, expires_at)
        marks = await expiry_lag._watch(client, tags, len(created), expires_at)
    finally:
        expiry_lag._stop(processes)
        del os.environ["HOLDS_QUEUE_REDIS_URL"]
        await client.aclose()
    shown = ", ".join(f"{label} {value:.2f} s" for label, value in marks.items())
    print(f"expiry on the cluster    {len(created)} holds at once, 1 worker: cleaned {shown} "
          "after expiry", flush=True)  # fmt: skip


async def _failover(directory: Path, standalone: str, cluster: LocalCluster) -> None:
    """kill -9 of the master serving the first clinician's tag, under one request every 50 ms."""
    cluster.flush()
    database_url = f"sqlite:///{directory / 'failover.sqlite3'}"
    key = await prepare(database_url)
    bodies = directory / "bodies.jsonl"
    lines = bodies.read_text().splitlines()
    first = json.loads(lines[0])["clinician_id"]
    mine = [line for line in lines if json.loads(line)["clinician_id"] == first]
    env = dict(os.environ, HOLDS_DATABASE_URL=database_url, HOLDS_LOG_LEVEL="WARNING",
               HOLDS_REDIS_URL=cluster.url, HOLDS_QUEUE_REDIS_URL=standalone)  # fmt: skip
    master = _owner(cluster, key_slot(f"{{{shard_tag(ORG, first)}}}".encode()))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with _servers(1, env, directory / "failover.log") as (url, _):
        async with aiohttp.ClientSession(headers=headers) as http:
            statuses: Counter[int] = Counter()
            master.kill()
            killed = time.monotonic()
            for body in mine:
                async with http.post(url, data=body) as response:
                    await response.read()
                if response.status == 201:
                    break
                statuses[response.status] += 1
                await asyncio.sleep(0.05)
            window = time.monotonic() - killed
    print(f"failover                 kill -9 of a master: writes on its slots answered again "
          f"after {window:.1f} s; meanwhile {dict(statuses)}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--holds", type=int, default=10_000)
    parser.add_argument("--confirms", type=int, default=300)
    parser.add_argument("--only-confirms", action="store_true",
                        help="measure the confirm latency alone")  # fmt: skip
    parser.add_argument("--only-expiry", action="store_true",
                        help="measure the cleanup of holds expiring at once alone")  # fmt: skip
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="holds-cluster-bench-"))
    server = EmbeddedRedis(directory / "redis", persistent=False)
    standalone = server.start()
    cluster = LocalCluster(directory / "cluster").start()
    try:
        print(f"{os.cpu_count()} cores; {args.rounds} rounds of {args.seconds:g} s, "
              f"concurrency {args.concurrency}; medians", flush=True)  # fmt: skip
        if args.only_confirms:
            write_bodies(directory / "bodies.jsonl")
            asyncio.run(_confirm_latency(directory, standalone, cluster, args.confirms))
            return
        if args.only_expiry:
            asyncio.run(_expiry(directory, standalone, cluster, args.holds))
            return
        _throughput(directory, standalone, cluster, args)
        _wait_cost(cluster)
        asyncio.run(_confirm_latency(directory, standalone, cluster, args.confirms))
        asyncio.run(_expiry(directory, standalone, cluster, args.holds))
        asyncio.run(_failover(directory, standalone, cluster))
    finally:
        cluster.stop()
        server.stop()


if __name__ == "__main__":
    main()
