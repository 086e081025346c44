"""What the API returns: one pydantic model per resource, built from domain objects."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from app.domain.availability import AvailableSlot
from app.domain.catalog import Clinician, OrgCatalog
from app.domain.records import Appointment, Hold
from app.fields import JsonSchemaExtra, UtcTimestamp, id_schema

# Documentation only: what the service renders always has these shapes.
HoldId = Annotated[str, id_schema("hold")]
AppointmentId = Annotated[str, id_schema("apt")]
TypeId = Annotated[str, id_schema("type")]
ClinicianId = Annotated[str, id_schema("cli")]
LocationId = Annotated[str, id_schema("loc")]
PatientId = Annotated[str, id_schema("pat")]
HoldStatus = Annotated[str, JsonSchemaExtra(enum=["active", "confirmed", "released", "expired"])]
AppointmentStatus = Annotated[str, JsonSchemaExtra(enum=["confirmed", "cancelled"])]


class _FromDomain(BaseModel):
    """Built straight from a domain object's attributes of the same names."""

    model_config = ConfigDict(from_attributes=True)


class HoldPublic(_FromDomain):
    """A slot kept for one caller until `expires_at`, then confirmed, released or expired."""

    id: HoldId
    appointment_type_id: TypeId
    clinician_id: ClinicianId
    location_id: Annotated[LocationId | None, Field(description="Null for a remote session.")]
    start_time: UtcTimestamp
    end_time: UtcTimestamp
    expires_at: Annotated[UtcTimestamp, Field(description="When an active hold expires.")]
    status: Annotated[HoldStatus, Field(description="`expired` as soon as `expires_at` passes.")]
    created_at: UtcTimestamp
    appointment_id: Annotated[
        AppointmentId | None, Field(description="The appointment, once confirmed.")
    ]


class HoldCreatedPublic(HoldPublic):
    """POST /holds (201): the hold, and the secret a browser may use for its status stream."""

    client_secret: Annotated[
        str,
        Field(min_length=32, description="Grants reading this hold's status stream, nothing "
              "else; shown only in this response."),
    ]  # fmt: skip


# orjson renders a UTC datetime as `iso_utc` does: second precision, Z.
TIMESTAMP_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS | orjson.OPT_NAIVE_UTC


def hold_fields(hold: Hold) -> dict[str, Any]:
    """What `HoldPublic` (with a client_secret, `HoldCreatedPublic`) renders for `hold`, for
    orjson with `TIMESTAMP_OPTIONS`, built without validating: a hold from the store is valid,
    and pydantic's round trip was the larger part of a hold endpoint's own work. The models
    still define and document the shape; tests/test_public_json.py holds the two together."""
    fields: dict[str, Any] = {
        "id": hold.id,
        "appointment_type_id": hold.appointment_type_id,
        "clinician_id": hold.clinician_id,
        "location_id": hold.location_id,
        "start_time": hold.start_time,
        "end_time": hold.end_time,
        "expires_at": hold.expires_at,
        "status": hold.status,
        "created_at": hold.created_at,
        "appointment_id": hold.appointment_id,
    }
    if hold.client_secret is not None:
        fields["client_secret"] = hold.client_secret
    return fields


class AppointmentPublic(BaseModel):
    """A booking: made by confirming a hold, readable at once, cancellable."""

    id: AppointmentId
    patient_id: PatientId
    clinician_profile_id: Annotated[ClinicianId, Field(description="Same as `clinician_id`.")]
    clinician_id: ClinicianId
    appointment_type_id: TypeId
    location_id: Annotated[LocationId | None, Field(description="Null for a remote session.")]
    title: str
    is_remote: bool
    start_time: UtcTimestamp
    end_time: UtcTimestamp
    status: AppointmentStatus
    attendee_name: str | None
    attendee_email: str | None
    attendee_phone: str | None
    notes: str | None
    created_at: UtcTimestamp
    updated_at: UtcTimestamp
    cancellation_reason: str | None
    # Whether SQL has this appointment's latest change yet (it is safe in Redis either way).
    persisted: Annotated[bool, Field(description="Whether the database has its latest change.")]
    # Set when SQL already held an overlapping appointment of the clinician: needs a person.
    conflicting_appointment_id: AppointmentId | None

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
    """A slot that can be held now."""

    start_time: UtcTimestamp
    end_time: UtcTimestamp
    clinician_id: ClinicianId
    clinician_name: str
    location_id: Annotated[LocationId | None, Field(description="Null for a remote session.")]
    location_name: str | None
    is_remote: bool
    seats_available: Annotated[
        int,
        Field(ge=1, description="Holds the slot still takes: 1 for an ordinary free slot, "
              "the free seats of a group session."),
    ]  # fmt: skip

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
            seats_available=available.seats_available,
        )


class LocationPublic(_FromDomain):
    id: LocationId
    name: str
    address_line_1: str | None
    city: str | None
    postcode: str | None
    country: str | None
    timezone: str
    is_active: bool


class ClinicianPublic(BaseModel):
    id: ClinicianId
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


class AppointmentTypePublic(_FromDomain):
    id: TypeId
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
    clinician_ids: list[ClinicianId]


class PatientPublic(_FromDomain):
    id: PatientId
    first_name: str
    last_name: str
    date_of_birth: date
    email: str | None
    phone: str | None
    created_at: UtcTimestamp
    updated_at: UtcTimestamp


class WebhookEndpointPublic(_FromDomain):
    id: str
    url: str
    events: list[str]
    description: str | None
    created_at: UtcTimestamp
    # Set when deliveries kept failing for HOLDS_WEBHOOK_DISABLE_AFTER_SECONDS: nothing more is
    # sent to it; delete it and create it again once the receiver works.
    disabled_at: UtcTimestamp | None
    disabled_reason: str | None


class WebhookEndpointCreated(WebhookEndpointPublic):
    """The one response that shows the signing secret."""

    secret: str


class EventPublic(_FromDomain):
    """An event exactly as it was delivered (its body)."""

    id: str
    type: str
    created_at: UtcTimestamp
    data: dict[str, Any]
