"""The in-memory catalog of one organisation: what can be booked, with whom, where and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Location:
    id: str
    name: str
    timezone: str
    is_active: bool
    address_line_1: str | None = None
    city: str | None = None
    postcode: str | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class ScheduleBlock:
    """A weekly block of a clinician's time; `location_id` None means remote sessions."""

    weekday: int  # Monday is 0, as in `date.weekday()`
    start: time
    end: time
    location_id: str | None


@dataclass(frozen=True, slots=True)
class TimeOff:
    start: datetime
    end: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Clinician:
    id: str
    first_name: str
    last_name: str
    title: str | None
    role: str | None
    is_active: bool
    schedule: tuple[ScheduleBlock, ...] = ()
    time_off: tuple[TimeOff, ...] = ()

    @property
    def display_name(self) -> str:
        parts = [self.title, self.first_name, self.last_name]
        return " ".join(part for part in parts if part)


@dataclass(frozen=True, slots=True)
class AppointmentType:
    id: str
    name: str
    description: str | None
    duration_minutes: int
    slot_interval_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    booking_notice_hours: int
    max_group_size: int
    allow_online_booking: bool
    is_active: bool
    price: float | None
    currency: str | None
    clinician_ids: tuple[str, ...] = ()

    @property
    def bookable(self) -> bool:
        return self.is_active and self.allow_online_booking


@dataclass(frozen=True, slots=True)
class OrgCatalog:
    """Everything the API needs to decide whether a slot is offered, for one organisation."""

    org_id: str
    name: str
    timezone: str
    version: datetime | None = None  # when the catalog last changed
    locations: dict[str, Location] = field(default_factory=dict)
    clinicians: dict[str, Clinician] = field(default_factory=dict)
    appointment_types: dict[str, AppointmentType] = field(default_factory=dict)
    # What app/domain/slots.py has worked out from this catalog (it never changes: a new
    # version is a new OrgCatalog), kept with it so it lasts exactly as long.
    derived: dict[object, object] = field(default_factory=dict, compare=False, repr=False)

    def zone_for(self, location_id: str | None) -> ZoneInfo:
        """Wall-clock zone of a block: the location's, or the organisation's for remote."""
        if location_id is not None and location_id in self.locations:
            return ZoneInfo(self.locations[location_id].timezone)
        return ZoneInfo(self.timezone)
