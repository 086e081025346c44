"""The benchmark's measuring tools measure the real thing: each `holds serve` variant still
serves the booking flow, and the PostgreSQL reference really inserts exclusion-checked rows."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest

from benchmarks import postgres_holds, wrk
from benchmarks.variant_server import REMOVALS
from tests.catalog import AMARA, CLINIC, INITIAL, PATIENT
from tests.conftest import POSTGRES_URL
from tests.servers import demo_server

HOLD = {
    "appointment_type_id": INITIAL,
    "clinician_id": AMARA,
    "date": "2030-01-21",
    "start_time": "09:00",
    "location_id": CLINIC,
}


async def test_holds_serve_without_every_speed_up_still_books(tmp_path: Path) -> None:
    without = ",".join(REMOVALS)
    launcher = [sys.executable, "-m", "benchmarks.variant_server", "--without", without, "--"]
    with demo_server(tmp_path, launcher) as server:
        headers = {"Authorization": f"Bearer {server.key}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(f"{server.api}/holds", json=HOLD) as response:
                assert response.status == 201
                hold_id = (await response.json())["data"]["id"]
            async with http.get(f"{server.api}/holds/{hold_id}") as response:
                assert response.status == 200
                assert (await response.json())["data"]["status"] == "active"
            async with http.post(f"{server.api}/holds", json=HOLD) as response:
                assert response.status == 409
            confirm = {"patient_id": PATIENT}
            async with http.post(f"{server.api}/holds/{hold_id}/confirm", json=confirm) as response:
                assert response.status == 201


@pytest.mark.skipif(not POSTGRES_URL, reason="HOLDS_TEST_POSTGRES_URL is not set")
@pytest.mark.skipif(shutil.which("pgbench") is None, reason="pgbench is not installed")
def test_postgres_reference_inserts_holds() -> None:
    inserts_per_second = postgres_holds.measure(POSTGRES_URL, seconds=1, clients=2)
    assert inserts_per_second > 0


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_names_a_free_slot_in_every_post_and_reads_real_holds(tmp_path: Path) -> None:
    """Every POST /holds of every run is a 201 (no slot asked for twice, in a run or across
    runs) and every GET /holds/{id} a 200: the figures are of the work, not of refusals."""
    args = argparse.Namespace(seconds=1, rounds=2, connections=8, levers="")
    runs = wrk.run(tmp_path, wrk.ensure_wrk(), args)
    assert set(runs) == {(s, m) for s in ("bare", "holds") for m in ("POST", "GET")}
    for (server, method), results in runs.items():
        for result in results:
            assert result.requests > 0
            expected = "201" if method == "POST" else "200"
            assert result.statuses == {expected: result.requests}, (server, method)
