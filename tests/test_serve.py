"""`holds serve --demo` as a new user runs it: a real process with its own embedded redis-server."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from app.embedded_redis import free_port
from tests.catalog import AMARA, CLINIC, INITIAL, PATIENT


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env["HOLDS_DATA_DIR"] = str(tmp_path / "data")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    key = _wait_for_demo_key(process)
    yield f"http://127.0.0.1:{port}/v1", key, process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)


def _wait_for_demo_key(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    key = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("holds serve exited before it was ready")
        key = next(iter(re.findall(r"pk_test_\S+", line)), key)
        if "holds API on" in line and key:
            return key
    raise AssertionError("holds serve was not ready within 30 s")


async def test_seed_curl_flow_works_against_holds_serve_demo(
    demo_server: tuple[str, str, subprocess.Popen[str]],
) -> None:
    base, key, _ = demo_server
    headers = {"Authorization": f"Bearer {key}"}
    hold = {
        "appointment_type_id": INITIAL,
        "clinician_id": AMARA,
        "date": "2030-01-21",
        "start_time": "09:00",
        "location_id": CLINIC,
    }
    async with aiohttp.ClientSession(headers=headers) as http:
        for _ in range(50):  # the listener may trail the "ready" line by a moment
            try:
                async with http.get(base.replace("/v1", "/readyz")) as ready:
                    if ready.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        async with http.post(f"{base}/holds", json=hold) as response:
            assert response.status == 201
            hold_id = (await response.json())["data"]["id"]
        async with http.post(
            f"{base}/holds/{hold_id}/confirm", json={"patient_id": PATIENT}
        ) as response:
            assert response.status == 201
            assert (await response.json())["data"]["start_time"] == "2030-01-21T09:00:00Z"


def test_embedded_redis_stops_with_the_server(
    demo_server: tuple[str, str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    _, _, process = demo_server
    pid_of_redis = _child_pids(process.pid)
    assert pid_of_redis, "holds serve should run an embedded redis-server"
    process.send_signal(signal.SIGINT)
    process.wait(timeout=15)
    time.sleep(0.2)
    assert not any(_alive(pid) for pid in pid_of_redis)


def _child_pids(parent: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie awaiting its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] not in ("Z", "X")
    except FileNotFoundError:
        return False
