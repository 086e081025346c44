"""Request bodies and query strings, validated strictly (unknown fields are ignored)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.events import TYPES as EVENT_TYPES
from app.events import EventType
from app.fields import NonEmptyStr, StrictDate, StrictTime

OptionalText = Annotated[str, StringConstraints(max_length=2000)] | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class HoldCreate(_Body):
    appointment_type_id: NonEmptyStr
    clinician_id: NonEmptyStr
    date: Annotated[StrictDate, Field(strict=False)]
    start_time: Annotated[StrictTime, Field(strict=False)]
    location_id: NonEmptyStr | None = None


class HoldConfirm(_Body):
    patient_id: NonEmptyStr
    attendee_name: OptionalText = None
    attendee_email: OptionalText = None
    attendee_phone: OptionalText = None
    notes: OptionalText = None


class HoldExtend(_Body):
    """POST /holds/{id}/extend takes an empty body or `{}`."""


class Page(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    limit: int = Field(default=20, ge=1, le=100)
    # Bounded so that it fits every database's integer.
    offset: int = Field(default=0, ge=0, le=1_000_000_000)


class AvailabilityQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    appointment_type_id: NonEmptyStr
    start_date: Annotated[StrictDate, Field(strict=False)]
    end_date: Annotated[StrictDate, Field(strict=False)]
    clinician_id: NonEmptyStr | None = None
    location_id: NonEmptyStr | None = None
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
    clinician_id: NonEmptyStr | None = None
    patient_id: NonEmptyStr | None = None
    status: Literal["confirmed", "cancelled"] | None = None
    start_date: Annotated[StrictDate, Field(strict=False)] | None = None
    end_date: Annotated[StrictDate, Field(strict=False)] | None = None


class AppointmentCancel(_Body):
    reason: OptionalText = None


class WebhookEndpointCreate(_Body):
    url: Annotated[NonEmptyStr, Field(max_length=2000)]
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
    first_name: Annotated[NonEmptyStr, Field(max_length=100)]
    last_name: Annotated[NonEmptyStr, Field(max_length=100)]
    date_of_birth: Annotated[StrictDate, Field(strict=False)]
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(max_length=50)] | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _not_in_the_future(cls, value: date) -> date:
        if value > datetime.now(UTC).date():
            raise ValueError("must not be in the future")
        return value
