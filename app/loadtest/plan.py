"""What a load test does: the flow mix, and the slots it books, read from the API under test."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

OUTCOMES = ("confirm", "release", "abandon")
HOT_SLOTS = 3  # contended flows all aim at these few slots


class TargetError(Exception):
    """The service under test cannot be read: unreachable, or it refuses the key."""


@dataclass(frozen=True)
class Mix:
    """How flows end once they hold a slot; the shares add up to 1."""

    confirm: float = 0.5
    release: float = 0.3
    abandon: float = 0.2

    @classmethod
    def parse(cls, text: str) -> Mix:
        """`confirm=0.5,release=0.3,abandon=0.2` (shares are normalised)."""
        shares = dict.fromkeys(OUTCOMES, 0.0)
        for part in text.split(","):
            name, _, value = part.partition("=")
            if name.strip() not in shares:
                raise ValueError(f"unknown outcome {name!r}; use {', '.join(OUTCOMES)}")
            shares[name.strip()] = float(value)
        total = sum(shares.values())
        if total <= 0 or min(shares.values()) < 0:
            raise ValueError("the shares must be non-negative and not all zero")
        return cls(**{name: share / total for name, share in shares.items()})


@dataclass(frozen=True)
class Slot:
    appointment_type_id: str
    clinician_id: str
    location_id: str | None
    start_time: str  # UTC, as the API returns it
    end_time: str
    local_date: str
    local_time: str


@dataclass(frozen=True)
class Diary:
    """One clinician's offer of one appointment type: what a flow asks availability of."""

    appointment_type_id: str
    clinician_id: str


@dataclass
class Target:
    """The service under test and what can be booked there."""

    url: str
    keys: list[str]
    timezone: str = "Europe/London"
    diaries: list[Diary] = field(default_factory=list)
    days: list[str] = field(default_factory=list)  # the organisation's dates to book on
    hot_slots: list[Slot] = field(default_factory=list)  # what contended flows aim at
    locations: dict[str, str] = field(default_factory=dict)  # id -> timezone
    patient_id: str = ""

    def headers(self, n: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[n % len(self.keys)]}"}

    def slot(self, kind_id: str, offered: dict[str, Any]) -> Slot:
        """An availability answer's slot, with the local date and time `POST /holds` takes."""
        return _slot(kind_id, offered, self.locations, self.timezone)


async def discover(http: aiohttp.ClientSession, target: Target, days: int) -> None:
    """Fill `target` with the diaries of the next `days` days, the first few offered slots
    (the hot ones) and a patient to book for."""
    kinds = await _get(http, target, "/appointment-types?limit=100")
    target.locations = {
        loc["id"]: loc["timezone"] for loc in await _get(http, target, "/locations?limit=100")
    }
    first = date.today() + timedelta(days=1)
    target.days = [str(first + timedelta(days=n)) for n in range(days)]
    target.diaries = [
        Diary(kind["id"], clinician)
        for kind in kinds
        if kind["is_active"] and kind["allow_online_booking"]
        for clinician in kind["clinician_ids"]
    ]
    target.hot_slots = await _first_offered(http, target)
    target.patient_id = await _patient(http, target)


async def _first_offered(http: aiohttp.ClientSession, target: Target) -> list[Slot]:
    """The first slots of the first diary that offers any in the first 31 days."""
    last = target.days[min(len(target.days), 31) - 1]
    for diary in target.diaries:
        query = (
            f"/availability?appointment_type_id={diary.appointment_type_id}"
            f"&clinician_id={diary.clinician_id}&start_date={target.days[0]}&end_date={last}"
        )
        offered = await _get(http, target, query)
        if offered:
            return [target.slot(diary.appointment_type_id, slot) for slot in offered[:HOT_SLOTS]]
    return []


async def _patient(http: aiohttp.ClientSession, target: Target) -> str:
    patients = await _get(http, target, "/patients?limit=1")
    if patients:
        return str(patients[0]["id"])
    body = {"first_name": "Load", "last_name": "Test", "date_of_birth": "1990-01-01"}
    async with http.post(f"{target.url}/patients", json=body, headers=target.headers(0)) as r:
        if r.status != 201:
            raise TargetError(f"POST /patients answered {r.status}: no patient to book for")
        return str((await r.json())["data"]["id"])


def _slot(kind_id: str, slot: dict[str, Any], locations: dict[str, str], zone: str) -> Slot:
    tz = ZoneInfo(locations.get(slot["location_id"] or "", zone))
    local = datetime.strptime(slot["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    local = local.astimezone(tz)
    return Slot(
        appointment_type_id=kind_id,
        clinician_id=slot["clinician_id"],
        location_id=slot["location_id"],
        start_time=slot["start_time"],
        end_time=slot["end_time"],
        local_date=local.strftime("%Y-%m-%d"),
        local_time=local.strftime("%H:%M"),
    )


async def _get(http: aiohttp.ClientSession, target: Target, path: str) -> list[dict[str, Any]]:
    async with http.get(f"{target.url}{path}", headers=target.headers(0)) as response:
        body = await response.json(content_type=None)
        if response.status != 200:
            message = body.get("error", {}).get("message", "") if isinstance(body, dict) else ""
            raise TargetError(f"GET {path} answered {response.status}: {message}")
        data: list[dict[str, Any]] = body["data"]
        return data
