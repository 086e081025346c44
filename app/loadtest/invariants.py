"""After the run, through the API: every 201 is readable, no clinician is double-booked, and
no group session has more seats booked than it offers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from app.loadtest.plan import Target


async def violations(
    http: aiohttp.ClientSession, target: Target, confirmed_ids: list[str]
) -> list[str]:
    """Every way the run broke the service's promises; empty when it kept them all."""
    rules = await _rules(http, target)
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
    return problems + overlaps(appointments, rules)


@dataclass(frozen=True, slots=True)
class TypeRules:
    """What the check needs of an appointment type."""

    buffer_before: int
    buffer_after: int
    seats: int  # max_group_size: 1 for an exclusive type


_UNKNOWN = TypeRules(0, 0, 1)


def overlaps(appointments: list[dict[str, Any]], rules: dict[str, TypeRules]) -> list[str]:
    """Confirmed appointments of one clinician whose occupied time overlaps, and group sessions
    with more seats booked than they have. The seats of one session (same clinician, type,
    place and start) share its time; everything else must not overlap."""
    sessions: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for appointment in appointments:
        if appointment["status"] == "confirmed":
            kind = rules.get(appointment["appointment_type_id"], _UNKNOWN)
            sessions.setdefault(_session(appointment, kind), []).append(appointment)
    problems = []
    occupied: dict[str, list[tuple[datetime, datetime, str]]] = {}
    for (clinician, *_), seats in sessions.items():
        first = seats[0]
        kind = rules.get(first["appointment_type_id"], _UNKNOWN)
        if len(seats) > kind.seats:
            problems.append(f"session of {first['id']}: {len(seats)} seats of {kind.seats} booked")
        start = _moment(first["start_time"]) - timedelta(minutes=kind.buffer_before)
        end = _moment(first["end_time"]) + timedelta(minutes=kind.buffer_after)
        occupied.setdefault(clinician, []).append((start, end, first["id"]))
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


def _session(appointment: dict[str, Any], kind: TypeRules) -> tuple[str, ...]:
    """Appointments with the same key share one occupied interval: a group session's seats."""
    clinician = appointment["clinician_profile_id"]
    if kind.seats == 1:
        return (clinician, appointment["id"])
    place = appointment["location_id"] or "remote"
    return (clinician, appointment["appointment_type_id"], place, appointment["start_time"])


async def _rules(http: aiohttp.ClientSession, target: Target) -> dict[str, TypeRules]:
    async with http.get(
        f"{target.url}/appointment-types?limit=100", headers=target.headers(0)
    ) as response:
        kinds = (await response.json())["data"]
    return {
        k["id"]: TypeRules(
            k["buffer_before_minutes"], k["buffer_after_minutes"], k["max_group_size"]
        )
        for k in kinds
    }


def _moment(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
