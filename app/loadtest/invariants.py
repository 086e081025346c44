"""After the run, through the API: every 201 is readable, and no clinician is double-booked."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from app.loadtest.plan import Target


async def violations(
    http: aiohttp.ClientSession, target: Target, confirmed_ids: list[str]
) -> list[str]:
    """Every way the run broke the service's promises; empty when it kept them all."""
    buffers = await _buffers(http, target)
    limit = asyncio.Semaphore(20)

    async def fetch(appointment_id: str) -> tuple[str, int, dict[str, Any]]:
        async with (
            limit,
            http.get(
                f"{target.url}/appointments/{appointment_id}", headers=target.headers(0)
            ) as response,
        ):
            return appointment_id, response.status, await response.json(content_type=None)

    found = await asyncio.gather(*(fetch(a) for a in confirmed_ids))
    problems = [
        f"appointment {a} from a 201 confirm reads {status}"
        for a, status, _ in found
        if status != 200
    ]
    appointments = [body["data"] for _, status, body in found if status == 200]
    return problems + overlaps(appointments, buffers)


def overlaps(appointments: list[dict[str, Any]], buffers: dict[str, tuple[int, int]]) -> list[str]:
    """Pairs of confirmed appointments of one clinician whose occupied time overlaps."""
    occupied: dict[str, list[tuple[datetime, datetime, str]]] = {}
    for appointment in appointments:
        if appointment["status"] != "confirmed":
            continue
        before, after = buffers.get(appointment["appointment_type_id"], (0, 0))
        start = _moment(appointment["start_time"]) - timedelta(minutes=before)
        end = _moment(appointment["end_time"]) + timedelta(minutes=after)
        occupied.setdefault(appointment["clinician_profile_id"], []).append(
            (start, end, appointment["id"])
        )
    problems = []
    for clinician, intervals in occupied.items():
        intervals.sort()
        # Compare each interval with the one reaching furthest so far, not only its neighbour.
        reach_end, reach_id = intervals[0][1], intervals[0][2]
        for start, end, appointment_id in intervals[1:]:
            if start < reach_end:
                problems.append(f"clinician {clinician}: {reach_id} and {appointment_id} overlap")
            if end > reach_end:
                reach_end, reach_id = end, appointment_id
    return problems


async def _buffers(http: aiohttp.ClientSession, target: Target) -> dict[str, tuple[int, int]]:
    async with http.get(
        f"{target.url}/appointment-types?limit=100", headers=target.headers(0)
    ) as response:
        kinds = (await response.json())["data"]
    return {k["id"]: (k["buffer_before_minutes"], k["buffer_after_minutes"]) for k in kinds}


def _moment(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
