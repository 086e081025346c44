"""deploy/: one command starts Redis, API processes and workers, and stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from app.embedded_redis import free_port

ROOT = Path(__file__).parents[1]


def test_run_local_starts_everything_and_stops_it(tmp_path: Path) -> None:
    port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {
        "API_PROCESSES": "2",
        "WORKERS": "2",
        "PORT": str(port),
        "REDIS_PORT": str(redis_port),
        "WORKER_METRICS_PORT": str(free_port()),
        "HOLDS_DATA_DIR": str(tmp_path / "data"),
        "HOLDS_LOG_LEVEL": "WARNING",
    }
    script = subprocess.Popen(
        ["bash", str(ROOT / "deploy" / "run-local.sh")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Six interpreters start on two cores; on a busy machine that alone takes half a minute.
        _wait_until_ready(f"http://127.0.0.1:{port}/readyz", within=60)
        # redis-server, holds serve --processes 2 and its two children, 2 workers
        assert len(_processes_of(script.pid)) >= 6
    finally:
        script.send_signal(signal.SIGTERM)
        script.wait(timeout=30)
    time.sleep(0.5)
    assert _processes_of(script.pid) == []


def _wait_until_ready(url: str, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} not ready within {within} s")
        time.sleep(0.2)


def _processes_of(session_id: int) -> list[str]:
    found = subprocess.run(["pgrep", "-s", str(session_id)], capture_output=True, text=True)
    return found.stdout.split()
