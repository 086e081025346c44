"""The test catalog: the demo catalog plus entries for buffers, places, DST and tenancy."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

ORG = "org_5f0c1d2e-e89b-12d3-a456-426614170000"
OTHER_ORG = "org_00000000-0000-4000-8000-000000000001"
CLINIC = "loc_012b3456-e89b-12d3-a456-426614174333"
ANNEXE = "loc_00000000-0000-4000-8000-00000000a001"
AMARA = "cli_789a0123-e89b-12d3-a456-426614174222"
TOM = "cli_3c4d5e6f-e89b-12d3-a456-426614174666"
NIGHT = "cli_00000000-0000-4000-8000-0000000000c1"
INITIAL = "type_456e7890-e89b-12d3-a456-426614174111"  # 30 min, grid 30, no buffers, 2 h notice
FOLLOW_UP = "type_9b1d2c3e-e89b-12d3-a456-426614174555"  # 20 min, grid 15, 5 min after
HYDRO = "type_00000000-0000-4000-8000-0000000000d1"  # 30 min, grid 30, 15 min after
RETIRED = "type_00000000-0000-4000-8000-0000000000d2"  # inactive
# Group sessions: the demo's class (60 min, grid 60, 15 min after, 6 seats, 2 h notice) and a
# workshop (30 min, grid 30, no buffers, 2 seats).
BACK_CARE_CLASS = "type_6d7e8f90-e89b-12d3-a456-426614174777"
WORKSHOP = "type_00000000-0000-4000-8000-0000000000d3"
PATIENT = "pat_789a0123-e89b-12d3-a456-426614174444"
OTHER_PATIENT = "pat_00000000-0000-4000-8000-0000000000e1"
OTHER_CLINICIAN = "cli_00000000-0000-4000-8000-0000000000f1"

# Mondays: 2030-07-01 is in British Summer Time, 2030-01-07 in GMT.
SUMMER_MONDAY = "2030-07-01"
WINTER_MONDAY = "2030-01-07"
# Clocks go forward at 01:00 on Sunday 2030-03-31 in Europe/London.
DST_SUNDAY = "2030-03-31"
# Thursdays, when Amara works both at the annexe and remotely at the same hours.
THURSDAY = "2030-07-04"
# Amara is away on this Monday.
AWAY_MONDAY = "2030-07-08"


def _kind(kind_id: str, name: str, **overrides: Any) -> dict[str, Any]:
    base = {
        "id": kind_id,
        "name": name,
        "duration_minutes": 30,
        "slot_interval_minutes": 30,
        "buffer_before_minutes": 0,
        "buffer_after_minutes": 0,
        "booking_notice_hours": 0,
        "clinician_ids": [AMARA],
    }
    return base | overrides


def demo_plus_test_entries() -> dict[str, Any]:
    demo = json.loads(resources.files("app.catalog").joinpath("demo.json").read_text())
    catalog = copy.deepcopy(demo)
    org = catalog["organizations"][0]
    org["locations"].append(
        {"id": ANNEXE, "name": "Riverside Annexe", "timezone": "Europe/London", "is_active": True}
    )
    amara = org["clinicians"][0]
    amara["schedule"] += [
        {"weekday": "thursday", "start": "09:00", "end": "12:00", "location_id": ANNEXE},
        {"weekday": "thursday", "start": "09:00", "end": "12:00", "location_id": None},
    ]
    amara["time_off"].append(
        {"start": "2030-07-08T00:00:00Z", "end": "2030-07-09T00:00:00Z", "reason": "Course"}
    )
    org["clinicians"].append(
        {
            "id": NIGHT,
            "first_name": "Nia",
            "last_name": "Night",
            "schedule": [
                {"weekday": "sunday", "start": "00:00", "end": "04:00", "location_id": CLINIC}
            ],
        }
    )
    org["appointment_types"] += [
        _kind(HYDRO, "Hydrotherapy", buffer_after_minutes=15, clinician_ids=[AMARA, NIGHT]),
        _kind(RETIRED, "Retired service", is_active=False),
        _kind(WORKSHOP, "Pilates workshop", max_group_size=2),
    ]
    catalog["organizations"].append(_other_org())
    return catalog


def _other_org() -> dict[str, Any]:
    return {
        "id": OTHER_ORG,
        "name": "Hillside Osteopathy",
        "timezone": "Europe/London",
        "clinicians": [
            {
                "id": OTHER_CLINICIAN,
                "first_name": "Otto",
                "last_name": "Other",
                "schedule": [{"weekday": "monday", "start": "09:00", "end": "17:00"}],
            }
        ],
        "patients": [
            {
                "id": OTHER_PATIENT,
                "first_name": "O",
                "last_name": "P",
                "date_of_birth": "1990-01-01",
            }
        ],
    }
