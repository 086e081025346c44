"""Pure logic of the slot grid and wall-clock conversion (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from app.domain.catalog import AppointmentType, Clinician, OrgCatalog, ScheduleBlock
from app.domain.slots import Interval, block_slots, occupied_interval, wall_clock_to_utc

LONDON = ZoneInfo("Europe/London")


def _kind(duration: int, interval: int, before: int = 0, after: int = 0) -> AppointmentType:
    return AppointmentType(
        id="type_x", name="x", description=None, duration_minutes=duration,
        slot_interval_minutes=interval, buffer_before_minutes=before, buffer_after_minutes=after,
        booking_notice_hours=0, max_group_size=1, allow_online_booking=True, is_active=True,
        price=None, currency=None, clinician_ids=("cli_x",),
    )  # fmt: skip


def test_skipped_wall_clock_time_has_no_instant() -> None:
    assert wall_clock_to_utc(date(2030, 3, 31), time(1, 30), LONDON) is None


def test_repeated_wall_clock_time_means_its_first_occurrence() -> None:
    # 01:30 happens twice on 2030-10-27 in London: first in BST (00:30Z), then in GMT.
    instant = wall_clock_to_utc(date(2030, 10, 27), time(1, 30), LONDON)
    assert instant == datetime(2030, 10, 27, 0, 30, tzinfo=UTC)


def test_grid_steps_from_the_block_start_and_ends_inside_the_block() -> None:
    catalog = OrgCatalog("org_x", "x", "Europe/London")
    clinician = Clinician("cli_x", "A", "B", None, None, True)
    block = ScheduleBlock(0, time(9, 0), time(10, 0), None)
    slots = list(block_slots(catalog, _kind(20, 15), clinician, block, date(2030, 1, 7)))
    assert [slot.local_start.time() for slot in slots] == [time(9, 0), time(9, 15), time(9, 30)]


def test_occupied_interval_includes_both_buffers() -> None:
    start, end = datetime(2030, 1, 7, 9, tzinfo=UTC), datetime(2030, 1, 7, 9, 30, tzinfo=UTC)
    occupied = occupied_interval(start, end, _kind(30, 30, before=10, after=5))
    assert occupied == Interval(
        datetime(2030, 1, 7, 8, 50, tzinfo=UTC), datetime(2030, 1, 7, 9, 35, tzinfo=UTC)
    )


def test_touching_intervals_do_not_overlap() -> None:
    nine, half, ten = (
        datetime(2030, 1, 7, h, m, tzinfo=UTC) for h, m in ((9, 0), (9, 30), (10, 0))
    )
    assert not Interval(nine, half).overlaps(Interval(half, ten))
    assert Interval(nine, ten).overlaps(Interval(half, ten))
