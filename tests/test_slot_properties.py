"""Properties of the slot grid and wall-clock conversion, over many zones, dates and shapes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.catalog import AppointmentType, Clinician, Location, OrgCatalog, ScheduleBlock
from app.domain.slots import offered_slots, requested_slot, slot_at, wall_clock_to_utc
from app.errors import SlotNotOffered

ZONES = [
    "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
    "America/Sao_Paulo", "Pacific/Chatham", "Africa/Casablanca", "UTC",
]  # fmt: skip
days = st.dates(min_value=date(2026, 1, 1), max_value=date(2035, 12, 31))
times = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@given(day=days, at=times, zone=st.sampled_from(ZONES))
def test_a_wall_clock_time_that_exists_reads_back_the_same(day: date, at: time, zone: str) -> None:
    instant = wall_clock_to_utc(day, at, ZoneInfo(zone))
    if instant is not None:
        local = instant.astimezone(ZoneInfo(zone))
        assert (local.date(), local.time()) == (day, at)


@given(day=days, zone=st.sampled_from(ZONES))
def test_at_most_a_few_hours_a_year_are_skipped(day: date, zone: str) -> None:
    skipped = [
        minute
        for minute in range(0, 24 * 60, 15)
        if wall_clock_to_utc(day, time(minute // 60, minute % 60), ZoneInfo(zone)) is None
    ]
    assert len(skipped) <= 4 * 2  # no zone skips more than two hours in a day


@st.composite
def catalogs(draw: st.DrawFn) -> tuple[OrgCatalog, AppointmentType, Clinician]:
    zone = draw(st.sampled_from(ZONES))
    start = draw(st.integers(0, 20 * 60))
    length = draw(st.integers(30, 8 * 60))
    block = ScheduleBlock(
        weekday=draw(st.integers(0, 6)),
        start=time(start // 60, start % 60),
        end=time(min(start + length, 23 * 60 + 59) // 60, min(start + length, 23 * 60 + 59) % 60),
        location_id="loc_x" if draw(st.booleans()) else None,
    )
    duration = draw(st.integers(5, 90))
    kind = AppointmentType(
        id="type_x",
        name="x",
        description=None,
        duration_minutes=duration,
        slot_interval_minutes=draw(st.integers(5, 60)),
        buffer_before_minutes=draw(st.integers(0, 30)),
        buffer_after_minutes=draw(st.integers(0, 30)),
        booking_notice_hours=draw(st.integers(0, 48)),
        max_group_size=draw(st.integers(1, 8)),
        allow_online_booking=True,
        is_active=True,
        price=None,
        currency=None,
        clinician_ids=("cli_x",),
    )
    clinician = Clinician("cli_x", "A", "B", None, None, True, schedule=(block,))
    location = Location("loc_x", "Clinic", draw(st.sampled_from(ZONES)), True)
    catalog = OrgCatalog("org_x", "Org", zone, locations={"loc_x": location})
    return catalog, kind, clinician


@settings(max_examples=200, deadline=None)
@given(shape=catalogs(), day=days, hours_before=st.integers(0, 72))
def test_every_offered_slot_is_accepted_as_a_hold_request(
    shape: tuple[OrgCatalog, AppointmentType, Clinician], day: date, hours_before: int
) -> None:
    catalog, kind, clinician = shape
    now = datetime.combine(day, time(0, 0), tzinfo=UTC) - timedelta(hours=hours_before)
    for slot in offered_slots(catalog, kind, clinician, day, now):
        held = requested_slot(
            catalog, kind, clinician, day, slot.local_start.time(), slot.location_id, now
        )
        assert (held.start, held.end, held.location_id) == (slot.start, slot.end, slot.location_id)
        assert held.end - held.start == timedelta(minutes=kind.duration_minutes)


def _changeover_days(zone: ZoneInfo, year: int) -> list[date]:
    """The dates in `year` on which `zone`'s UTC offset changes."""
    first = date(year, 1, 1)
    days = [first + timedelta(days=n) for n in range(366)]
    return [
        day
        for day in days
        if zone.utcoffset(datetime.combine(day, time()))
        != zone.utcoffset(datetime.combine(day + timedelta(days=1), time()))
    ]


@settings(max_examples=60, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    step=st.sampled_from([5, 15, 30]),
    year=st.integers(2026, 2030),
)
def test_a_hold_request_finds_the_grid_slot_on_days_the_clocks_change(
    zone_name: str, step: int, year: int
) -> None:
    """Requests over every minute of a changeover day (and of an ordinary day) answer with
    the slot the grid has at that wall-clock time, or none where the grid has none."""
    zone = ZoneInfo(zone_name)
    for day in [*_changeover_days(zone, year)[:2], date(year, 6, 1)]:
        block = ScheduleBlock(day.weekday(), time(0, 0), time(23, 59), None)
        clinician = Clinician("cli_x", "A", "B", None, None, True, schedule=(block,))
        kind = AppointmentType("type_x", "x", None, step, step, 0, 0, 0, 1, True, True, None,
                               None, ("cli_x",))  # fmt: skip
        catalog = OrgCatalog("org_x", "Org", zone_name)
        now = datetime.combine(day, time(), tzinfo=UTC) - timedelta(days=2)
        for minute in range(0, 24 * 60):
            at = time(minute // 60, minute % 60)
            expected = slot_at(catalog, kind, clinician, block, day, at)
            try:
                held = requested_slot(catalog, kind, clinician, day, at, None, now)
            except SlotNotOffered:
                assert expected is None, (day, at)
            else:
                assert held == expected, (day, at)
