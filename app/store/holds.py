"""Holds and appointments in Redis. Every decision that needs atomicity is one Lua script."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from app.domain.records import Appointment, BookingDetails, Hold
from app.domain.slots import Interval
from app.ids import tag_of
from app.store import keys

# Occupied intervals never last longer than this (1-day appointment plus two 1-day buffers).
LONGEST_OCCUPIED = timedelta(days=3)


def _script(redis: Redis, name: str) -> AsyncScript:
    source = resources.files("app.store").joinpath("lua", name).read_text(encoding="utf-8")
    return redis.register_script(source)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(epoch: str | int) -> datetime:
    return datetime.fromtimestamp(int(epoch), UTC)


@dataclass(frozen=True, slots=True)
class NewHold:
    id: str
    org_id: str
    api_key_id: str
    appointment_type_id: str
    clinician_id: str
    location_id: str | None
    start_time: datetime
    end_time: datetime
    occupied: Interval


@dataclass(frozen=True, slots=True)
class Created:
    hold: Hold


@dataclass(frozen=True, slots=True)
class Taken:
    by: str  # id of the hold or appointment in the way


class HoldStore:
    """Redis access for holds. Losing a race is a return value, never an exception."""

    def __init__(self, redis: Redis, *, ttl_seconds: int, retention_seconds: int) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.retention_seconds = retention_seconds
        self._create = _script(redis, "create_hold.lua")
        self._get = _script(redis, "get_hold.lua")
        self._release = _script(redis, "release_hold.lua")
        self._confirm = _script(redis, "confirm_hold.lua")

    async def create(self, hold: NewHold) -> Created | Taken:
        record = {
            "org": hold.org_id,
            "key": hold.api_key_id,
            "type": hold.appointment_type_id,
            "cli": hold.clinician_id,
            "loc": hold.location_id or "",
            "start": _epoch(hold.start_time),
            "end": _epoch(hold.end_time),
            "ostart": _epoch(hold.occupied.start),
            "oend": _epoch(hold.occupied.end),
        }
        tag = tag_of(hold.id)
        args: list[Any] = [
            hold.id,
            record["ostart"],
            record["oend"],
            self.ttl_seconds,
            self.retention_seconds,
        ]
        args += [item for pair in record.items() for item in pair]
        created, detail = await self._create(
            keys=[keys.occupancy(tag, hold.clinician_id), keys.hold(hold.id)], args=args
        )
        if not created:
            return Taken(by=detail.decode())
        fields = {k: str(v) for k, v in record.items()}
        fields |= {"created": str(detail), "expires": str(detail + self.ttl_seconds)}
        return Created(_hold(hold.id, fields | {"status": "active"}, now_ms=detail * 1000))

    async def get(self, org_id: str, hold_id: str) -> Hold | None:
        now_ms, *flat = await self._get(keys=[keys.hold(hold_id)])
        fields = _pairs(flat)
        if fields.get("org") != org_id:
            return None
        return _hold(hold_id, fields, now_ms=now_ms)

    async def release(self, org_id: str, hold_id: str) -> str:
        """'released', 'not_found', 'expired' or 'confirmed'."""
        prefix = keys.occupancy_prefix(tag_of(hold_id))
        outcome: bytes = await self._release(
            keys=[keys.hold(hold_id)], args=[org_id, prefix, hold_id]
        )
        return outcome.decode()

    async def confirm(
        self, org_id: str, hold_id: str, appointment_id: str, booking: BookingDetails
    ) -> Appointment | str:
        """The new appointment, or the reason it could not be made ('not_found', 'released',
        'expired', 'already_confirmed')."""
        prefix = keys.occupancy_prefix(tag_of(hold_id))
        details = {
            "patient": booking.patient_id,
            "attendee_name": booking.attendee_name,
            "attendee_email": booking.attendee_email,
            "attendee_phone": booking.attendee_phone,
            "notes": booking.notes,
        }
        args = [org_id, prefix, hold_id, appointment_id]
        args += [item for k, v in details.items() if v is not None for item in (k, v)]
        outcome, *flat = await self._confirm(
            keys=[keys.hold(hold_id), keys.appointment(appointment_id)], args=args
        )
        if outcome != b"confirmed":
            return str(outcome.decode())
        return _appointment(_pairs(flat))

    async def get_appointment(self, org_id: str, appointment_id: str) -> Appointment | None:
        record: dict[bytes, bytes] = await self.redis.hgetall(  # type: ignore[misc]
            keys.appointment(appointment_id)
        )
        fields = _pairs(record)
        if fields.get("org") != org_id:
            return None
        return _appointment(fields)

    async def occupied(
        self, org_tags: dict[str, str], window: Interval
    ) -> dict[str, list[Interval]]:
        """Live occupied intervals per clinician (`org_tags` maps clinician id to shard tag)
        that overlap `window`, read with Redis' clock in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.time()
        low, high = _epoch(window.start - LONGEST_OCCUPIED), _epoch(window.end)
        for clinician_id, tag in org_tags.items():
            pipe.zrangebyscore(keys.occupancy(tag, clinician_id), low, f"({high}", withscores=True)
        (seconds, micros), *ranges = await pipe.execute()
        now_ms = seconds * 1000 + micros // 1000
        return {
            clinician_id: list(_live_intervals(members, now_ms, window))
            for clinician_id, members in zip(org_tags, ranges, strict=True)
        }


def _live_intervals(
    members: Iterable[tuple[bytes, float]], now_ms: int, window: Interval
) -> Iterable[Interval]:
    for member, score in members:
        _, ends, expires = member.decode().split("|")
        if expires != "0" and now_ms >= int(expires) * 1000:
            continue
        interval = Interval(_moment(int(score)), _moment(ends))
        if interval.overlaps(window):
            yield interval


def _pairs(flat: list[bytes] | dict[bytes, bytes]) -> dict[str, str]:
    if isinstance(flat, dict):
        return {k.decode(): v.decode() for k, v in flat.items()}
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


def _hold(hold_id: str, fields: dict[str, str], *, now_ms: int) -> Hold:
    status = fields["status"]
    if status == "active" and now_ms >= int(fields["expires"]) * 1000:
        status = "expired"
    return Hold(
        id=hold_id,
        org_id=fields["org"],
        api_key_id=fields["key"],
        appointment_type_id=fields["type"],
        clinician_id=fields["cli"],
        location_id=fields["loc"] or None,
        start_time=_moment(fields["start"]),
        end_time=_moment(fields["end"]),
        expires_at=_moment(fields["expires"]),
        status=status,
        created_at=_moment(fields["created"]),
        appointment_id=fields.get("apt"),
    )


def _appointment(fields: dict[str, str]) -> Appointment:
    return Appointment(
        id=fields["id"],
        org_id=fields["org"],
        hold_id=fields["hold"],
        appointment_type_id=fields["type"],
        clinician_id=fields["cli"],
        location_id=fields["loc"] or None,
        start_time=_moment(fields["start"]),
        end_time=_moment(fields["end"]),
        status=fields["status"],
        booking=BookingDetails(
            patient_id=fields["patient"],
            attendee_name=fields.get("attendee_name"),
            attendee_email=fields.get("attendee_email"),
            attendee_phone=fields.get("attendee_phone"),
            notes=fields.get("notes"),
        ),
        created_at=_moment(fields["created"]),
        updated_at=_moment(fields["updated"]),
    )
