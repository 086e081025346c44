"""`holds catalog generate`: a catalog sized for load, so a load test books rather than collides.

Ids are derived from the organisation and a counter (UUID 5), so generating the same shape
again gives the same ids and `holds catalog load` reports the entries as unchanged.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Shape:
    """What to generate: `clinicians` who each work `days` days a week from `start` to `end`,
    all offering one appointment type of `duration` minutes at one location."""

    org_id: str
    clinicians: int
    days: int = 7
    start: str = "08:00"
    end: str = "20:00"
    duration: int = 15
    timezone: str = "Europe/London"

    def problem(self) -> str | None:
        """What is wrong with the shape, in the generator's flag names; None when nothing."""
        if not (1 <= self.days <= 7 and self.clinicians >= 1 and self.duration >= 1):
            return "need --clinicians >= 1, --days 1-7, --duration >= 1"
        if not (_CLOCK.fullmatch(self.start) and _CLOCK.fullmatch(self.end)):
            return "--hours must be HH:MM-HH:MM, e.g. 08:00-20:00"
        if self.slots_per_week() <= 0:
            return "--hours must hold at least one visit of --duration, the start before the end"
        return None

    def slots_per_week(self) -> int:
        opening = _minutes(self.end) - _minutes(self.start)
        return self.clinicians * self.days * max(0, opening // self.duration)


def synthetic_catalog(shape: Shape) -> dict[str, Any]:
    """The catalog file's content (the format of `holds catalog load`)."""
    location = _id(shape, "loc", 0)
    clinicians = [_clinician(shape, n, location) for n in range(shape.clinicians)]
    kind = {
        "id": _id(shape, "type", 0),
        "name": f"Load test visit ({shape.duration} min)",
        "duration_minutes": shape.duration,
        "slot_interval_minutes": shape.duration,
        "clinician_ids": [c["id"] for c in clinicians],
    }
    organisation = {
        "id": shape.org_id,
        "name": "Load test clinic",
        "timezone": shape.timezone,
        "locations": [{"id": location, "name": "Load test site", "timezone": shape.timezone}],
        "clinicians": clinicians,
        "appointment_types": [kind],
        "patients": [
            {
                "id": _id(shape, "pat", 0),
                "first_name": "Load",
                "last_name": "Test",
                "date_of_birth": "1990-01-01",
            }
        ],
    }
    return {"organizations": [organisation]}


def _clinician(shape: Shape, n: int, location: str) -> dict[str, Any]:
    schedule = [
        {"weekday": day, "start": shape.start, "end": shape.end, "location_id": location}
        for day in WEEKDAYS[: shape.days]
    ]
    return {
        "id": _id(shape, "cli", n),
        "first_name": "Clinician",
        "last_name": f"{n + 1:05d}",
        "schedule": schedule,
    }


def _id(shape: Shape, prefix: str, n: int) -> str:
    return f"{prefix}_{uuid.uuid5(uuid.NAMESPACE_URL, f'holds-load/{shape.org_id}/{prefix}/{n}')}"


def _minutes(clock: str) -> int:
    moment = datetime.strptime(clock, "%H:%M")
    return int(timedelta(hours=moment.hour, minutes=moment.minute).total_seconds() // 60)
