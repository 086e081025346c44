"""Request bodies and query strings, validated strictly (unknown fields are ignored)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.config import JsonDict

from app.events import TYPES as EVENT_TYPES
from app.events import EventType
from app.fields import (
    ClinicianId,
    ClinicianRef,
    LocationRef,
    NonEmptyStr,
    PastDateSchema,
    PatientId,
    PatientRef,
    StrictDate,
    StrictTime,
    TypeRef,
    text_schema,
)

OptionalText = Annotated[str, StringConstraints(max_length=2000)] | None
RequestDate = Annotated[StrictDate, Field(strict=False)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


# The demo catalog's (`holds serve --demo`), so that examples work as they are.
_EXAMPLE_HOLD: JsonDict = {
    "appointment_type_id": "type_456e7890-e89b-12d3-a456-426614174111",
    "clinician_id": "cli_789a0123-e89b-12d3-a456-426614174222",
    "date": "2030-01-21",
    "start_time": "09:00",
}
_EXAMPLE_PATIENT = "pat_789a0123-e89b-12d3-a456-426614174444"
_EXAMPLE_NEW_PATIENT: JsonDict = {
    "first_name": "Sarah",
    "last_name": "Jones",
    "date_of_birth": "1988-04-12",
}


class HoldCreate(_Body):
    """The slot to hold: one of those `GET /availability` offers."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_HOLD]})

    appointment_type_id: Annotated[TypeRef, Field(description="An appointment type.")]
    clinician_id: Annotated[ClinicianRef, Field(description="A clinician offering that type.")]
    date: Annotated[RequestDate, Field(description="The day, in the location's timezone.")]
    start_time: Annotated[
        StrictTime,
        Field(strict=False, description="Wall-clock start, 24-hour `HH:MM`, on the slot grid."),
    ]
    location_id: Annotated[
        LocationRef | None,
        Field(description="Omitted: the clinician's scheduled location at that time."),
    ] = None


class HoldConfirm(_Body):
    """Who the held slot is booked for."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"patient_id": _EXAMPLE_PATIENT}]})

    patient_id: Annotated[PatientRef, Field(description="A patient of the organisation.")]
    attendee_name: OptionalText = None
    attendee_email: OptionalText = None
    attendee_phone: OptionalText = None
    notes: OptionalText = None


class HoldExtend(_Body):
    """POST /holds/{id}/extend takes an empty body or `{}`."""


class Page(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    limit: int = Field(default=20, ge=1, le=100, description="Items per page.")
    # Bounded so that it fits every database's integer.
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="Items to skip.")


class AvailabilityQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    appointment_type_id: TypeRef
    start_date: Annotated[RequestDate, Field(description="First day, organisation timezone.")]
    end_date: Annotated[
        RequestDate, Field(description="Last day (inclusive); at most 31 days from the first.")
    ]
    clinician_id: ClinicianRef | None = None
    location_id: LocationRef | None = None
    is_remote: bool | None = None

    @field_validator("is_remote", mode="before")
    @classmethod
    def _boolean_word(cls, value: object) -> object:
        if isinstance(value, str):
            if value not in ("true", "false"):
                raise ValueError("must be true or false")
            return value == "true"
        return value


class AppointmentQuery(Page):
    # Filters: an id of the wrong shape is 400, a well-formed one that names nothing matches
    # nothing.
    clinician_id: ClinicianId | None = None
    patient_id: PatientId | None = None
    status: Literal["confirmed", "cancelled"] | None = None
    start_date: Annotated[RequestDate | None, Field(description="From this day (UTC).")] = None
    end_date: Annotated[RequestDate | None, Field(description="To this day (UTC), inclusive.")] = (
        None
    )


class AppointmentCancel(_Body):
    reason: OptionalText = None


class WebhookEndpointCreate(_Body):
    url: Annotated[
        NonEmptyStr,
        Field(max_length=2000, pattern=r"^https?://", description="Where events are POSTed: "
              "http or https, whose host is not (and does not resolve to) a private address."),
    ]  # fmt: skip
    # Every type when left out; an unknown type is refused.
    events: Annotated[list[EventType], Field(min_length=1)] | None = None
    description: OptionalText = None

    @field_validator("events", mode="before")
    @classmethod
    def _known_types(cls, value: object) -> object:
        """Name the unknown type, and the field itself rather than a position in it."""
        if isinstance(value, list):
            unknown = [item for item in value if item not in EVENT_TYPES]
            if unknown:
                raise ValueError(f"unknown event type {unknown[0]!r}")
        return value


class EventQuery(Page):
    type: EventType | None = None


class PatientCreate(_Body):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_NEW_PATIENT]})
    first_name: Annotated[NonEmptyStr, Field(max_length=100), text_schema(100)]
    last_name: Annotated[NonEmptyStr, Field(max_length=100), text_schema(100)]
    date_of_birth: Annotated[
        StrictDate,
        PastDateSchema(),
        Field(strict=False, description="`YYYY-MM-DD`, not in the future (UTC)."),
    ]
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(max_length=50)] | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _not_in_the_future(cls, value: date) -> date:
        if value > datetime.now(UTC).date():
            raise ValueError("must not be in the future")
        return value
