"""Small builders shared by the API tests."""

from __future__ import annotations

from typing import Any

from tests.catalog import AMARA, CLINIC, INITIAL, PATIENT, SUMMER_MONDAY


def hold_body(
    start_time: str = "09:00",
    *,
    date: str = SUMMER_MONDAY,
    kind: str = INITIAL,
    clinician: str = AMARA,
    location: str | None = CLINIC,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appointment_type_id": kind,
        "clinician_id": clinician,
        "date": date,
        "start_time": start_time,
    }
    if location is not None:
        body["location_id"] = location
    return body


def confirm_body(patient: str = PATIENT) -> dict[str, Any]:
    return {
        "patient_id": patient,
        "attendee_name": "Sarah Johnson",
        "attendee_email": "sarah@example.com",
        "attendee_phone": "+44 7700 900123",
        "notes": "First visit",
    }
