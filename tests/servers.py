"""`holds serve --demo` as a real subprocess on a free port, for tests that need a live server."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from app.embedded_redis import free_port, redis_server_binary

DEPLOY_REDIS_CONF = Path(__file__).parents[1] / "deploy" / "redis.conf"


@dataclass(frozen=True)
class DemoServer:
    base: str  # http://127.0.0.1:PORT
    key: str  # the demo key, with every scope
    pid: int

    @property
    def api(self) -> str:
        return f"{self.base}/v1"


@contextmanager
def demo_server(
    directory: Path, launcher: list[str] | None = None, **settings: str
) -> Iterator[DemoServer]:
    """Run `holds serve --demo` with HOLDS_<NAME> settings; stopped (SIGINT) on exit.
    `launcher` replaces the `python -m app serve` that precedes `--demo --port N`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {"HOLDS_DATA_DIR": str(directory / "data"), "HOLDS_LOG_LEVEL": "WARNING"}
    env |= {f"HOLDS_{name.upper()}": value for name, value in settings.items()}
    process = subprocess.Popen(
        [*(launcher or [sys.executable, "-m", "app", "serve"]), "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        server = DemoServer(f"http://127.0.0.1:{port}", _demo_key(process), process.pid)
        _wait_until_ready(f"{server.base}/readyz")
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _demo_key(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = re.search(r"pk_test_\S+", line)
        if found:
            return found.group(0)
        if not line and process.poll() is not None:
            break
    raise AssertionError("holds serve --demo printed no key")


def _wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} not ready")


class DeployedRedis:
    """redis-server run with deploy/redis.conf on a free port, killable and restartable."""

    def __init__(self, directory: Path, password: str | None = None) -> None:
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    def launch(self) -> None:
        command = [redis_server_binary(), str(DEPLOY_REDIS_CONF), "--port", str(self.port)]
        command += ["--dir", str(self.directory), "--bind", "127.0.0.1"]
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)

    async def start(self) -> None:
        self.launch()
        client = aioredis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                await client.ping()
                break
            except (aioredis.ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        await client.aclose()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
