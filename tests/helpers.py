"""Small builders shared by the API tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from app.domain.records import Appointment, BookingDetails
from app.domain.slots import Interval
from app.ids import new_tagged_id, shard_tag
from app.store.appointments import AppointmentStore
from app.store.holds import Created, HoldStore, NewHold
from tests.catalog import AMARA, CLINIC, INITIAL, ORG, PATIENT, SUMMER_MONDAY


def hold_body(
    start_time: str = "09:00",
    *,
    date: str = SUMMER_MONDAY,
    kind: str = INITIAL,
    clinician: str = AMARA,
    location: str | None = CLINIC,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appointment_type_id": kind,
        "clinician_id": clinician,
        "date": date,
        "start_time": start_time,
    }
    if location is not None:
        body["location_id"] = location
    return body


def confirm_body(patient: str = PATIENT) -> dict[str, Any]:
    return {
        "patient_id": patient,
        "attendee_name": "Sarah Johnson",
        "attendee_email": "sarah@example.com",
        "attendee_phone": "+44 7700 900123",
        "notes": "First visit",
    }


NINE = datetime(2030, 7, 1, 8, 0, tzinfo=UTC)  # 09:00 in London on SUMMER_MONDAY
HALF_NINE = datetime(2030, 7, 1, 8, 30, tzinfo=UTC)


def confirmed_appointment(hours_later: int = 0) -> Appointment:
    """Amara's, from 09:00 on SUMMER_MONDAY plus some hours, as if Redis had confirmed it."""
    start, end = NINE + timedelta(hours=hours_later), HALF_NINE + timedelta(hours=hours_later)
    return Appointment(
        id=new_tagged_id("apt", shard_tag(ORG, AMARA)),
        org_id=ORG,
        hold_id="hold_00000000-0000-4000-8000-000000000000",
        appointment_type_id=INITIAL,
        clinician_id=AMARA,
        location_id=None,
        start_time=start,
        end_time=end,
        status="confirmed",
        booking=BookingDetails(patient_id=PATIENT),
        created_at=NINE,
        updated_at=NINE,
        occupied=Interval(start, end),
    )


async def holds_in_one_diary(redis: Redis, count: int, *, ttl_seconds: int) -> list[str]:
    """`count` holds of Amara's, made straight in Redis (far more than the API's limits let one
    key hold), all expiring within a second or two of one another; their ids."""
    tag = shard_tag(ORG, AMARA)
    await AppointmentStore(redis).restore(tag, [], mark_ready=True)
    store = HoldStore(redis, ttl_seconds=ttl_seconds, retention_seconds=3600)
    first = datetime(2031, 1, 6, tzinfo=UTC)
    made = await asyncio.gather(
        *(store.create(_new_hold(tag, first + timedelta(minutes=30 * n))) for n in range(count))
    )
    hold_ids = [outcome.hold.id for outcome in made if isinstance(outcome, Created)]
    assert len(hold_ids) == count
    return hold_ids


def _new_hold(tag: str, start: datetime) -> NewHold:
    end = start + timedelta(minutes=30)
    return NewHold(
        id=new_tagged_id("hold", tag),
        org_id=ORG,
        api_key_id="key_burst",
        appointment_type_id=INITIAL,
        clinician_id=AMARA,
        location_id=CLINIC,
        start_time=start,
        end_time=end,
        occupied=Interval(start, end),
    )
