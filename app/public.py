"""What the API returns: one pydantic model per resource, built from domain objects."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from app.db.models import Patient
from app.domain.availability import AvailableSlot
from app.domain.catalog import AppointmentType, Clinician, Location, OrgCatalog
from app.domain.records import Appointment, Hold
from app.fields import UtcTimestamp


class HoldPublic(BaseModel):
    id: str
    appointment_type_id: str
    clinician_id: str
    location_id: str | None
    start_time: UtcTimestamp
    end_time: UtcTimestamp
    expires_at: UtcTimestamp
    status: str
    created_at: UtcTimestamp
    appointment_id: str | None

    @classmethod
    def of(cls, hold: Hold) -> HoldPublic:
        return cls(
            id=hold.id,
            appointment_type_id=hold.appointment_type_id,
            clinician_id=hold.clinician_id,
            location_id=hold.location_id,
            start_time=hold.start_time,
            end_time=hold.end_time,
            expires_at=hold.expires_at,
            status=hold.status,
            created_at=hold.created_at,
            appointment_id=hold.appointment_id,
        )


class AppointmentPublic(BaseModel):
    id: str
    patient_id: str
    clinician_profile_id: str
    clinician_id: str
    appointment_type_id: str
    location_id: str | None
    title: str
    is_remote: bool
    start_time: UtcTimestamp
    end_time: UtcTimestamp
    status: str
    attendee_name: str | None
    attendee_email: str | None
    attendee_phone: str | None
    notes: str | None
    created_at: UtcTimestamp
    updated_at: UtcTimestamp
    cancellation_reason: str | None
    # Whether SQL has this appointment's latest change yet (it is safe in Redis either way).
    persisted: bool
    # Set when SQL already held an overlapping appointment of the clinician: needs a person.
    conflicting_appointment_id: str | None

    @classmethod
    def of(cls, appointment: Appointment, catalog: OrgCatalog) -> AppointmentPublic:
        booking = appointment.booking
        return cls(
            id=appointment.id,
            patient_id=booking.patient_id,
            clinician_profile_id=appointment.clinician_id,
            clinician_id=appointment.clinician_id,
            appointment_type_id=appointment.appointment_type_id,
            location_id=appointment.location_id,
            title=_title(appointment, catalog),
            is_remote=appointment.is_remote,
            start_time=appointment.start_time,
            end_time=appointment.end_time,
            status=appointment.status,
            attendee_name=booking.attendee_name,
            attendee_email=booking.attendee_email,
            attendee_phone=booking.attendee_phone,
            notes=booking.notes,
            created_at=appointment.created_at,
            updated_at=appointment.updated_at,
            cancellation_reason=appointment.cancel_reason,
            persisted=appointment.persisted,
            conflicting_appointment_id=appointment.conflict_with,
        )


def _title(appointment: Appointment, catalog: OrgCatalog) -> str:
    """ "Initial assessment with Dr Amara Okafor": what a diary shows for the booking."""
    kind = catalog.appointment_types.get(appointment.appointment_type_id)
    clinician = catalog.clinicians.get(appointment.clinician_id)
    name = kind.name if kind else "Appointment"
    return f"{name} with {clinician.display_name}" if clinician else name


class SlotPublic(BaseModel):
    start_time: UtcTimestamp
    end_time: UtcTimestamp
    clinician_id: str
    clinician_name: str
    location_id: str | None
    location_name: str | None
    is_remote: bool

    @classmethod
    def of(cls, available: AvailableSlot) -> SlotPublic:
        return cls(
            start_time=available.slot.start,
            end_time=available.slot.end,
            clinician_id=available.clinician.id,
            clinician_name=available.clinician.display_name,
            location_id=available.slot.location_id,
            location_name=available.location.name if available.location else None,
            is_remote=available.slot.is_remote,
        )


class LocationPublic(BaseModel):
    id: str
    name: str
    address_line_1: str | None
    city: str | None
    postcode: str | None
    country: str | None
    timezone: str
    is_active: bool

    @classmethod
    def of(cls, location: Location) -> LocationPublic:
        return cls(
            id=location.id,
            name=location.name,
            address_line_1=location.address_line_1,
            city=location.city,
            postcode=location.postcode,
            country=location.country,
            timezone=location.timezone,
            is_active=location.is_active,
        )


class ClinicianPublic(BaseModel):
    id: str
    name: str
    first_name: str
    last_name: str
    title: str | None
    role: str | None
    is_active: bool

    @classmethod
    def of(cls, clinician: Clinician) -> ClinicianPublic:
        return cls(
            id=clinician.id,
            name=clinician.display_name,
            first_name=clinician.first_name,
            last_name=clinician.last_name,
            title=clinician.title,
            role=clinician.role,
            is_active=clinician.is_active,
        )


class AppointmentTypePublic(BaseModel):
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
    clinician_ids: list[str]

    @classmethod
    def of(cls, kind: AppointmentType) -> AppointmentTypePublic:
        return cls(
            id=kind.id,
            name=kind.name,
            description=kind.description,
            duration_minutes=kind.duration_minutes,
            slot_interval_minutes=kind.slot_interval_minutes,
            buffer_before_minutes=kind.buffer_before_minutes,
            buffer_after_minutes=kind.buffer_after_minutes,
            booking_notice_hours=kind.booking_notice_hours,
            max_group_size=kind.max_group_size,
            allow_online_booking=kind.allow_online_booking,
            is_active=kind.is_active,
            price=kind.price,
            currency=kind.currency,
            clinician_ids=list(kind.clinician_ids),
        )


class PatientPublic(BaseModel):
    id: str
    first_name: str
    last_name: str
    date_of_birth: date
    email: str | None
    phone: str | None
    created_at: UtcTimestamp
    updated_at: UtcTimestamp

    @classmethod
    def of(cls, patient: Patient) -> PatientPublic:
        return cls(
            id=patient.id,
            first_name=patient.first_name,
            last_name=patient.last_name,
            date_of_birth=patient.date_of_birth,
            email=patient.email,
            phone=patient.phone,
            created_at=patient.created_at,
            updated_at=patient.updated_at,
        )
