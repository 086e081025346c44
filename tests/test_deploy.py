"""deploy/: one command starts Redis, API processes and workers, and stops them all."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import redis

from app.embedded_redis import free_port
from tests.cluster import port_is_free
from tests.conftest import seed_database
from tests.helpers import confirm_body, hold_body

ROOT = Path(__file__).parents[1]


def test_run_local_starts_everything_and_stops_it(tmp_path: Path) -> None:
    script, port = _run_local(tmp_path, {})
    try:
        # Six interpreters start on two cores; on a busy machine that alone takes half a minute.
        _wait_until_ready(f"http://127.0.0.1:{port}/readyz", within=60)
        # redis-server, holds serve --processes 2 and its two children, 2 workers
        assert len(_processes_of(script.pid)) >= 6
        _book_a_hold(port, tmp_path)
    finally:
        _stop(script)
    assert _processes_of(script.pid) == []


def test_run_local_cluster_mode_starts_a_cluster_and_stops_it(tmp_path: Path) -> None:
    cluster_port = _free_port_run(6)
    script, port = _run_local(
        tmp_path, {"REDIS_CLUSTER": "3", "REDIS_CLUSTER_PORT": str(cluster_port)}
    )
    try:
        _wait_until_ready(f"http://127.0.0.1:{port}/readyz", within=90)
        # 6 cluster nodes and the queue's redis-server, holds serve and its 2 children, 2 workers
        assert len(_processes_of(script.pid)) >= 11
        with redis.Redis(port=cluster_port) as node:
            info = node.execute_command("CLUSTER", "INFO").decode()
        assert "cluster_state:ok" in info and "cluster_size:3" in info
        _book_a_hold(port, tmp_path)
    finally:
        _stop(script)
    assert _processes_of(script.pid) == []


def _run_local(tmp_path: Path, extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """deploy/run-local.sh on free ports, with a database seeded with the test catalog."""
    database_url = f"sqlite:///{tmp_path / 'holds.sqlite3'}"
    (tmp_path / "key").write_text(asyncio.run(seed_database(database_url)).key)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {
        "API_PROCESSES": "2",
        "WORKERS": "2",
        "PORT": str(port),
        "REDIS_PORT": str(free_port()),
        "WORKER_METRICS_PORT": str(free_port()),
        "HOLDS_DATA_DIR": str(tmp_path / "data"),
        "HOLDS_DATABASE_URL": database_url,
        "HOLDS_LOG_LEVEL": "WARNING",
    } | extra
    script = subprocess.Popen(
        ["bash", str(ROOT / "deploy" / "run-local.sh")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return script, port


def _book_a_hold(port: int, tmp_path: Path) -> None:
    """A hold, then its confirm, through the API the script serves."""
    base = f"http://127.0.0.1:{port}/v1"
    key = (tmp_path / "key").read_text()
    status, hold = _post(f"{base}/holds", hold_body(), key)
    assert status == 201, hold
    status, booked = _post(f"{base}/holds/{hold['data']['id']}/confirm", confirm_body(), key)
    assert (status, booked["data"]["status"]) == (201, "confirmed")


def _post(url: str, body: dict[str, Any], key: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _stop(script: subprocess.Popen[bytes]) -> None:
    script.send_signal(signal.SIGTERM)
    script.wait(timeout=30)
    time.sleep(0.5)


def _free_port_run(count: int) -> int:
    """The first of `count` consecutive free ports whose cluster bus ports (+10000) are free."""
    for _ in range(100):
        first = random.randrange(20000, 55000 - count)
        if all(port_is_free(p) and port_is_free(p + 10000) for p in range(first, first + count)):
            return first
    raise AssertionError(f"no run of {count} free ports found")


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
