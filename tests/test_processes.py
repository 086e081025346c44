"""`holds serve --processes N`: N API processes on one port, kept and stopped by their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from app.embedded_redis import free_port
from tests.catalog import AMARA, CLINIC, INITIAL, PATIENT
from tests.conftest import eventually
from tests.servers import DemoServer, demo_server

GROUP = [sys.executable, "-m", "app", "serve", "--processes", "2"]


@pytest.fixture(scope="module")
def worker_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory, worker_port: int) -> Iterator[DemoServer]:
    """`holds serve --demo --processes 2` with no HOLDS_REDIS_URL: the parent owns Redis."""
    directory = tmp_path_factory.mktemp("group")
    with demo_server(directory, GROUP, worker_metrics_port=str(worker_port)) as server:
        yield server


def _api_children(parent: int) -> set[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(parent), "-f", "serve .*--child-of"], capture_output=True, text=True
    )
    return {int(pid) for pid in found.stdout.split()}


def _answered_by(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.headers["X-Holds-Process"])
    except OSError:
        return None


def _session(session_id: int) -> list[str]:
    found = subprocess.run(["pgrep", "-s", str(session_id)], capture_output=True, text=True)
    return found.stdout.split()


def test_two_processes_answer_on_one_port(group: DemoServer) -> None:
    answered: set[int] = set()
    deadline = time.monotonic() + 30
    while len(answered) < 2 and time.monotonic() < deadline:
        pid = _answered_by(f"{group.base}/healthz")  # each request on a new connection
        if pid is not None:
            answered.add(pid)
    assert answered == _api_children(group.pid)
    assert len(answered) == 2


async def test_the_parent_alone_runs_the_worker_and_persists_bookings(
    group: DemoServer, worker_port: int
) -> None:
    hold = {"appointment_type_id": INITIAL, "clinician_id": AMARA, "date": "2030-01-21"}
    hold |= {"start_time": "09:00", "location_id": CLINIC}
    headers = {"Authorization": f"Bearer {group.key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{group.api}/holds", json=hold) as response:
            hold_id = (await response.json())["data"]["id"]
        confirm = {"patient_id": PATIENT}
        async with http.post(f"{group.api}/holds/{hold_id}/confirm", json=confirm) as response:
            appointment = f"{group.api}/appointments/{(await response.json())['data']['id']}"

        async def persisted() -> bool:
            async with http.get(appointment) as response:
                return bool((await response.json())["data"]["persisted"])

        await eventually(persisted)
        async with http.get(f"http://127.0.0.1:{worker_port}/healthz") as response:
            assert (await response.json())["pid"] == group.pid


def test_a_child_killed_with_sigkill_is_replaced(group: DemoServer) -> None:
    before = _api_children(group.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = _api_children(group.pid)
        if len(now) == 2 and victim not in now and _answered_by(f"{group.base}/healthz"):
            break
        time.sleep(0.1)
    now = _api_children(group.pid)
    assert len(now) == 2 and victim not in now
    while _answered_by(f"{group.base}/healthz") not in now - before:  # the new one serves too
        assert time.monotonic() < deadline, "the replacement never answered"


def test_sigterm_to_the_parent_stops_every_process_of_the_group(group: DemoServer) -> None:
    """Runs last of the tests on `group`, which it stops."""
    owned = {group.pid, *_children(group.pid)}
    assert len(owned) == 4  # the parent, its embedded redis-server, two API processes
    os.kill(group.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in owned):
        assert time.monotonic() < deadline, "a process of the group outlived SIGTERM"
        time.sleep(0.1)


def _children(parent: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    return {int(pid) for pid in found.stdout.split()}


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie awaiting its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _start_group(tmp_path: Path, **settings: str) -> subprocess.Popen[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {"HOLDS_DATA_DIR": str(tmp_path / "data"), "HOLDS_LOG_LEVEL": "WARNING"}
    env |= {f"HOLDS_{name.upper()}": value for name, value in settings.items()}
    process = subprocess.Popen(
        [*GROUP, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return process


def _stop_for_good(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def test_children_dying_too_often_take_the_group_down_loudly(
    tmp_path: Path, redis_url: str, sqlite_url: str
) -> None:
    process = _start_group(tmp_path, redis_url=redis_url, database_url=sqlite_url)
    killed: set[int] = set()
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None:
            assert time.monotonic() < deadline, "the group kept restarting its children"
            for pid in _api_children(process.pid) - killed:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.02)
        output = process.communicate(timeout=30)[0]
    finally:
        _stop_for_good(process)
    assert process.returncode == 1
    assert "too many deaths" in output
    assert output.count("starting another") == 5  # five restarts; the sixth death ends it
    time.sleep(0.2)
    assert _session(process.pid) == []
