"""`holds serve --demo` as a new user runs it: a real process with its own embedded redis-server."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import aiohttp

from tests.catalog import AMARA, CLINIC, INITIAL, PATIENT
from tests.servers import demo_server


async def test_seed_curl_flow_works_against_holds_serve_demo(tmp_path: Path) -> None:
    hold = {
        "appointment_type_id": INITIAL,
        "clinician_id": AMARA,
        "date": "2030-01-21",
        "start_time": "09:00",
        "location_id": CLINIC,
    }
    with demo_server(tmp_path) as server:
        headers = {"Authorization": f"Bearer {server.key}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(f"{server.api}/holds", json=hold) as response:
                assert response.status == 201
                hold_id = (await response.json())["data"]["id"]
            confirm = {"patient_id": PATIENT}
            async with http.post(f"{server.api}/holds/{hold_id}/confirm", json=confirm) as response:
                assert response.status == 201
                assert (await response.json())["data"]["start_time"] == "2030-01-21T09:00:00Z"


def test_embedded_redis_stops_with_the_server(tmp_path: Path) -> None:
    with demo_server(tmp_path) as server:
        children = _child_pids(server.pid)
        assert children, "holds serve should run an embedded redis-server"
    time.sleep(0.2)
    assert not any(_alive(pid) for pid in children)


def _child_pids(parent: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie awaiting its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] not in ("Z", "X")
    except FileNotFoundError:
        return False
