"""What group sessions cost: POST /holds on an exclusive type before and after seats, and the
rate at which sessions of 10 seats fill, in one run.

    python -m benchmarks.group_sessions [--before REV] [--seconds 10] [--rounds 3]

Starts a redis-server (no persistence) and `holds serve` (one process, uvloop), and drives it
with the benchmark's load generator (benchmarks/generate.py, a process of its own), closed loop,
64 connections: distinct exclusive slots, then 10-seat sessions filled seat by seat (each
request body repeated 10 times in a row). With `--before REV` it also serves the same exclusive
load from `holds serve` as it was at git revision REV (checked out into a temporary worktree,
with a database of its own), so the exclusive figure is compared within the same run. Rounds
take turns and medians are printed, with each server's CPU per request and the generator's own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from app.embedded_redis import EmbeddedRedis
from benchmarks.holds_vs_baseline import Load, Target, _median, _say, _serving
from benchmarks.workload import GROUP_KIND, GROUP_SEATS, prepare, write_bodies

_SESSION_LINES = 200_000  # 20,000 sessions: more than a 10-second run fills


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REV", help="also measure holds serve at this rev")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="holds-groups-") as scratch:
        run(Path(scratch), args)


def run(directory: Path, args: argparse.Namespace) -> None:
    server = EmbeddedRedis(directory / "redis", persistent=False)
    redis_url = server.start()
    try:
        _measure(directory, redis_url, args)
    finally:
        server.stop()


def _measure(directory: Path, redis_url: str, args: argparse.Namespace) -> None:
    exclusive, sessions = directory / "exclusive.jsonl", directory / "sessions.jsonl"
    write_bodies(exclusive)
    write_bodies(sessions, GROUP_KIND, seats=GROUP_SEATS, limit=_SESSION_LINES)
    admin = redis.Redis.from_url(redis_url)
    with ExitStack() as stack:
        now = _server(stack, directory / "now", redis_url, source=None)
        loads = {
            "exclusive, this tree": (now, Load(now.key, exclusive, args.seconds, args.concurrency)),
            "10-seat sessions, this tree": (
                now,
                Load(now.key, sessions, args.seconds, args.concurrency),
            ),
        }
        if args.before:
            tree = stack.enter_context(_worktree(args.before, directory / "before-tree"))
            then = _server(stack, directory / "before", redis_url, source=tree)
            loads[f"exclusive, at {args.before}"] = (
                then,
                Load(then.key, exclusive, args.seconds, args.concurrency),
            )
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in loads}
        for _ in range(args.rounds):
            for name, (target, load) in loads.items():
                runs[name].append(_peak(load, target.target, admin))
    _report(runs, args.rounds)


@dataclass(frozen=True)
class _Served:
    target: Target
    key: str


def _server(stack: ExitStack, directory: Path, redis_url: str, source: Path | None) -> _Served:
    """`holds serve` from this tree, or from `source`, with a database of its own."""
    directory.mkdir()
    database_url = f"sqlite:///{directory / 'bench.sqlite3'}"
    env = dict(os.environ, HOLDS_REDIS_URL=redis_url, HOLDS_DATABASE_URL=database_url,
               HOLDS_RATE_LIMIT_PER_MINUTE="1000000000", HOLDS_LOG_LEVEL="WARNING",
               HOLDS_MAX_ACTIVE_HOLDS_PER_KEY="1000000000")  # fmt: skip
    if source is None:
        key = asyncio.run(prepare(database_url))
    else:
        env["PYTHONPATH"] = str(source)
        key = _prepare_at(source, env, database_url)
    target = stack.enter_context(_serving(["app", "serve"], env, directory / "serve.log"))
    return _Served(target, key)


def _prepare_at(source: Path, env: dict[str, str], database_url: str) -> str:
    """The older tree's own migrations and catalog, and a key for it."""
    code = (
        "import asyncio, sys; from benchmarks.workload import prepare; "
        "print(asyncio.run(prepare(sys.argv[1])))"
    )
    done = subprocess.run([sys.executable, "-c", code, database_url], env=env, cwd=source,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def _worktree(revision: str, path: Path) -> Iterator[Path]:
    subprocess.run(["git", "worktree", "add", "--detach", str(path), revision], check=True,
                   capture_output=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], check=False)


def _peak(load: Load, target: Target, admin: redis.Redis) -> dict[str, Any]:
    """The load's peak, with the load generator's own CPU (children of this process)."""
    before = _children_cpu()
    result = load.peak(target, admin)
    return result | {"generator_cpu_s": _children_cpu() - before}


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def _report(runs: dict[str, list[dict[str, Any]]], rounds: int) -> None:
    _say(f"POST /holds, closed loop, median of {rounds} alternating rounds:")
    for name, results in runs.items():
        peak = _median(results)
        statuses = sum((Counter(r["statuses"]) for r in results), Counter())
        generator = sum(r["generator_cpu_s"] for r in results) / sum(r["requests"] for r in results)
        _say(f"  {name:34s} {peak['rps']:7.0f} req/s  {peak['cpu_us']:4.0f} us CPU/request  "
             f"generator {generator * 1e6:4.0f} us CPU/request  {dict(statuses)}")  # fmt: skip


if __name__ == "__main__":
    main()
