"""The bare aiohttp handler, POST /holds and GET /holds/{id}, measured by wrk in one run.

    python -m benchmarks.wrk [--seconds 4] [--rounds 3] [--connections 64] [--levers [NAMES]]

A Python load generator tops out near 8,000 requests a second on this machine, below what the
bare handler serves, so the fixed-request figures come from wrk (one thread, 64 connections),
which needs a fraction of that CPU per request; the run prints what wrk itself used. With two
or more cores, the servers (loaded one at a time) run on one core and wrk and Redis on another
(`taskset -a -p`), so the generator and the server do not take turns on one core.

Targets: the bare handlers (benchmarks/baseline_server.py: the JSON body parsed, or the path
read, and a fixed hold answered) for both methods, then `holds serve` as shipped: POST /holds
over a catalog of 100 clinicians bookable around the clock for 28 days (263,200 distinct
slots; a wrk Lua script names a new one in every request, each run past the previous run's;
Redis is emptied of holds before each run), and GET /holds/{id} over 500 holds made before the run.
One process each, uvloop, no Idempotency-Key (its two extra round trips are a separate cost),
rate limits counted but set too high to refuse. Rounds take turns and medians are printed with
their spread, since the machine's speed drifts between minutes. `--levers` also runs
`holds serve` with each hot-path lever taken out in turn (benchmarks/variant_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import redis

from app.embedded_redis import EmbeddedRedis, free_port
from app.ids import shard_tag
from app.store import keys
from benchmarks.holds_vs_baseline import _cpu_seconds, _wait
from benchmarks.workload import CLINICIANS, KIND, ORG, clinician, prepare

SCRIPTS = Path(__file__).with_name("wrk_scripts")
DAYS = 28  # from two days ahead, clear of the booking notice
SLOTS_PER_DAY = 94  # 00:00 to 23:15 every 15 minutes
GET_HOLDS = 500

# Each lever is `holds serve` with one hot-path change taken out (benchmarks/variant_server.py).
LEVERS = {  # label: what benchmarks/variant_server.py takes out
    "without holds rendered from the record": "hold-json",
    "without the one middleware": "one-middleware",
    "without the timer cache": "timer-cache",
    "without the slot rules per catalog version": "slot-rules",
    "without the lean create path": "lean-create",
    "without the shown fields only": "shown-fields",
    "without the startup heap frozen": "gc-freeze",
    "without all seven": (
        "hold-json,one-middleware,timer-cache,slot-rules,lean-create,shown-fields,gc-freeze"
    ),
}


def ensure_wrk() -> str:
    """wrk's path, installing it through apt when missing and possible; else stop, saying how."""
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `sudo apt-get install wrk` (or build it from "
                         "https://github.com/wg/wrk) and run this again.")  # fmt: skip
    return found


@dataclass(frozen=True)
class Cores:
    """Where the servers run, and where wrk and Redis run; None: wherever the kernel likes."""

    server: int | None
    load: int | None

    @classmethod
    def pick(cls) -> Cores:
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2 or shutil.which("taskset") is None:
            return cls(None, None)
        return cls(available[0], available[1])

    def pin(self, pid: int, core: int | None) -> None:
        if core is not None:  # -a: every thread of the process, not just its first
            subprocess.run(["taskset", "-a", "-p", "-c", str(core), str(pid)], check=True,
                           capture_output=True)  # fmt: skip

    def describe(self) -> str:
        if self.server is None:
            return "not pinned (fewer than two cores, or no taskset)"
        return f"servers on CPU {self.server}, wrk and Redis on CPU {self.load}"


@dataclass(frozen=True)
class Server:
    url: str  # up to the API's base path, e.g. http://127.0.0.1:8080/v1
    process: subprocess.Popen[bytes]


@contextmanager
def serving(
    module_args: list[str], env: dict[str, str], log: Path, cores: Cores
) -> Iterator[Server]:
    """A server process (a module run with `--port`) on the server core, stopped by its PID."""
    port = free_port()
    command = [sys.executable, "-m", *module_args, "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait(f"http://127.0.0.1:{port}/readyz")
        cores.pin(process.pid, cores.server)
        yield Server(f"http://127.0.0.1:{port}/v1", process)
    finally:
        process.terminate()
        process.wait(timeout=20)


@dataclass(frozen=True)
class Run:
    requests: int
    rps: float
    server_cpu_us: float  # the server's CPU time per request
    wrk_cpu_us: float  # wrk's own CPU time per request
    wrk_core_share: float  # wrk's CPU time over the run's length: 1.0 is a whole core
    p50_ms: float
    p99_ms: float
    failed: int  # non-2xx answers and socket errors
    statuses: dict[str, int]  # answers by status


class Wrk:
    """wrk runs against one server at a time, on the load core, with the server's CPU meanwhile."""

    def __init__(
        self, binary: str, cores: Cores, directory: Path, args: argparse.Namespace
    ) -> None:
        self.binary, self.cores, self.args = binary, cores, args
        self.next_slot = 0
        report = (SCRIPTS / "report.lua").read_text()
        self.scripts = {}
        for name in ("post_holds", "get_holds"):
            path = directory / f"{name}.lua"
            path.write_text((SCRIPTS / f"{name}.lua").read_text() + "\n" + report)
            self.scripts[name] = path

    def post(self, server: Server, key: str, seconds: float) -> Run:
        days = [(date.today() + timedelta(days=2 + n)).isoformat() for n in range(DAYS)]
        script_args = [key, KIND, ",".join(days), str(CLINICIANS), str(SLOTS_PER_DAY), "1"]
        script_args.append(str(self.next_slot))
        made = self._run(server, f"{server.url}/holds", "post_holds", script_args, seconds)
        # The next run begins past this one's slots, and past those its last requests (cut
        # off when wrk stopped) may still be taking.
        self.next_slot += made.requests + self.args.connections
        self.next_slot %= DAYS * SLOTS_PER_DAY * CLINICIANS
        return made

    def get(self, server: Server, key: str, ids_file: Path, seconds: float) -> Run:
        script_args = [key, f"{urlsplit(server.url).path}/holds/", str(ids_file)]
        return self._run(server, server.url, "get_holds", script_args, seconds)

    def _run(self, server: Server, url: str, script: str, script_args: list[str],
             seconds: float) -> Run:  # fmt: skip
        length = f"-d{max(1, round(seconds))}s"  # wrk takes whole seconds
        command = [self.binary, "-t1", f"-c{self.args.connections}", length, "--latency",
                   "-s", str(self.scripts[script]), url, "--", *script_args]  # fmt: skip
        if self.cores.load is not None:
            command = ["taskset", "-c", str(self.cores.load), *command]  # taskset execs wrk
        server_before = _cpu_seconds(server.process.pid)
        _children_cpu()  # from here on, only wrk's
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate(timeout=seconds + 60)
        wall = time.monotonic() - started
        server_used = _cpu_seconds(server.process.pid) - server_before
        usage = _children_cpu()
        if process.returncode != 0:
            raise SystemExit(f"wrk failed: {(out + err).decode().strip()}")
        figures = json.loads(out.decode().strip().splitlines()[-1])
        requests = max(1, figures["requests"])
        return Run(
            requests=figures["requests"],
            rps=figures["requests"] / (figures["duration_us"] / 1e6),
            server_cpu_us=server_used / requests * 1e6,
            wrk_cpu_us=usage / requests * 1e6,
            wrk_core_share=usage / wall,
            p50_ms=figures["p50_us"] / 1000,
            p99_ms=figures["p99_us"] / 1000,
            failed=figures["socket_errors"]
            + sum(count for status, count in figures["statuses"].items() if status[0] != "2"),
            statuses=figures["statuses"],
        )


_children_seen = 0.0


def _children_cpu() -> float:
    """CPU time of the child processes that ended since the last call: here, the last wrk (the
    servers are still running, so they are not counted yet)."""
    global _children_seen
    times = os.times()
    total = times.children_user + times.children_system
    used, _children_seen = total - _children_seen, total
    return used


async def make_holds(url: str, key: str, count: int) -> list[str]:
    """`count` holds made through the API, for the GET runs to read."""
    headers = {"Authorization": f"Bearer {key}"}
    day = (date.today() + timedelta(days=2 + DAYS)).isoformat()  # clear of the POST runs' days
    bodies = [
        {"appointment_type_id": KIND, "clinician_id": clinician(n % CLINICIANS), "date": day,
         "start_time": f"{(n // CLINICIANS) * 15 // 60:02d}:{(n // CLINICIANS) * 15 % 60:02d}"}
        for n in range(count)
    ]  # fmt: skip
    async with aiohttp.ClientSession(headers=headers) as http:
        gate = asyncio.Semaphore(32)

        async def post(body: dict[str, str]) -> str:
            async with gate, http.post(f"{url}/holds", json=body) as response:
                if response.status != 201:
                    raise SystemExit(f"making holds: {response.status} {await response.text()}")
                made: dict[str, Any] = await response.json()
                return str(made["data"]["id"])

        return await asyncio.gather(*(post(body) for body in bodies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--levers", nargs="?", const=",".join(LEVERS.values()), default="",
                        help="also measure `holds serve` with each lever taken out (all, or "
                        "these, comma-separated: " + ", ".join(LEVERS.values()) + ")")  # fmt: skip
    args = parser.parse_args()
    binary = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="holds-wrk-") as scratch:
        run(Path(scratch), binary, args)


Target = tuple[str, str]  # (server, method): ("bare", "POST"), ("holds", "GET") ...


def run(directory: Path, binary: str, args: argparse.Namespace) -> dict[Target, list[Run]]:
    """Every round's figures per target, printed as a table with their medians."""
    cores = Cores.pick()
    redis_server = EmbeddedRedis(directory / "redis", persistent=False)
    redis_url = redis_server.start()
    try:
        assert redis_server.process is not None
        cores.pin(redis_server.process.pid, cores.load)
        runs = _measure(directory, redis_url, binary, cores, args)
    finally:
        redis_server.stop()
    _report(runs, args.rounds)
    return runs


def _measure(directory: Path, redis_url: str, binary: str, cores: Cores,
             args: argparse.Namespace) -> dict[Target, list[Run]]:  # fmt: skip
    database_url = f"sqlite:///{directory / 'bench.sqlite3'}"
    key = asyncio.run(prepare(database_url))
    env = dict(os.environ, HOLDS_REDIS_URL=redis_url, HOLDS_DATABASE_URL=database_url,
               HOLDS_RATE_LIMIT_PER_MINUTE="1000000000", HOLDS_LOG_LEVEL="WARNING",
               HOLDS_MAX_ACTIVE_HOLDS_PER_KEY="1000000000")  # fmt: skip
    commands = {"bare": ["benchmarks.baseline_server"], "holds": ["app", "serve"]}
    chosen = set(filter(None, args.levers.split(",")))
    for label, removed in LEVERS.items():
        if set(removed.split(",")) <= chosen:
            commands[label] = ["benchmarks.variant_server", "--without", removed, "--"]
    admin = redis.Redis.from_url(redis_url)
    wrk = Wrk(binary, cores, directory, args)
    ids_file = directory / "hold_ids.txt"
    _say(f"wrk {args.connections} connections, 1 thread, {args.seconds} s a run, "
         f"{args.rounds} rounds; {cores.describe()}")  # fmt: skip
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(serving(command, env, directory / f"{n}.log", cores))
            for n, (name, command) in enumerate(commands.items())
        }
        runs: dict[Target, list[Run]] = {}
        for round_number in range(args.rounds + 1):  # round 0 warms caches up and is not kept
            seconds = args.seconds if round_number else 1.0
            for name, server in servers.items():
                _empty(admin)
                post = wrk.post(server, key, seconds)
                _empty(admin)
                ids_file.write_text("\n".join(asyncio.run(make_holds(server.url, key, GET_HOLDS))))
                get = wrk.get(server, key, ids_file, seconds)
                if round_number:
                    runs.setdefault((name, "POST"), []).append(post)
                    runs.setdefault((name, "GET"), []).append(get)
    return runs


def _empty(admin: redis.Redis) -> None:
    """Redis without holds, as a running service's is: every clinician's appointments already
    restored from SQL (a restore runs once per hash tag after Redis starts empty, and would
    otherwise be counted in every run)."""
    admin.flushall()
    tags = {shard_tag(ORG, clinician(n)) for n in range(CLINICIANS)}
    admin.mset({keys.ready(tag): "1" for tag in tags})


def _report(runs: dict[Target, list[Run]], rounds: int) -> None:
    medians = {target: _median(results) for target, results in runs.items()}
    _say(f"medians of {rounds} alternating rounds (min-max of req/s in brackets):")
    _say(f"{'target':52s} {'req/s':>16s} {'server µs/req':>13s} {'wrk µs/req':>10s} "
         f"{'wrk core':>8s} {'p50 ms':>7s} {'p99 ms':>7s} {'failed':>6s}")  # fmt: skip
    for (name, method), median in medians.items():
        spread = [r.rps for r in runs[(name, method)]]
        label = f"{_describe(name, method)}"
        _say(f"{label:52s} {median.rps:7.0f} ({min(spread):.0f}-{max(spread):.0f}) "
             f"{median.server_cpu_us:13.0f} {median.wrk_cpu_us:10.1f} "
             f"{median.wrk_core_share:8.2f} {median.p50_ms:7.2f} {median.p99_ms:7.2f} "
             f"{median.failed:6d}")  # fmt: skip
        if median.failed:
            _say(f"  answers by status: {median.statuses}")
    for method in ("POST", "GET"):
        bare, holds = medians[("bare", method)], medians[("holds", method)]
        _say(
            f"ratio {method:4s} /holds to the bare handler: {holds.rps / bare.rps:.2f} by req/s, "
            f"{bare.server_cpu_us / holds.server_cpu_us:.2f} by server CPU per request"
        )


def _describe(name: str, method: str) -> str:
    path = "/holds" if method == "POST" else "/holds/{id}"
    if name == "bare":
        return f"bare aiohttp handler, {method}"
    if name == "holds":
        return f"{method} {path} as shipped"
    return f"{method} {path} {name}"


def _median(results: list[Run]) -> Run:
    return Run(
        requests=sum(r.requests for r in results),
        rps=statistics.median(r.rps for r in results),
        server_cpu_us=statistics.median(r.server_cpu_us for r in results),
        wrk_cpu_us=statistics.median(r.wrk_cpu_us for r in results),
        wrk_core_share=statistics.median(r.wrk_core_share for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        failed=sum(r.failed for r in results),
        statuses=dict(sum((Counter(r.statuses) for r in results), Counter())),
    )


def _say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    main()
