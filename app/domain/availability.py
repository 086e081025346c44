"""`GET /availability`: the slot grid minus what is held, booked, away or too soon."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.domain.catalog import AppointmentType, Clinician, Location, OrgCatalog
from app.domain.slots import (
    Interval,
    Slot,
    occupied_interval,
    offered_slots,
    session_key,
    wall_clock_to_utc,
)
from app.errors import InvalidRequest, ResourceMissing
from app.ids import shard_tag
from app.schemas import AvailabilityQuery
from app.store.holds import HoldStore, Occupied

MAX_RANGE_DAYS = 31
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class AvailableSlot:
    slot: Slot
    clinician: Clinician
    location: Location | None
    seats_available: int  # 1 for a free exclusive slot; a group session's free seats


async def find_available_slots(
    catalog: OrgCatalog,
    store: HoldStore,
    restore_tag: Callable[[str], Awaitable[int]],
    query: AvailabilityQuery,
    now: datetime,
) -> list[AvailableSlot]:
    """Every slot that can be held right now, sorted by start time then clinician id."""
    kind, clinicians = _resolve(catalog, query)
    window = _window(catalog, query)
    candidates = [
        slot
        for clinician in clinicians
        for slot in _slots_in_window(catalog, kind, clinician, window, now)
        if _matches_place(slot, query)
    ]
    occupied = await _occupied(catalog, clinicians, store, restore_tag, _padded(window, kind))
    free = [
        (slot, seats)
        for slot in candidates
        if (seats := seats_available(kind, slot, occupied.get(slot.clinician_id, ()))) > 0
    ]
    free.sort(key=lambda item: (item[0].start, item[0].clinician_id))
    return [
        AvailableSlot(slot, catalog.clinicians[slot.clinician_id], _location(catalog, slot), seats)
        for slot, seats in free
    ]


def seats_available(kind: AppointmentType, slot: Slot, taken: Iterable[Occupied]) -> int:
    """How many more holds the slot takes: 0 when anything but its own session's seats
    overlaps it, else the seats its session has left (a free exclusive slot has one)."""
    wanted = occupied_interval(slot.start, slot.end, kind)
    session = session_key(kind, slot.start, slot.location_id)
    seats = kind.max_group_size if session is not None else 1
    for occupant in taken:
        if not wanted.overlaps(occupant.interval):
            continue
        if session is None or occupant.session_key != session or occupant.interval != wanted:
            return 0
        seats -= 1
    return max(seats, 0)


async def _occupied(
    catalog: OrgCatalog,
    clinicians: list[Clinician],
    store: HoldStore,
    restore_tag: Callable[[str], Awaitable[int]],
    window: Interval,
) -> dict[str, list[Occupied]]:
    tags = {c.id: shard_tag(catalog.org_id, c.id) for c in clinicians}
    occupancy = await store.occupied(tags, window)
    if occupancy.unrestored_tags:  # Redis started empty: booked slots come from SQL first
        for tag in occupancy.unrestored_tags:
            await restore_tag(tag)
        occupancy = await store.occupied(tags, window)
    return occupancy.by_clinician


def _resolve(
    catalog: OrgCatalog, query: AvailabilityQuery
) -> tuple[AppointmentType, list[Clinician]]:
    kind = catalog.appointment_types.get(query.appointment_type_id)
    if kind is None:
        raise ResourceMissing("No such appointment type.", param="appointment_type_id")
    if query.location_id is not None and query.location_id not in catalog.locations:
        raise ResourceMissing("No such location.", param="location_id")
    if query.clinician_id is None:
        return kind, [catalog.clinicians[c] for c in kind.clinician_ids if c in catalog.clinicians]
    clinician = catalog.clinicians.get(query.clinician_id)
    if clinician is None:
        raise ResourceMissing("No such clinician.", param="clinician_id")
    return kind, [clinician]


def _window(catalog: OrgCatalog, query: AvailabilityQuery) -> Interval:
    """The query's dates, inclusive, as a UTC interval in the organisation's timezone."""
    if query.end_date < query.start_date:
        raise InvalidRequest("end_date must not be before start_date.", param="end_date")
    if (query.end_date - query.start_date).days >= MAX_RANGE_DAYS:
        raise InvalidRequest(
            f"The date range may cover at most {MAX_RANGE_DAYS} days.", param="end_date"
        )
    zone = ZoneInfo(catalog.timezone)
    return Interval(_midnight(query.start_date, zone), _midnight(query.end_date + _DAY, zone))


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    moment = wall_clock_to_utc(day, time(0, 0), zone)
    # A zone whose clocks skip midnight starts that day at the first minute that exists.
    minute = 0
    while moment is None:
        minute += 1
        moment = wall_clock_to_utc(day, time(minute // 60, minute % 60), zone)
    return moment


def _slots_in_window(
    catalog: OrgCatalog,
    kind: AppointmentType,
    clinician: Clinician,
    window: Interval,
    now: datetime,
) -> list[Slot]:
    # Local dates of other zones can straddle the organisation's: look one day either side.
    first, last = (window.start - _DAY).date(), (window.end + _DAY).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [
        slot
        for day in days
        for slot in offered_slots(catalog, kind, clinician, day, now)
        if window.start <= slot.start < window.end
    ]


def _matches_place(slot: Slot, query: AvailabilityQuery) -> bool:
    if query.location_id is not None and slot.location_id != query.location_id:
        return False
    return query.is_remote is None or slot.is_remote == query.is_remote


def _padded(window: Interval, kind: AppointmentType) -> Interval:
    """Occupied intervals that can touch a slot of this window, buffers included."""
    before = timedelta(minutes=kind.buffer_before_minutes)
    after = timedelta(minutes=kind.duration_minutes + kind.buffer_after_minutes)
    return Interval(window.start - before, window.end + after)


def _location(catalog: OrgCatalog, slot: Slot) -> Location | None:
    return catalog.locations.get(slot.location_id) if slot.location_id else None
