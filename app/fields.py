"""Strict field types shared by request bodies and the catalog file."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def parse_date(value: object) -> date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a real calendar date as YYYY-MM-DD") from None


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


def _id_pattern(prefix: str) -> str:
    return rf"^{prefix}_[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$"


StrictDate = Annotated[
    date,
    BeforeValidator(parse_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2030-01-21"]}),
]
StrictTime = Annotated[
    time,
    BeforeValidator(parse_time),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": _TIME.pattern, "examples": ["09:00"]}),
]
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
TimezoneName = Annotated[str, AfterValidator(_check_timezone)]
UtcTimestamp = Annotated[
    datetime,
    PlainSerializer(iso_utc, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2030-01-21T09:00:00Z"]}),
]
OrgId = Annotated[str, StringConstraints(pattern=_id_pattern("org"))]
LocationId = Annotated[str, StringConstraints(pattern=_id_pattern("loc"))]
ClinicianId = Annotated[str, StringConstraints(pattern=_id_pattern("cli"))]
TypeId = Annotated[str, StringConstraints(pattern=_id_pattern("type"))]
PatientId = Annotated[str, StringConstraints(pattern=_id_pattern("pat"))]
