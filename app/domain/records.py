"""Holds and appointments as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    org_id: str
    api_key_id: str
    appointment_type_id: str
    clinician_id: str
    location_id: str | None
    start_time: datetime
    end_time: datetime
    expires_at: datetime
    status: str  # active, confirmed, released or expired
    created_at: datetime
    appointment_id: str | None


@dataclass(frozen=True, slots=True)
class BookingDetails:
    """What the patient adds when a hold is confirmed."""

    patient_id: str
    attendee_name: str | None = None
    attendee_email: str | None = None
    attendee_phone: str | None = None
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    org_id: str
    hold_id: str
    appointment_type_id: str
    clinician_id: str
    location_id: str | None
    start_time: datetime
    end_time: datetime
    status: str  # confirmed or cancelled
    booking: BookingDetails
    created_at: datetime
    updated_at: datetime

    @property
    def is_remote(self) -> bool:
        return self.location_id is None
