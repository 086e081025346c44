"""Holds and appointments as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from app.domain.slots import Interval


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
    # Only on the hold POST /holds just created: the record keeps nothing but its hash.
    client_secret: str | None = field(default=None, repr=False)  # kept out of logs


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
    occupied: Interval
    version: int = 1  # bumped by every change, so SQL can tell newer from older
    persisted_version: int = 0  # the version SQL is known to hold
    cancel_reason: str | None = None
    conflict_with: str | None = None  # SQL already had an overlapping appointment
    session_key: str | None = None  # the group session whose seat this is; None: exclusive

    @property
    def is_remote(self) -> bool:
        return self.location_id is None

    @property
    def persisted(self) -> bool:
        return self.persisted_version >= self.version
