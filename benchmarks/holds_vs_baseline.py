"""POST /holds beside a bare aiohttp handler, driven by the same load generator in one run.

    python -m benchmarks.holds_vs_baseline [--seconds 10] [--concurrency 64] [--variants]

Starts a redis-server, the baseline (benchmarks/baseline_server.py) and `holds serve`, one
process each on the same event loop (uvloop), and prints: POST /holds requests per second and
the ratio to the baseline, each server's CPU time per request (steadier than throughput on a
shared machine), p50 and p99 at half the service's peak rate, Redis round trips per POST /holds,
Redis memory per active hold with 100,000 active holds, the worker's cleanup lag with 10,000
holds expiring at once (benchmarks/expiry_lag.py), and for reference PostgreSQL exclusion-
constraint inserts with pgbench (benchmarks/postgres_holds.py). `--variants` also runs
`holds serve` without each of its speed-ups in turn. Redis runs without persistence here, to
measure the service rather than the disk (deploy/redis.conf fsyncs every write).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from app.embedded_redis import EmbeddedRedis, free_port
from benchmarks import expiry_lag, memory, postgres_holds
from benchmarks.workload import prepare, write_bodies


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


# Each variant is `holds serve` with these speed-ups taken out (benchmarks/variant_server.py).
VARIANTS = {
    "without auto-pipelining": "autopipeline",
    "without auto-pipelining and hiredis": "autopipeline,hiredis",
    "without uvloop": "uvloop",
    "without orjson": "orjson",
}
WITH_ACCESS_LOG = "with access logs (the default INFO level)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-holds", type=int, default=100_000)
    parser.add_argument("--expiring-holds", type=int, default=10_000)
    parser.add_argument(
        "--variants", action="store_true", help="also measure " + ", ".join(VARIANTS)
    )
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="holds-bench-") as scratch:
        run(Path(scratch), args)


def run(directory: Path, args: argparse.Namespace) -> None:
    server = EmbeddedRedis(directory / "redis", persistent=False)
    redis_url = server.start()
    try:
        _http(directory, redis_url, args)
    finally:
        server.stop()
    memory.report(memory.measure_alone(args.memory_holds))
    marks = asyncio.run(expiry_lag.measure(args.expiring_holds, 1, directory / "expiry"))
    _say(f"expiry cleanup lag       p50 {marks.get('p50', math.nan):.2f} s, p99 "
         f"{marks.get('p99', math.nan):.2f} s ({args.expiring_holds} holds expiring at once, "
         "1 worker)")  # fmt: skip
    try:
        inserts = postgres_holds.measure(args.postgres_url, args.seconds, clients=16)
        _say(f"PostgreSQL reference     {inserts:8.0f} inserts/s (exclusion constraint, pgbench, "
             "16 clients, database only)")  # fmt: skip
    except SystemExit as skipped:
        _say(f"PostgreSQL reference     not measured: {skipped}")


def _http(directory: Path, redis_url: str, args: argparse.Namespace) -> None:
    database_url = f"sqlite:///{directory / 'bench.sqlite3'}"
    key = asyncio.run(prepare(database_url))
    bodies = directory / "bodies.jsonl"
    write_bodies(bodies)
    env = dict(os.environ, HOLDS_REDIS_URL=redis_url, HOLDS_DATABASE_URL=database_url,
               HOLDS_RATE_LIMIT_PER_MINUTE="1000000000", HOLDS_LOG_LEVEL="WARNING",
               HOLDS_MAX_ACTIVE_HOLDS_PER_KEY="1000000000")  # fmt: skip
    commands = {"baseline": ["benchmarks.baseline_server"], "service": ["app", "serve"]}
    extra_env: dict[str, dict[str, str]] = {}
    for label, removed in VARIANTS.items() if args.variants else ():
        commands[label] = ["benchmarks.variant_server", "--without", removed, "--"]
    if args.variants:  # the measured runs log warnings only, as the bare handler logs nothing
        commands[WITH_ACCESS_LOG] = ["app", "serve"]
        extra_env[WITH_ACCESS_LOG] = {"HOLDS_LOG_LEVEL": "INFO"}
    admin = redis.Redis.from_url(redis_url)
    load = Load(key, bodies, args.seconds, args.concurrency)
    with ExitStack() as stack:
        targets = {
            name: stack.enter_context(
                _serving(command, env | extra_env.get(name, {}), directory / f"{n}.log")
            )
            for n, (name, command) in enumerate(commands.items())
        }
        # Rounds that take turns, and medians: the machine's speed drifts between minutes.
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, target in targets.items():
                runs[name].append(load.peak(target, admin))
        peaks = {name: _median(results) for name, results in runs.items()}
        _report_peaks(peaks, args.rounds)
        half, round_trips = load.at_rate(targets["service"], admin, peaks["service"]["rps"] / 2)
    _say(f"at half peak ({peaks['service']['rps'] / 2:.0f}/s)    p50 {half['p50_ms']:.2f} ms, "
         f"p99 {half['p99_ms']:.2f} ms  {half['statuses']}")  # fmt: skip
    _say(f"Redis round trips        {round_trips:8.2f} per POST /holds "
         "(EVALSHA calls / requests)")  # fmt: skip


def _report_peaks(peaks: dict[str, dict[str, Any]], rounds: int) -> None:
    baseline, service = peaks["baseline"], peaks["service"]
    _say(f"peak, median of {rounds} alternating rounds:")
    _say(f"baseline (bare aiohttp)  {baseline['rps']:8.0f} req/s  "
         f"{baseline['cpu_us']:5.0f} us CPU/request")  # fmt: skip
    _say(f"POST /holds              {service['rps']:8.0f} req/s  "
         f"{service['cpu_us']:5.0f} us CPU/request")  # fmt: skip
    _say(f"ratio to baseline        {service['rps'] / baseline['rps']:8.2f} "
         f"(by CPU per request: {baseline['cpu_us'] / service['cpu_us']:.2f})")  # fmt: skip
    for label in [*VARIANTS, WITH_ACCESS_LOG]:
        if label in peaks:
            variant = peaks[label]
            _say(f"  {label:42s} {variant['rps']:6.0f} req/s  "
                 f"{variant['cpu_us']:5.0f} us CPU/request")  # fmt: skip


def _median(results: list[dict[str, Any]]) -> dict[str, float]:
    return {field: statistics.median(r[field] for r in results) for field in ("rps", "cpu_us")}


class Load:
    """The same load generator for every target: distinct slots, one process of its own."""

    def __init__(self, key: str, bodies: Path, seconds: float, concurrency: int) -> None:
        self.key, self.bodies, self.seconds, self.concurrency = key, bodies, seconds, concurrency

    def peak(self, target: Target, admin: redis.Redis) -> dict[str, Any]:
        """Closed-loop peak throughput, and the target's CPU time per request meanwhile, on
        slots not yet held."""
        admin.flushall()
        before = _cpu_seconds(target.process.pid)
        result = _generate(target.url, self.key, self.bodies, self.seconds,
                           concurrency=self.concurrency)  # fmt: skip
        used = _cpu_seconds(target.process.pid) - before
        return result | {"cpu_us": used / max(1, result["requests"]) * 1e6}

    def at_rate(
        self, target: Target, admin: redis.Redis, rate: float
    ) -> tuple[dict[str, Any], float]:
        """Open-loop latency at `rate`, and Redis round trips per request meanwhile."""
        admin.flushall()
        warm = _generate(target.url, self.key, self.bodies, 2, rate=200)  # restores, caches
        admin.config_resetstat()
        result = _generate(target.url, self.key, self.bodies, self.seconds, rate=rate,
                           skip=warm["requests"])  # fmt: skip
        stats: dict[str, Any] = admin.info("commandstats")  # type: ignore[assignment]
        evalsha = stats.get("cmdstat_evalsha", {}).get("calls", 0)
        return result, evalsha / max(1, result["requests"])


@dataclass(frozen=True)
class Target:
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def _serving(module_args: list[str], env: dict[str, str], log: Path) -> Iterator[Target]:
    """A server process (a module run with `--port`), stopped by its PID afterwards."""
    port = free_port()
    command = [sys.executable, "-m", *module_args, "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait(f"http://127.0.0.1:{port}/readyz")
        yield Target(f"http://127.0.0.1:{port}/v1/holds", process)
    finally:
        process.terminate()
        process.wait(timeout=20)


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    main()
