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
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis

from app.embedded_redis import EmbeddedRedis
from benchmarks import serving
from benchmarks.holds_vs_baseline import Load, _median, _say
from benchmarks.workload import GROUP_KIND, GROUP_SEATS, write_bodies

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
        now = serving.server(stack, directory / "now", redis_url, source=None)
        loads = {
            "exclusive, this tree": (now, Load(now.key, exclusive, args.seconds, args.concurrency)),
            "10-seat sessions, this tree": (
                now,
                Load(now.key, sessions, args.seconds, args.concurrency),
            ),
        }
        if args.before:
            tree = stack.enter_context(serving.worktree(args.before, directory / "before-tree"))
            then = serving.server(stack, directory / "before", redis_url, source=tree)
            loads[f"exclusive, at {args.before}"] = (
                then,
                Load(then.key, exclusive, args.seconds, args.concurrency),
            )
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in loads}
        for _ in range(args.rounds):
            for name, (target, load) in loads.items():
                runs[name].append(serving.peak(load, target.target, admin))
    _report(runs, args.rounds)


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
