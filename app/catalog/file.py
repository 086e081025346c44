"""The catalog file format (see catalog.example.json): strict, so mistakes surface at load time."""

from __future__ import annotations

from datetime import UTC
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.fields import (
    ClinicianId,
    LocationId,
    NonEmptyStr,
    OrgId,
    PatientId,
    StrictDate,
    StrictTime,
    TimezoneName,
    TypeId,
    iso_utc,
)

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
Minutes = int


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class LocationEntry(_Entry):
    id: LocationId
    name: NonEmptyStr
    timezone: TimezoneName
    address_line_1: str | None = None
    city: str | None = None
    postcode: str | None = None
    country: str | None = Field(default=None, min_length=2, max_length=2)
    is_active: bool = True


class ScheduleEntry(_Entry):
    weekday: Weekday
    start: StrictTime
    end: StrictTime
    location_id: LocationId | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> ScheduleEntry:
        if self.end <= self.start:
            raise ValueError("end must be after start on the same day")
        return self


class TimeOffEntry(_Entry):
    start: AwareDatetime
    end: AwareDatetime
    reason: str | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> TimeOffEntry:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ClinicianEntry(_Entry):
    id: ClinicianId
    first_name: NonEmptyStr
    last_name: NonEmptyStr
    title: str | None = None
    role: str | None = None
    is_active: bool = True
    schedule: list[ScheduleEntry] = []
    time_off: list[TimeOffEntry] = []


class AppointmentTypeEntry(_Entry):
    id: TypeId
    name: NonEmptyStr
    description: str | None = None
    duration_minutes: Minutes = Field(ge=1, le=1440)
    slot_interval_minutes: Minutes | None = Field(default=None, ge=1, le=1440)
    buffer_before_minutes: Minutes = Field(default=0, ge=0, le=1440)
    buffer_after_minutes: Minutes = Field(default=0, ge=0, le=1440)
    booking_notice_hours: int = Field(default=0, ge=0, le=24 * 365)
    max_group_size: int = Field(default=1, ge=1)
    allow_online_booking: bool = True
    is_active: bool = True
    price: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    clinician_ids: list[ClinicianId] = []


class PatientEntry(_Entry):
    id: PatientId
    first_name: NonEmptyStr
    last_name: NonEmptyStr
    date_of_birth: StrictDate
    email: str | None = None
    phone: str | None = None


class OrganizationEntry(_Entry):
    id: OrgId
    name: NonEmptyStr
    timezone: TimezoneName
    locations: list[LocationEntry] = []
    clinicians: list[ClinicianEntry] = []
    appointment_types: list[AppointmentTypeEntry] = []
    patients: list[PatientEntry] = []


class CatalogFile(_Entry):
    organizations: list[OrganizationEntry]


def time_off_json(entry: TimeOffEntry) -> dict[str, str | None]:
    """How a time-off entry is stored: UTC instants, so readers need no offsets."""
    start, end = entry.start.astimezone(UTC), entry.end.astimezone(UTC)
    return {"start": iso_utc(start), "end": iso_utc(end), "reason": entry.reason}
