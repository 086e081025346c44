"""`holds loadtest` against a live server: report, JSON, plot, and the invariant checks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.loadtest import invariants
from app.loadtest.plan import Mix, Target
from tests.servers import DemoServer, demo_server

LOAD_SETTINGS = {"rate_limit_per_minute": "1000000", "max_active_holds_per_key": "100000"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("load"), **LOAD_SETTINGS) as server:
        yield server


def test_loadtest_reports_and_checks_invariants(live_server: DemoServer, tmp_path: Path) -> None:
    report, plot = tmp_path / "report.json", tmp_path / "plot.html"
    command = [
        sys.executable, "-m", "app", "loadtest", "--url", live_server.api,
        "--key", live_server.key, "--rate", "20", "--duration", "3", "--contention", "0.5",
        "--json", str(report), "--plot", str(plot),
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert "invariants: held" in finished.stdout
    summary = json.loads(report.read_text())
    assert summary["invariant_violations"] == []
    holds = summary["endpoints"]["POST /holds"]
    assert holds["count"] == 60
    assert set(holds["statuses"]) <= {"201", "409"}
    assert 0 < holds["p50_ms"] <= holds["p95_ms"] <= holds["p99_ms"] <= holds["max_ms"]
    assert summary["appointments_booked"] == summary["endpoints"]["POST /holds/{id}/confirm"][
        "statuses"
    ].get("201", 0)
    assert "<svg" in plot.read_text()


async def test_an_unreadable_confirmed_appointment_is_a_violation(
    live_server: DemoServer,
) -> None:
    target = Target(url=live_server.api, keys=[live_server.key])
    async with aiohttp.ClientSession() as http:
        problems = await invariants.violations(
            http, target, ["apt_00000000-0000-4000-8000-000000000000"]
        )
    assert problems == ["appointment apt_00000000-0000-4000-8000-000000000000 from a 201 "
                        "confirm reads 404"]  # fmt: skip


def _appointment(apt_id: str, start: str, end: str, kind: str = "type_a") -> dict[str, Any]:
    return {
        "id": apt_id,
        "status": "confirmed",
        "appointment_type_id": kind,
        "clinician_profile_id": "cli_1",
        "location_id": "loc_1",
        "start_time": f"2030-01-07T{start}:00Z",
        "end_time": f"2030-01-07T{end}:00Z",
    }


def test_overlaps_are_found_beyond_neighbours_and_with_buffers() -> None:
    long_one = _appointment("apt_long", "09:00", "12:00")
    inside = _appointment("apt_inside", "09:30", "10:00")
    later = _appointment("apt_later", "11:00", "11:30")
    assert len(invariants.overlaps([long_one, inside, later], {})) == 2
    first = _appointment("apt_1", "09:00", "09:30", kind="buffered")
    second = _appointment("apt_2", "09:40", "10:00")
    assert invariants.overlaps([first, second], {}) == []
    buffered = {"buffered": invariants.TypeRules(0, 15, 1)}
    assert invariants.overlaps([first, second], buffered) == [
        "clinician cli_1: apt_1 and apt_2 overlap"
    ]


def test_seats_of_one_session_may_share_its_time_up_to_its_size() -> None:
    rules = {"class": invariants.TypeRules(0, 15, 2)}
    seats = [_appointment(f"apt_{n}", "09:00", "10:00", kind="class") for n in range(3)]
    assert invariants.overlaps(seats[:2], rules) == []
    assert invariants.overlaps(seats, rules) == ["session of apt_0: 3 seats of 2 booked"]
    in_the_buffer = _appointment("apt_after", "10:10", "10:30")
    assert invariants.overlaps([*seats[:2], in_the_buffer], rules) == [
        "clinician cli_1: apt_0 and apt_after overlap"
    ]
    other_start = _appointment("apt_other", "09:30", "10:30", kind="class")
    assert len(invariants.overlaps([seats[0], other_start], rules)) == 1


def test_mix_is_parsed_and_normalised() -> None:
    assert Mix.parse("confirm=2,release=1,abandon=1") == Mix(0.5, 0.25, 0.25)
    with pytest.raises(ValueError, match="unknown outcome"):
        Mix.parse("book=1")
