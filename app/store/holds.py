"""Holds in Redis. Every decision that needs atomicity is one Lua script."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from app.domain.records import Appointment, BookingDetails, Hold
from app.domain.slots import Interval
from app.ids import tag_of
from app.store import codec, keys

# Occupied intervals never last longer than this (1-day appointment plus two 1-day buffers).
LONGEST_OCCUPIED = timedelta(days=3)


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
    session_key: str | None = None  # a seat of this group session; None: an exclusive hold
    seats: int = 1  # how many holds and appointments the session may have
    secret_hash: str = ""  # SHA-256 of the hold's client_secret, hex; '' for none
    # The client_secret itself: put on the hold handed back to its creator, never stored
    # (nor shown by repr, should a NewHold be logged).
    client_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Created:
    hold: Hold
    replayed: bool = False  # an earlier attempt of the same request made it


@dataclass(frozen=True, slots=True)
class Confirmed:
    appointment: Appointment
    api_key_id: str  # of the hold, whose place among the key's holds is now free
    replayed: bool = False  # an earlier attempt of the same request made it


@dataclass(frozen=True, slots=True)
class InProgress:
    """Only recovering, and the earlier attempt has made nothing (yet)."""


@dataclass(frozen=True, slots=True)
class Taken:
    by: str  # id of the hold or appointment in the way
    session_full: bool = False  # every seat of the group session is taken


@dataclass(frozen=True, slots=True)
class NotRestored:
    """Redis has not been given this hash tag's appointments from SQL yet."""

    tag: str


@dataclass(frozen=True, slots=True)
class Occupied:
    """One live hold or appointment: the clinician's time it takes, and its group session."""

    interval: Interval
    session_key: str | None


@dataclass(frozen=True, slots=True)
class Occupancy:
    by_clinician: dict[str, list[Occupied]]
    unrestored_tags: set[str]


class HoldStore:
    """Redis access for holds. Losing a race is a return value, never an exception."""

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_seconds: int,
        retention_seconds: int,
        scripts: codec.ScriptHost | None = None,
        max_lifetime_seconds: int = 1800,
    ) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.retention_seconds = retention_seconds
        self.max_lifetime_seconds = max_lifetime_seconds
        host = scripts or redis
        self._create = codec.script(host, "create_hold.lua")
        self._get = codec.script(host, "get_hold.lua")
        self._release = codec.script(host, "release_hold.lua")
        # A confirm is the one write a client must not lose to a failover (README, cluster).
        self._confirm = codec.script(host, "confirm_hold.lua", replicated=True)
        self._extend = codec.script(host, "extend_hold.lua")
        self._replace_secret = codec.script(host, "replace_client_secret.lua")

    async def create(
        self, hold: NewHold, *, recover_only: bool = False
    ) -> Created | Taken | NotRestored | InProgress:
        """Hold the slot, or find the hold of this id already made (by an earlier attempt)."""
        record: dict[str, str | int] = {
            "org": hold.org_id,
            "key": hold.api_key_id,
            "type": hold.appointment_type_id,
            "cli": hold.clinician_id,
            "loc": hold.location_id or "",
            "start": codec.epoch(hold.start_time),
            "end": codec.epoch(hold.end_time),
            "ostart": codec.epoch(hold.occupied.start),
            "oend": codec.epoch(hold.occupied.end),
        }
        if hold.secret_hash:
            record["sec"] = hold.secret_hash
        tag = tag_of(hold.id)
        args: list[Any] = [hold.id, record["ostart"], record["oend"]]
        args += [self.ttl_seconds, self.retention_seconds, keys.expiry_tick_prefix(tag)]
        args += ["1" if recover_only else "0"]
        args += [hold.session_key or "", hold.seats]
        args += [item for pair in record.items() for item in pair]
        script_keys = [
            keys.occupancy(tag, hold.clinician_id),
            keys.hold(hold.id),
            keys.expiries(tag),
            keys.ready(tag),
            keys.events(tag),
        ]
        created, detail, *made = await self._create(keys=script_keys, args=args)
        if created == 2:
            return Created(codec.hold_from(hold.id, codec.pairs(made), now_ms=detail), True)
        if created == 3:
            return InProgress()
        if created == -1:
            return NotRestored(tag)
        if created in (0, 4):
            return Taken(by=detail.decode(), session_full=created == 4)
        return Created(self._made(hold, created_at=detail))

    def _made(self, hold: NewHold, *, created_at: int) -> Hold:
        """The hold just written, as `codec.hold_from` reads its record back (slots start on
        whole minutes, so nothing is lost to the record's whole seconds), built straight from
        what was written: reading it back cost more than the rest of the store call."""
        return Hold(
            id=hold.id,
            org_id=hold.org_id,
            api_key_id=hold.api_key_id,
            appointment_type_id=hold.appointment_type_id,
            clinician_id=hold.clinician_id,
            location_id=hold.location_id or None,
            start_time=hold.start_time,
            end_time=hold.end_time,
            expires_at=codec.moment(created_at + self.ttl_seconds),
            status="active",
            created_at=codec.moment(created_at),
            appointment_id=None,
            client_secret=hold.client_secret,
        )

    async def get(self, org_id: str, hold_id: str) -> Hold | None:
        # Just the fields a hold shows: the whole record was twice as many to decode.
        now_ms, *values = await self._get(keys=[keys.hold(hold_id)], args=codec.HOLD_FIELDS)
        fields = codec.named(codec.HOLD_FIELDS, values)
        if fields.get("org") != org_id:
            return None
        return codec.hold_from(hold_id, fields, now_ms=now_ms)

    async def release(self, org_id: str, hold_id: str) -> tuple[str, str]:
        """('released', 'not_found', 'expired' or 'confirmed'; the hold's API key id)."""
        tag = tag_of(hold_id)
        script_keys = [keys.hold(hold_id), keys.expiries(tag), keys.events(tag)]
        args = [org_id, keys.occupancy_prefix(tag), hold_id]
        outcome, api_key_id = await self._release(keys=script_keys, args=args)
        return outcome.decode(), api_key_id.decode()

    async def replace_secret(self, hold_id: str, secret_hash: str) -> None:
        """Give an existing hold a new client_secret (its hash); nothing if the hold is gone."""
        await self._replace_secret(keys=[keys.hold(hold_id)], args=[secret_hash])

    async def extend(self, org_id: str, hold_id: str) -> Hold | str:
        """The hold with its new expiry, or why there is none ('not_found', 'released',
        'confirmed', 'expired', 'limit')."""
        tag = tag_of(hold_id)
        args = [org_id, keys.occupancy_prefix(tag), hold_id, self.ttl_seconds]
        args += [self.max_lifetime_seconds, self.retention_seconds, keys.expiry_tick_prefix(tag)]
        script_keys = [keys.hold(hold_id), keys.expiries(tag), keys.events(tag)]
        outcome, *reply = await self._extend(keys=script_keys, args=args)
        if outcome != b"extended":
            return str(outcome.decode())
        now_ms, *flat = reply
        return codec.hold_from(hold_id, codec.pairs(flat), now_ms=now_ms)

    async def confirm(
        self,
        org_id: str,
        hold_id: str,
        appointment_id: str,
        booking: BookingDetails,
        *,
        token: str = "",
        recover_only: bool = False,
    ) -> Confirmed | InProgress | str:
        """The new appointment (or the one an earlier attempt with this Idempotency-Key
        `token` made), or the reason it could not be made ('not_found', 'released',
        'expired', 'already_confirmed')."""
        tag = tag_of(hold_id)
        details = {"patient": booking.patient_id} | {
            name: getattr(booking, name) for name in codec.BOOKING_FIELDS
        }
        args = [org_id, keys.occupancy_prefix(tag), hold_id, appointment_id, token]
        args += ["1" if recover_only else "0"]
        args += [item for k, v in details.items() if v is not None for item in (k, v)]
        script_keys = [
            keys.hold(hold_id),
            keys.appointment(appointment_id),
            keys.expiries(tag),
            keys.pending(tag),
            keys.events(tag),
        ]
        outcome, *reply = await self._confirm(keys=script_keys, args=args)
        if outcome == b"in_use":
            return InProgress()
        if outcome not in (b"confirmed", b"replayed"):
            return str(outcome.decode())
        api_key_id, *flat = reply
        appointment = codec.appointment_from(codec.pairs(flat))
        return Confirmed(appointment, api_key_id.decode(), outcome == b"replayed")

    async def occupied(self, clinician_tags: dict[str, str], window: Interval) -> Occupancy:
        """Live occupied intervals per clinician (`clinician_tags` maps clinician id to shard
        tag) that overlap `window`, read with Redis' clock in one round trip."""
        tags = sorted(set(clinician_tags.values()))
        pipe = self.redis.pipeline(transaction=False)
        pipe.time()
        for tag in tags:
            pipe.exists(keys.ready(tag))
        low, high = codec.epoch(window.start - LONGEST_OCCUPIED), codec.epoch(window.end)
        for clinician_id, tag in clinician_tags.items():
            pipe.zrangebyscore(keys.occupancy(tag, clinician_id), low, f"({high}", withscores=True)
        (seconds, micros), *replies = await pipe.execute()
        ready, ranges = replies[: len(tags)], replies[len(tags) :]
        now_ms = codec.now_ms(seconds, micros)
        return Occupancy(
            by_clinician={
                clinician_id: list(_live_intervals(members, now_ms, window))
                for clinician_id, members in zip(clinician_tags, ranges, strict=True)
            },
            unrestored_tags={tag for tag, found in zip(tags, ready, strict=True) if not found},
        )


def _live_intervals(
    members: Iterable[tuple[bytes, float]], now_ms: int, window: Interval
) -> Iterable[Occupied]:
    for member, score in members:
        _, ends, expires, *session = member.decode().split("|")
        if expires != "0" and now_ms >= int(expires) * 1000:
            continue
        interval = Interval(codec.moment(score), codec.moment(ends))
        if interval.overlaps(window):
            yield Occupied(interval, session[0] if session else None)
