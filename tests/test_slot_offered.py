"""POST /holds refuses, with 400 slot_not_offered, any time GET /availability would never offer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.clock import FixedClock
from tests.catalog import (
    ANNEXE,
    AWAY_MONDAY,
    DST_SUNDAY,
    FOLLOW_UP,
    HYDRO,
    INITIAL,
    NIGHT,
    RETIRED,
    TOM,
)
from tests.conftest import Api, MakeApi
from tests.helpers import hold_body


async def _refused(api: Api, body: dict[str, object], param: str) -> None:
    status, answer = await api.call("POST", "/holds", body)
    assert status == 400, answer
    assert answer["error"]["code"] == "slot_not_offered"
    assert answer["error"]["param"] == param


async def test_time_outside_the_schedule_is_not_offered(api: Api) -> None:
    await _refused(api, hold_body("17:00"), "start_time")  # the block ends at 17:00
    await _refused(api, hold_body("08:30"), "start_time")


async def test_appointment_must_end_inside_the_block(api: Api) -> None:
    await _refused(api, hold_body("16:45", kind=FOLLOW_UP), "start_time")  # would end 17:05


async def test_day_without_a_schedule_is_not_offered(api: Api) -> None:
    await _refused(api, hold_body("09:00", date="2030-07-05"), "start_time")  # a Friday


async def test_time_off_the_slot_grid_is_not_offered(api: Api) -> None:
    await _refused(api, hold_body("09:10"), "start_time")
    await _refused(api, hold_body("09:15"), "start_time")  # grid of 30 minutes


async def test_past_time_is_not_offered(api: Api) -> None:
    await _refused(api, hold_body("09:00", date="2020-01-06"), "start_time")


async def test_time_inside_the_booking_notice_is_not_offered(make_api: MakeApi) -> None:
    # 07:30Z is 08:30 in London; Initial assessment needs 2 hours' notice.
    api = await make_api(clock=FixedClock(datetime(2030, 7, 1, 7, 30, tzinfo=UTC)))
    await _refused(api, hold_body("10:00"), "start_time")
    status, _ = await api.call("POST", "/holds", hold_body("10:30"))
    assert status == 201


async def test_clinician_who_does_not_offer_the_type_is_refused(api: Api) -> None:
    body = hold_body("08:00", clinician=TOM, kind=INITIAL, location=None)
    await _refused(api, body, "clinician_id")


async def test_inactive_type_is_refused(api: Api) -> None:
    await _refused(api, hold_body("09:00", kind=RETIRED), "appointment_type_id")


async def test_location_where_the_clinician_is_not_is_refused(api: Api) -> None:
    await _refused(api, hold_body("09:00", location=ANNEXE), "location_id")


async def test_time_off_is_not_offered(api: Api) -> None:
    await _refused(api, hold_body("09:00", date=AWAY_MONDAY), "start_time")


async def test_wall_clock_time_skipped_by_the_clocks_changing_is_refused(api: Api) -> None:
    body = hold_body("01:30", date=DST_SUNDAY, kind=HYDRO, clinician=NIGHT, location=None)
    status, answer = await api.call("POST", "/holds", body)
    assert status == 400
    assert answer["error"]["code"] == "slot_not_offered"
    assert "does not exist" in answer["error"]["message"]


async def test_times_around_the_dst_gap_are_offered(api: Api) -> None:
    early = hold_body("00:00", date=DST_SUNDAY, kind=HYDRO, clinician=NIGHT, location=None)
    # 02:00 British Summer Time is 01:00Z, an hour after 00:00 GMT.
    late = hold_body("02:00", date=DST_SUNDAY, kind=HYDRO, clinician=NIGHT, location=None)
    status, body = await api.call("POST", "/holds", early)
    assert (status, body["data"]["start_time"]) == (201, "2030-03-31T00:00:00Z")
    status, body = await api.call("POST", "/holds", late)
    assert (status, body["data"]["start_time"]) == (201, "2030-03-31T01:00:00Z")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("appointment_type_id", "type_00000000-0000-4000-8000-00000000ffff"),
        ("clinician_id", "cli_00000000-0000-4000-8000-00000000ffff"),
        ("location_id", "loc_00000000-0000-4000-8000-00000000ffff"),
        ("clinician_id", "not-an-id"),
    ],
)
async def test_unknown_ids_in_the_body_are_resource_missing(
    api: Api, field: str, value: str
) -> None:
    status, body = await api.call("POST", "/holds", hold_body() | {field: value})
    assert status == 400
    assert (body["error"]["code"], body["error"]["param"]) == ("resource_missing", field)
