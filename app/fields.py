"""Strict field types shared by request bodies and the catalog file."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    GetJsonSchemaHandler,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import CoreSchema

from app import json_patterns

# ASCII digits only: Python's \d also matches other scripts' digits, which int() accepts.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
# Dates the service computes with: a day's neighbours must exist in every timezone.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2999, 12, 31)


def parse_date(value: object) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a real calendar date as YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"must be a date from {FIRST_DAY} to {LAST_DAY}")
    return day


def parse_time(value: object) -> time:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise ValueError("must be a 24-hour time as HH:MM")
    return time(int(value[:2]), int(value[3:]))


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA timezone {value!r}") from None
    return value


def iso_utc(moment: datetime) -> str:
    """ISO 8601 UTC with Z at second precision, the API's one timestamp format."""
    return moment.isoformat(timespec="seconds")[:19] + "Z"  # a third faster than strftime


_id_pattern = json_patterns.id_pattern


class JsonSchemaExtra:
    """Adds keywords to a type's generated JSON schema without changing its validation."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        schema = dict(handler(core_schema))
        schema.update(self.keywords)
        return schema


class PastDateSchema:
    """The JSON schema of a date that is not in the future, computed when it is asked for."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        today = datetime.now(UTC).date()  # as PatientCreate checks it
        pattern = json_patterns.date_pattern(FIRST_DAY, today)
        return {**_date_schema(pattern), "examples": ["1988-04-12"]}


def _date_schema(pattern: str) -> dict[str, Any]:
    return {"type": "string", "format": "date", "pattern": pattern}


StrictDate = Annotated[
    date,
    BeforeValidator(parse_date),
    WithJsonSchema({**_date_schema(json_patterns.ANY_DAY), "examples": ["2030-01-21"]}),
]
StrictTime = Annotated[
    time,
    BeforeValidator(parse_time),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": _TIME.pattern, "examples": ["09:00"]}),
]


def text_schema(max_length: int) -> WithJsonSchema:
    """Documents a stripped, non-empty string of at most `max_length` characters."""
    return WithJsonSchema({"type": "string", "pattern": json_patterns.stripped_text(max_length)})


NonEmptyStr = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    text_schema(500),
]


def id_schema(prefix: str) -> WithJsonSchema:
    """Documents a string as an id of this kind, without validating it."""
    return _reference(prefix)


def _reference(prefix: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": _id_pattern(prefix)})


# Body and query fields naming a resource: validated as non-empty strings (an id that names
# nothing is 400 `resource_missing`), documented with the id's exact shape.
TypeRef = Annotated[NonEmptyStr, _reference("type")]
ClinicianRef = Annotated[NonEmptyStr, _reference("cli")]
LocationRef = Annotated[NonEmptyStr, _reference("loc")]
PatientRef = Annotated[NonEmptyStr, _reference("pat")]
TimezoneName = Annotated[str, AfterValidator(_check_timezone)]
UtcTimestamp = Annotated[
    datetime,
    PlainSerializer(iso_utc, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": json_patterns.UTC_SECOND,
            "examples": ["2030-01-21T09:00:00Z"],
        }
    ),
]
OrgId = Annotated[str, StringConstraints(pattern=_id_pattern("org"))]
LocationId = Annotated[str, StringConstraints(pattern=_id_pattern("loc"))]
ClinicianId = Annotated[str, StringConstraints(pattern=_id_pattern("cli"))]
TypeId = Annotated[str, StringConstraints(pattern=_id_pattern("type"))]
PatientId = Annotated[str, StringConstraints(pattern=_id_pattern("pat"))]
