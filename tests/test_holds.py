"""The four hold endpoints, as the seed documentation and the contract describe them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from tests.catalog import (
    AMARA,
    ANNEXE,
    CLINIC,
    FOLLOW_UP,
    HYDRO,
    INITIAL,
    PATIENT,
    THURSDAY,
    WINTER_MONDAY,
)
from tests.conftest import Api
from tests.helpers import confirm_body, hold_body

HOLD_FIELDS = {
    "id",
    "appointment_type_id",
    "clinician_id",
    "location_id",
    "start_time",
    "end_time",
    "expires_at",
    "status",
    "created_at",
    "appointment_id",
}


def _at(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")


async def test_created_hold_has_the_seed_shape_and_a_fifteen_minute_expiry(api: Api) -> None:
    status, body = await api.call("POST", "/holds", hold_body("09:00"))
    assert status == 201
    hold = body["data"]
    assert set(hold) == HOLD_FIELDS | {"client_secret"}
    assert hold["id"].startswith("hold_")
    assert hold["status"] == "active"
    assert hold["appointment_id"] is None
    assert (hold["appointment_type_id"], hold["clinician_id"]) == (INITIAL, AMARA)
    assert hold["location_id"] == CLINIC
    assert _at(hold["expires_at"]) - _at(hold["created_at"]) == timedelta(seconds=900)
    assert _at(hold["end_time"]) - _at(hold["start_time"]) == timedelta(minutes=30)


async def test_summer_london_time_is_one_hour_ahead_of_utc(api: Api) -> None:
    status, body = await api.call("POST", "/holds", hold_body("09:00"))
    assert status == 201
    assert body["data"]["start_time"] == "2030-07-01T08:00:00Z"


async def test_winter_london_time_is_utc(api: Api) -> None:
    status, body = await api.call("POST", "/holds", hold_body("09:00", date=WINTER_MONDAY))
    assert status == 201
    assert body["data"]["start_time"] == "2030-01-07T09:00:00Z"
    assert body["data"]["end_time"] == "2030-01-07T09:30:00Z"


async def test_omitted_location_is_the_clinicians_scheduled_one(api: Api) -> None:
    status, body = await api.call("POST", "/holds", hold_body("10:00", location=None))
    assert status == 201
    assert body["data"]["location_id"] == CLINIC


async def test_remote_session_hold_has_no_location(api: Api) -> None:
    body = hold_body("14:00", date="2030-07-03", location=None)  # Wednesday: remote block
    status, created = await api.call("POST", "/holds", body)
    assert status == 201
    assert created["data"]["location_id"] is None


async def test_get_returns_the_whole_hold(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    status, fetched = await api.call("GET", f"/holds/{created['data']['id']}")
    assert status == 200
    created["data"].pop("client_secret")  # shown at creation only
    assert fetched["data"] == created["data"]


async def test_same_slot_twice_is_refused_with_409(api: Api) -> None:
    assert (await api.call("POST", "/holds", hold_body("09:00")))[0] == 201
    status, body = await api.call("POST", "/holds", hold_body("09:00"))
    assert status == 409
    assert body["error"]["code"] == "slot_unavailable"


async def test_overlapping_hold_of_another_type_is_refused_with_409(api: Api) -> None:
    assert (await api.call("POST", "/holds", hold_body("09:00")))[0] == 201  # 09:00-09:30
    status, body = await api.call("POST", "/holds", hold_body("09:15", kind=FOLLOW_UP))
    assert status == 409
    assert body["error"]["code"] == "slot_unavailable"


async def test_adjacent_holds_do_not_conflict(api: Api) -> None:
    assert (await api.call("POST", "/holds", hold_body("09:00")))[0] == 201
    assert (await api.call("POST", "/holds", hold_body("09:30")))[0] == 201


async def test_buffer_after_blocks_a_following_hold_of_another_type(api: Api) -> None:
    # Hydrotherapy 09:00-09:30 keeps the clinician until 09:45.
    assert (await api.call("POST", "/holds", hold_body("09:00", kind=HYDRO)))[0] == 201
    status, body = await api.call("POST", "/holds", hold_body("09:30"))
    assert status == 409
    assert body["error"]["code"] == "slot_unavailable"


async def test_buffer_of_the_new_hold_counts_against_existing_ones(api: Api) -> None:
    assert (await api.call("POST", "/holds", hold_body("09:30")))[0] == 201
    status, _ = await api.call("POST", "/holds", hold_body("09:00", kind=HYDRO))
    assert status == 409


async def test_one_clinician_cannot_be_held_at_two_places_at_once(api: Api) -> None:
    at_annexe = hold_body("09:00", date=THURSDAY, location=ANNEXE)
    assert (await api.call("POST", "/holds", at_annexe))[0] == 201
    remote = hold_body("09:00", date=THURSDAY, location=None)
    status, body = await api.call("POST", "/holds", remote)
    assert status == 409
    assert body["error"]["code"] == "slot_unavailable"


async def test_fifty_concurrent_creates_for_one_slot_give_exactly_one_201(api: Api) -> None:
    results = await asyncio.gather(*(api.call("POST", "/holds", hold_body()) for _ in range(50)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * 49


async def test_concurrent_overlapping_creates_never_both_succeed(api: Api) -> None:
    # Every pair among these overlaps: 09:00-09:30, 09:15-09:35(+5), 09:00-09:30(+15).
    bodies = [
        hold_body("09:00"),
        hold_body("09:15", kind=FOLLOW_UP),
        hold_body("09:00", kind=HYDRO),
    ]
    for _ in range(10):
        results = await asyncio.gather(*(api.call("POST", "/holds", body) for body in bodies * 5))
        created = [body["data"] for status, body in results if status == 201]
        assert len(created) == 1
        assert (await api.call("DELETE", f"/holds/{created[0]['id']}"))[0] == 200


async def test_release_frees_the_slot_at_once(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    status, body = await api.call("DELETE", f"/holds/{created['data']['id']}")
    assert status == 200
    assert body == {"data": {"message": "Hold released"}}
    assert (await api.call("POST", "/holds", hold_body()))[0] == 201


async def test_released_hold_reads_released(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    await api.call("DELETE", f"/holds/{created['data']['id']}")
    status, body = await api.call("GET", f"/holds/{created['data']['id']}")
    assert status == 200
    assert body["data"]["status"] == "released"


async def test_releasing_twice_answers_the_same_200(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    first = await api.call("DELETE", f"/holds/{created['data']['id']}")
    second = await api.call("DELETE", f"/holds/{created['data']['id']}")
    assert first == second == (200, {"data": {"message": "Hold released"}})


async def test_releasing_a_confirmed_hold_is_409(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    await api.call("POST", f"/holds/{created['data']['id']}/confirm", confirm_body())
    status, body = await api.call("DELETE", f"/holds/{created['data']['id']}")
    assert status == 409
    assert body["error"]["code"] == "hold_confirmed"


async def test_unknown_and_malformed_hold_ids_are_404(api: Api) -> None:
    unknown = "hold_00000000-0000-4000-8000-000000000000"
    for hold_id in (unknown, "nonsense", "hold_123", "apt_00000000-0000-4000-8000-000000000000"):
        for method, suffix, body in (
            ("GET", "", None),
            ("DELETE", "", None),
            ("POST", "/confirm", confirm_body()),
        ):
            status, answer = await api.call(method, f"/holds/{hold_id}{suffix}", body)
            assert status == 404, (method, hold_id)
            assert answer["error"]["code"] == "hold_not_found"


async def test_confirm_returns_the_appointment(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    status, body = await api.call("POST", f"/holds/{created['data']['id']}/confirm", confirm_body())
    assert status == 201
    appointment = body["data"]
    assert appointment["id"].startswith("apt_")
    assert appointment["patient_id"] == PATIENT
    assert appointment["clinician_profile_id"] == AMARA
    assert appointment["appointment_type_id"] == INITIAL
    assert appointment["location_id"] == CLINIC
    assert appointment["start_time"] == created["data"]["start_time"]
    assert appointment["end_time"] == created["data"]["end_time"]
    assert appointment["status"] == "confirmed"
    assert appointment["attendee_name"] == "Sarah Johnson"
    assert appointment["attendee_email"] == "sarah@example.com"
    assert appointment["attendee_phone"] == "+44 7700 900123"
    assert appointment["notes"] == "First visit"
    assert appointment["title"] == "Initial assessment with Dr Amara Okafor"
    assert appointment["is_remote"] is False
    assert appointment["created_at"] == appointment["updated_at"]


async def test_confirmed_appointment_is_readable_at_once(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    _, confirmed = await api.call("POST", f"/holds/{created['data']['id']}/confirm", confirm_body())
    status, fetched = await api.call("GET", f"/appointments/{confirmed['data']['id']}")
    assert status == 200
    assert fetched["data"] == confirmed["data"]


async def test_confirmed_hold_reads_confirmed_with_its_appointment(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    hold_id = created["data"]["id"]
    _, confirmed = await api.call("POST", f"/holds/{hold_id}/confirm", confirm_body())
    _, fetched = await api.call("GET", f"/holds/{hold_id}")
    assert fetched["data"]["status"] == "confirmed"
    assert fetched["data"]["appointment_id"] == confirmed["data"]["id"]


async def test_confirmed_slot_stays_blocked(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    await api.call("POST", f"/holds/{created['data']['id']}/confirm", confirm_body())
    status, body = await api.call("POST", "/holds", hold_body())
    assert status == 409
    assert body["error"]["code"] == "slot_unavailable"


async def test_confirming_twice_is_409_already_confirmed(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    path = f"/holds/{created['data']['id']}/confirm"
    await api.call("POST", path, confirm_body())
    status, body = await api.call("POST", path, confirm_body())
    assert status == 409
    assert body["error"]["code"] == "hold_already_confirmed"


async def test_twenty_concurrent_confirms_give_exactly_one_201(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    path = f"/holds/{created['data']['id']}/confirm"
    results = await asyncio.gather(*(api.call("POST", path, confirm_body()) for _ in range(20)))
    assert sorted(status for status, _ in results) == [201] + [409] * 19
    codes = {body["error"]["code"] for status, body in results if status == 409}
    assert codes == {"hold_already_confirmed"}


async def test_confirming_a_released_hold_is_404_hold_released(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    await api.call("DELETE", f"/holds/{created['data']['id']}")
    status, body = await api.call("POST", f"/holds/{created['data']['id']}/confirm", confirm_body())
    assert status == 404
    assert body["error"]["code"] == "hold_released"


async def test_confirm_with_an_unknown_patient_is_400_and_keeps_the_hold(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    hold_id = created["data"]["id"]
    unknown = "pat_00000000-0000-4000-8000-000000000999"
    status, body = await api.call("POST", f"/holds/{hold_id}/confirm", confirm_body(unknown))
    assert status == 400
    assert (body["error"]["code"], body["error"]["param"]) == ("resource_missing", "patient_id")
    assert (await api.call("GET", f"/holds/{hold_id}"))[1]["data"]["status"] == "active"


async def test_confirm_without_a_patient_is_400_naming_the_field(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    status, body = await api.call("POST", f"/holds/{created['data']['id']}/confirm", {})
    assert status == 400
    assert (body["error"]["code"], body["error"]["param"]) == ("invalid_request", "patient_id")
