"""`holds serve --demo` as a real subprocess on a free port, for tests that need a live server."""

from __future__ import annotations

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

from app.embedded_redis import free_port


@dataclass(frozen=True)
class DemoServer:
    base: str  # http://127.0.0.1:PORT
    key: str  # the demo key, with every scope
    pid: int

    @property
    def api(self) -> str:
        return f"{self.base}/v1"


@contextmanager
def demo_server(directory: Path, **settings: str) -> Iterator[DemoServer]:
    """Run `holds serve --demo` with HOLDS_<NAME> settings; stopped (SIGINT) on exit."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {"HOLDS_DATA_DIR": str(directory / "data"), "HOLDS_LOG_LEVEL": "WARNING"}
    env |= {f"HOLDS_{name.upper()}": value for name, value in settings.items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--demo", "--port", str(port)],
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
