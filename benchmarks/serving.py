"""Serving `holds serve` for benchmarks: from this tree or an older revision, and measuring
a load against it with the load generator's own CPU."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks.holds_vs_baseline import Load, Target, _serving
from benchmarks.workload import prepare


@dataclass(frozen=True)
class Served:
    target: Target
    key: str
    database_url: str


def server(
    stack: ExitStack, directory: Path, redis_url: str, source: Path | None, **settings: str
) -> Served:
    """`holds serve` from this tree, or from `source`, with a database of its own, and these
    HOLDS_<NAME> settings."""
    directory.mkdir()
    database_url = f"sqlite:///{directory / 'bench.sqlite3'}"
    env = dict(os.environ, HOLDS_REDIS_URL=redis_url, HOLDS_DATABASE_URL=database_url,
               HOLDS_RATE_LIMIT_PER_MINUTE="1000000000", HOLDS_LOG_LEVEL="WARNING",
               HOLDS_MAX_ACTIVE_HOLDS_PER_KEY="1000000000")  # fmt: skip
    env |= {f"HOLDS_{name.upper()}": value for name, value in settings.items()}
    if source is None:
        key = asyncio.run(prepare(database_url))
    else:
        env["PYTHONPATH"] = str(source)
        key = _prepare_at(source, env, database_url)
    target = stack.enter_context(_serving(["app", "serve"], env, directory / "serve.log"))
    return Served(target, key, database_url)


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
def worktree(revision: str, path: Path) -> Iterator[Path]:
    subprocess.run(["git", "worktree", "add", "--detach", str(path), revision], check=True,
                   capture_output=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], check=False)


def peak(load: Load, target: Target, admin: redis.Redis) -> dict[str, Any]:
    """The load's peak, with the load generator's own CPU (children of this process)."""
    before = _children_cpu()
    result = load.peak(target, admin)
    return result | {"generator_cpu_s": _children_cpu() - before}


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system
