"""GET /availability: the slot grid minus holds, appointments, time off, the past and notice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.clock import FixedClock
from tests.catalog import (
    AMARA,
    ANNEXE,
    AWAY_MONDAY,
    CLINIC,
    DST_SUNDAY,
    FOLLOW_UP,
    HYDRO,
    INITIAL,
    NIGHT,
    SUMMER_MONDAY,
    THURSDAY,
    TOM,
)
from tests.conftest import Api, MakeApi
from tests.helpers import confirm_body, hold_body

SLOT_FIELDS = {
    "start_time",
    "end_time",
    "clinician_id",
    "clinician_name",
    "location_id",
    "location_name",
    "is_remote",
    "seats_available",
}


async def _slots(api: Api, kind: str = INITIAL, **params: str) -> list[dict[str, Any]]:
    query = {"appointment_type_id": kind, "start_date": SUMMER_MONDAY, "end_date": SUMMER_MONDAY}
    response = await api.client.get("/v1/availability", params=query | params, headers=api.auth())
    body = await response.json()
    assert response.status == 200, body
    slots: list[dict[str, Any]] = body["data"]
    return slots


def _starts(slots: list[dict[str, Any]]) -> list[str]:
    return [slot["start_time"] for slot in slots]


async def test_slots_follow_the_schedule_in_local_time(api: Api) -> None:
    slots = await _slots(api)
    # Monday 09:00-17:00 British Summer Time, 30-minute grid: 08:00Z to 15:30Z.
    assert _starts(slots)[0] == "2030-07-01T08:00:00Z"
    assert _starts(slots)[-1] == "2030-07-01T15:30:00Z"
    assert len(slots) == 16
    first = slots[0]
    assert set(first) == SLOT_FIELDS
    assert first["seats_available"] == 1
    assert first["clinician_id"] == AMARA
    assert first["clinician_name"] == "Dr Amara Okafor"
    assert (first["location_id"], first["location_name"]) == (CLINIC, "Riverside Clinic")
    assert first["is_remote"] is False
    assert first["end_time"] == "2030-07-01T08:30:00Z"


async def test_slot_interval_steps_the_grid(api: Api) -> None:
    slots = [s for s in await _slots(api, kind=FOLLOW_UP) if s["clinician_id"] == AMARA]
    assert _starts(slots)[:3] == [
        "2030-07-01T08:00:00Z",
        "2030-07-01T08:15:00Z",
        "2030-07-01T08:30:00Z",
    ]


async def test_slots_are_sorted_by_start_then_clinician(api: Api) -> None:
    slots = await _slots(api, kind=FOLLOW_UP)
    keys = [(slot["start_time"], slot["clinician_id"]) for slot in slots]
    assert keys == sorted(keys)
    assert {slot["clinician_id"] for slot in slots} == {AMARA, TOM}


async def test_held_slot_disappears_and_returns_on_release(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body("09:00"))
    assert "2030-07-01T08:00:00Z" not in _starts(await _slots(api))
    await api.call("DELETE", f"/holds/{created['data']['id']}")
    assert "2030-07-01T08:00:00Z" in _starts(await _slots(api))


async def test_booked_slot_disappears(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body("09:00"))
    await api.call("POST", f"/holds/{created['data']['id']}/confirm", confirm_body())
    assert "2030-07-01T08:00:00Z" not in _starts(await _slots(api))


async def test_buffers_remove_neighbouring_slots_of_other_types(api: Api) -> None:
    await api.call("POST", "/holds", hold_body("09:00", kind=HYDRO))  # occupies 08:00Z-08:45Z
    starts = _starts(await _slots(api))
    assert "2030-07-01T08:30:00Z" not in starts
    assert "2030-07-01T09:00:00Z" in starts


async def test_time_off_has_no_slots(api: Api) -> None:
    assert await _slots(api, start_date=AWAY_MONDAY, end_date=AWAY_MONDAY) == []


async def test_past_days_have_no_slots(api: Api) -> None:
    assert await _slots(api, start_date="2020-01-06", end_date="2020-01-06") == []


async def test_notice_period_hides_slots_that_start_too_soon(make_api: MakeApi) -> None:
    api = await make_api(clock=FixedClock(datetime(2030, 7, 1, 7, 30, tzinfo=UTC)))
    assert _starts(await _slots(api))[0] == "2030-07-01T09:30:00Z"  # 07:30Z + 2 h, on the grid


async def test_dst_gap_times_are_never_offered(api: Api) -> None:
    slots = await _slots(api, kind=HYDRO, start_date=DST_SUNDAY, end_date=DST_SUNDAY)
    night = [s for s in slots if s["clinician_id"] == NIGHT]
    # 00:00-04:00 local, every 30 minutes, less 01:00 and 01:30 which do not exist.
    assert _starts(night) == [
        "2030-03-31T00:00:00Z",
        "2030-03-31T00:30:00Z",
        "2030-03-31T01:00:00Z",
        "2030-03-31T01:30:00Z",
        "2030-03-31T02:00:00Z",
        "2030-03-31T02:30:00Z",
    ]


async def test_location_and_remote_filters(api: Api) -> None:
    at_annexe = await _slots(api, start_date=THURSDAY, end_date=THURSDAY, location_id=ANNEXE)
    remote = await _slots(api, start_date=THURSDAY, end_date=THURSDAY, is_remote="true")
    assert at_annexe and all(s["location_id"] == ANNEXE for s in at_annexe)
    assert remote and all(s["is_remote"] and s["location_id"] is None for s in remote)


async def test_range_covers_both_dates_inclusive(api: Api) -> None:
    slots = await _slots(api, start_date="2030-07-01", end_date="2030-07-02")
    days = {slot["start_time"][:10] for slot in slots}
    assert days == {"2030-07-01", "2030-07-02"}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"start_date": "2030-07-01", "end_date": "2030-08-01"}, "end_date"),
        ({"start_date": "2030-07-02", "end_date": "2030-07-01"}, "end_date"),
        ({"start_date": "2030-7-1"}, "start_date"),
        ({"is_remote": "maybe"}, "is_remote"),
    ],
)
async def test_bad_queries_are_400(api: Api, params: dict[str, str], param: str) -> None:
    query = {"appointment_type_id": INITIAL, "start_date": "2030-07-01", "end_date": "2030-07-01"}
    response = await api.client.get("/v1/availability", params=query | params, headers=api.auth())
    body = await response.json()
    assert response.status == 400
    assert (body["error"]["code"], body["error"]["param"]) == ("invalid_request", param)


async def test_thirty_one_days_is_the_longest_range(api: Api) -> None:
    slots = await _slots(api, start_date="2030-07-01", end_date="2030-07-31")
    assert slots


async def test_every_slot_offered_can_be_held(api: Api) -> None:
    for kind in (INITIAL, FOLLOW_UP, HYDRO):
        for slot in await _slots(api, kind=kind, start_date=SUMMER_MONDAY, end_date="2030-07-07"):
            body = {
                "appointment_type_id": kind,
                "clinician_id": slot["clinician_id"],
                "location_id": slot["location_id"],
            } | _london_wall_clock(slot["start_time"])
            status, answer = await api.call("POST", "/holds", body)
            assert status == 201, (slot, answer)
            await api.call("DELETE", f"/holds/{answer['data']['id']}")


def _london_wall_clock(utc: str) -> dict[str, str]:
    """The `date` and `start_time` a booking page sends for a slot (test places are in London)."""
    moment = datetime.strptime(utc, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    local = moment.astimezone(ZoneInfo("Europe/London"))
    return {"date": local.strftime("%Y-%m-%d"), "start_time": local.strftime("%H:%M")}
