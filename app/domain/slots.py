"""The slot grid: which start times a clinician offers for an appointment type.

Both `GET /availability` and `POST /holds` ask this module, so any slot the first returns is one
the second accepts. Wall-clock times live in the block's zone (the location's, or the
organisation's for remote blocks) and are stepped in wall-clock minutes from the block's start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.domain.catalog import AppointmentType, Clinician, OrgCatalog, ScheduleBlock
from app.errors import SlotNotOffered


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open UTC interval [start, end)."""

    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime  # UTC
    end: datetime  # UTC
    clinician_id: str
    location_id: str | None
    local_start: datetime  # wall clock in the block's zone, for matching a requested date/time

    @property
    def is_remote(self) -> bool:
        return self.location_id is None


def occupied_interval(start: datetime, end: datetime, kind: AppointmentType) -> Interval:
    """The clinician's time an appointment takes up, its type's buffers included."""
    return Interval(
        start - timedelta(minutes=kind.buffer_before_minutes),
        end + timedelta(minutes=kind.buffer_after_minutes),
    )


def session_key(kind: AppointmentType, start: datetime, location_id: str | None) -> str | None:
    """What the seats of one group session share, or None for an exclusive type.

    A session is one clinician's sitting of one group type at one place and start; the clinician
    is implied by where the key is used (the clinician's own occupancy, or beside the
    clinician's id in SQL). Sixteen hex digits of SHA-1 keep it short inside every seat's
    occupancy entry while leaving collisions out of reach.
    """
    if kind.max_group_size <= 1:
        return None
    identity = f"{kind.id}|{location_id or ''}|{int(start.timestamp())}"
    return hashlib.sha1(identity.encode()).hexdigest()[:16]


def wall_clock_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall-clock time, or None when the clock skips it (DST gap).

    An ambiguous time (the hour repeated when clocks go back) means its first occurrence.
    """
    local = datetime.combine(day, at).replace(tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return instant


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute


def block_slots(
    catalog: OrgCatalog,
    kind: AppointmentType,
    clinician: Clinician,
    block: ScheduleBlock,
    day: date,
) -> Iterator[Slot]:
    """Every grid start in one block on one local date, before any exclusions."""
    zone = catalog.zone_for(block.location_id)
    step = kind.slot_interval_minutes or kind.duration_minutes
    first, last = _minutes(block.start), _minutes(block.end) - kind.duration_minutes
    for minute in range(first, last + 1, step):
        at = time(minute // 60, minute % 60)
        start = wall_clock_to_utc(day, at, zone)
        if start is None:
            continue
        yield Slot(
            start=start,
            end=start + timedelta(minutes=kind.duration_minutes),
            clinician_id=clinician.id,
            location_id=block.location_id,
            local_start=datetime.combine(day, at),
        )


def slot_at(
    catalog: OrgCatalog,
    kind: AppointmentType,
    clinician: Clinician,
    block: ScheduleBlock,
    day: date,
    at: time,
) -> Slot | None:
    """The grid slot of one block that starts at wall-clock `at`, if the grid has one there:
    what `block_slots` would yield for that time, without generating the others."""
    step = kind.slot_interval_minutes or kind.duration_minutes
    first, last, wanted = _minutes(block.start), _minutes(block.end), _minutes(at)
    on_grid = (wanted - first) % step == 0
    if not (on_grid and first <= wanted <= last - kind.duration_minutes):
        return None
    start = wall_clock_to_utc(day, at, catalog.zone_for(block.location_id))
    if start is None:
        return None
    return Slot(
        start=start,
        end=start + timedelta(minutes=kind.duration_minutes),
        clinician_id=clinician.id,
        location_id=block.location_id,
        local_start=datetime.combine(day, at),
    )


@dataclass(frozen=True, slots=True)
class _BlockOnDay:
    """One schedule block on one date, as far as it can be worked out before the time is known."""

    block: ScheduleBlock
    first: int  # minute of the day of the first grid start
    last: int  # minute of the day of the latest grid start
    step: int
    midnight: datetime  # the date's 00:00 as UTC, moved by the zone's offset
    steady: bool  # the zone's offset is the same all day: no gap, no repeated hour


_DAY_RULES_KEPT = 20_000  # (type, clinician, date) entries per catalog; then they start again


def _day_rules(
    catalog: OrgCatalog, kind: AppointmentType, clinician: Clinician, day: date
) -> tuple[_BlockOnDay, ...]:
    """The clinician's blocks on `day` for this type, worked out once per catalog version:
    finding and converting them was most of a hold request's slot check."""
    key = ("day_rules", kind.id, clinician.id, day)
    rules = catalog.derived.get(key)
    if rules is None:
        _require_offered(kind, clinician)  # remembered only once passed: the catalog is fixed
        rules = tuple(
            _block_on_day(catalog, kind, block, day)
            for block in clinician.schedule
            if block.weekday == day.weekday()
        )
        if len(catalog.derived) >= _DAY_RULES_KEPT:
            catalog.derived.clear()
        catalog.derived[key] = rules
    return rules  # type: ignore[return-value]


def _block_on_day(
    catalog: OrgCatalog, kind: AppointmentType, block: ScheduleBlock, day: date
) -> _BlockOnDay:
    midnight, steady = _zone_day(catalog, catalog.zone_for(block.location_id), day)
    return _BlockOnDay(
        block=block,
        first=_minutes(block.start),
        last=_minutes(block.end) - kind.duration_minutes,
        step=kind.slot_interval_minutes or kind.duration_minutes,
        midnight=midnight,
        steady=steady,
    )


def _zone_day(catalog: OrgCatalog, zone: ZoneInfo, day: date) -> tuple[datetime, bool]:
    """The date's 00:00 in `zone` as UTC, and whether the zone's offset holds all day. Offsets
    change on whole minutes and never twice within a quarter of an hour, so one reading per
    quarter hour finds every change."""
    key = ("zone_day", zone.key, day)
    known = catalog.derived.get(key)
    if known is None:
        local_midnight = datetime.combine(day, time())
        offsets = {zone.utcoffset(local_midnight + timedelta(minutes=m))
                   for m in range(0, 24 * 60 + 1, 15)}  # fmt: skip
        offset = next(iter(offsets)) or timedelta()
        known = catalog.derived[key] = (
            local_midnight.replace(tzinfo=UTC) - offset,
            len(offsets) == 1,
        )
    return known  # type: ignore[return-value]


def _slot_on_day(
    catalog: OrgCatalog,
    kind: AppointmentType,
    clinician: Clinician,
    rules: _BlockOnDay,
    day: date,
    at: time,
) -> Slot | None:
    """`slot_at` for one block, from its day's rules."""
    if not rules.steady:
        return slot_at(catalog, kind, clinician, rules.block, day, at)
    wanted = at.hour * 60 + at.minute
    if (wanted - rules.first) % rules.step or not rules.first <= wanted <= rules.last:
        return None
    start = rules.midnight + timedelta(minutes=wanted)
    return Slot(
        start=start,
        end=start + timedelta(minutes=kind.duration_minutes),
        clinician_id=clinician.id,
        location_id=rules.block.location_id,
        local_start=datetime.combine(day, at),
    )


def offers(catalog: OrgCatalog, kind: AppointmentType, clinician: Clinician) -> bool:
    """Whether this clinician can be booked online for this type at all."""
    return kind.bookable and clinician.is_active and clinician.id in kind.clinician_ids


def _location_open(catalog: OrgCatalog, location_id: str | None) -> bool:
    if location_id is None:
        return True
    location = catalog.locations.get(location_id)
    return location is not None and location.is_active


def _on_time_off(clinician: Clinician, slot: Slot) -> bool:
    # Compared in place: an Interval per period cost more than the rest of the check.
    return any(off.start < slot.end and slot.start < off.end for off in clinician.time_off)


def earliest_bookable_start(kind: AppointmentType, now: datetime) -> datetime:
    return now + timedelta(hours=kind.booking_notice_hours)


def offered_slots(
    catalog: OrgCatalog, kind: AppointmentType, clinician: Clinician, day: date, now: datetime
) -> Iterator[Slot]:
    """Slots on one local date that availability may show: schedule, time off and notice applied.

    Held and booked intervals are not known here; the caller removes those.
    """
    if not offers(catalog, kind, clinician):
        return
    earliest = earliest_bookable_start(kind, now)
    for block in clinician.schedule:
        if block.weekday != day.weekday() or not _location_open(catalog, block.location_id):
            continue
        for slot in block_slots(catalog, kind, clinician, block, day):
            if slot.start >= earliest and not _on_time_off(clinician, slot):
                yield slot


def requested_slot(
    catalog: OrgCatalog,
    kind: AppointmentType,
    clinician: Clinician,
    day: date,
    at: time,
    location_id: str | None,
    now: datetime,
) -> Slot:
    """The grid slot a hold request names, or SlotNotOffered saying why availability never shows it.

    `location_id` None means "wherever the clinician is scheduled then" (remote included).
    """
    candidates = [
        slot
        for rules in _day_rules(catalog, kind, clinician, day)
        if (slot := _slot_on_day(catalog, kind, clinician, rules, day, at)) is not None
    ]
    if not candidates:
        raise _why_not_on_grid(catalog, clinician, day, at)
    if location_id is not None:
        candidates = [slot for slot in candidates if slot.location_id == location_id]
        if not candidates:
            raise SlotNotOffered(
                "The clinician is not at that location at that time.", param="location_id"
            )
    slot = candidates[0]
    if not _location_open(catalog, slot.location_id):
        raise SlotNotOffered("That location is not taking bookings.", param="location_id")
    if _on_time_off(clinician, slot):
        raise SlotNotOffered("The clinician is away at that time.", param="start_time")
    if slot.start < earliest_bookable_start(kind, now):
        raise SlotNotOffered(
            "That time is in the past or inside the booking notice period.", param="start_time"
        )
    return slot


def _require_offered(kind: AppointmentType, clinician: Clinician) -> None:
    if not kind.bookable:
        raise SlotNotOffered(
            "This appointment type cannot be booked online.", param="appointment_type_id"
        )
    if not clinician.is_active:
        raise SlotNotOffered("This clinician is not taking bookings.", param="clinician_id")
    if clinician.id not in kind.clinician_ids:
        raise SlotNotOffered(
            "This clinician does not offer this appointment type.", param="clinician_id"
        )


def _why_not_on_grid(catalog: OrgCatalog, clinician: Clinician, day: date, at: time) -> Exception:
    zones = {
        catalog.zone_for(b.location_id) for b in clinician.schedule if b.weekday == day.weekday()
    }
    if zones and all(wall_clock_to_utc(day, at, zone) is None for zone in zones):
        return SlotNotOffered(
            "That local time does not exist on that date (the clocks change).", param="start_time"
        )
    return SlotNotOffered(
        "That time is not a slot on the clinician's schedule for this appointment type.",
        param="start_time",
    )
