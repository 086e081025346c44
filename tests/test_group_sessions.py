"""Group sessions: up to max_group_size holds and appointments share one session, and nothing
else may overlap it (CONTRACT section 11)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from sqlalchemy.exc import IntegrityError

from app.db import appointments_repo
from app.db.engine import create_engine, session_factory
from app.db.models import AppointmentRow
from app.domain.records import Appointment
from app.ids import new_tagged_id, tag_of
from app.web.state import APPOINTMENTS
from tests.catalog import AMARA, BACK_CARE_CLASS, HYDRO, INITIAL, ORG, SUMMER_MONDAY, WORKSHOP
from tests.conftest import Api, MakeApi, sql_rows
from tests.helpers import confirm_body, hold_body
from tests.servers import demo_server

SEATS = 6  # the demo's back-care class
TEN = "2030-07-01T09:00:00Z"  # 10:00 in London on SUMMER_MONDAY


def _class_hold(start_time: str = "10:00") -> dict[str, Any]:
    return hold_body(start_time, kind=BACK_CARE_CLASS)


async def _slots(api: Api, kind: str = BACK_CARE_CLASS) -> dict[str, int]:
    """Start time -> seats available, for Amara on SUMMER_MONDAY."""
    query = f"appointment_type_id={kind}&start_date={SUMMER_MONDAY}&end_date={SUMMER_MONDAY}"
    status, body = await api.call("GET", f"/availability?{query}&clinician_id={AMARA}")
    assert status == 200
    return {slot["start_time"]: slot["seats_available"] for slot in body["data"]}


async def _hold(api: Api, body: dict[str, Any]) -> tuple[int, Any]:
    return await api.call("POST", "/holds", body)


async def _fill(api: Api, seats: int, start_time: str = "10:00") -> list[str]:
    ids = []
    for _ in range(seats):
        status, hold = await _hold(api, _class_hold(start_time))
        assert status == 201
        ids.append(hold["data"]["id"])
    return ids


async def test_seats_count_down_with_each_hold_and_up_with_each_release(api: Api) -> None:
    assert (await _slots(api))[TEN] == SEATS
    first, _ = await _fill(api, 2)
    assert (await _slots(api))[TEN] == SEATS - 2
    status, _ = await api.call("DELETE", f"/holds/{first}")
    assert status == 200
    assert (await _slots(api))[TEN] == SEATS - 1


async def test_a_full_session_is_refused_and_no_longer_offered(api: Api) -> None:
    await _fill(api, SEATS)
    status, body = await _hold(api, _class_hold())
    assert status == 409
    assert body["error"]["code"] == "slot_unavailable"
    assert body["error"]["message"] == "Every seat of that session is taken."
    assert TEN not in await _slots(api)


async def test_confirmed_seats_keep_their_places_and_a_cancel_frees_one(api: Api) -> None:
    holds = await _fill(api, SEATS)
    booked = []
    for hold_id in holds[:2]:
        status, appointment = await api.call("POST", f"/holds/{hold_id}/confirm", confirm_body())
        assert status == 201
        booked.append(appointment["data"]["id"])
    assert (await _hold(api, _class_hold()))[0] == 409
    status, _ = await api.call("POST", f"/appointments/{booked[0]}/cancel", {})
    assert status == 200
    assert (await _slots(api))[TEN] == 1
    assert (await _hold(api, _class_hold()))[0] == 201


async def test_an_expired_seat_is_free_again_at_expiry(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=1)
    await _fill(api, SEATS)
    assert (await _hold(api, _class_hold()))[0] == 409
    await asyncio.sleep(1.2)
    assert (await _slots(api))[TEN] == SEATS
    assert (await _hold(api, _class_hold()))[0] == 201


async def test_an_ordinary_booking_may_not_overlap_a_session_or_its_buffer(api: Api) -> None:
    await _fill(api, 1)  # the class occupies 10:00-11:15 (15 minutes after)
    assert (await _hold(api, hold_body("10:30")))[0] == 409
    assert (await _hold(api, hold_body("11:00")))[0] == 409  # inside the class's buffer
    assert (await _hold(api, hold_body("11:30")))[0] == 201
    offered = await _slots(api, kind=INITIAL)  # UTC: London is an hour ahead
    assert "2030-07-01T09:30:00Z" not in offered and "2030-07-01T10:00:00Z" not in offered
    assert "2030-07-01T11:00:00Z" in offered


async def test_a_session_may_not_overlap_an_ordinary_booking(api: Api) -> None:
    assert (await _hold(api, hold_body("11:00")))[0] == 201
    assert (await _hold(api, _class_hold("10:00")))[0] == 409
    assert TEN not in await _slots(api)


async def test_two_sessions_of_the_clinician_may_not_overlap(api: Api) -> None:
    await _fill(api, 1)
    workshop_at_ten = hold_body("10:00", kind=WORKSHOP)
    workshop_at_half_ten = hold_body("10:30", kind=WORKSHOP)
    assert (await _hold(api, workshop_at_ten))[0] == 409  # same start, another session
    assert (await _hold(api, workshop_at_half_ten))[0] == 409
    assert (await _hold(api, hold_body("12:00", kind=WORKSHOP)))[0] == 201
    assert (await _hold(api, hold_body("12:00", kind=WORKSHOP)))[0] == 201
    assert (await _hold(api, hold_body("12:00", kind=WORKSHOP)))[0] == 409  # two seats


async def test_an_ordinary_slot_offers_one_seat_and_a_held_one_none(api: Api) -> None:
    assert (await _slots(api, kind=INITIAL))[TEN] == 1
    assert (await _hold(api, hold_body("10:00")))[0] == 201
    assert (await _hold(api, hold_body("10:00")))[0] == 409
    assert TEN not in await _slots(api, kind=INITIAL)


async def test_confirmed_seats_block_the_session_again_after_redis_loses_them(
    api: Api,
) -> None:
    for hold_id in await _fill(api, SEATS):
        status, appointment = await api.call("POST", f"/holds/{hold_id}/confirm", confirm_body())
        assert status == 201
        await api.client.app[APPOINTMENTS].persist(appointment["data"]["id"])  # type: ignore[index]
    client = aioredis.Redis.from_url(api.settings.redis_url)
    await client.flushall()
    await client.aclose()
    assert TEN not in await _slots(api)
    assert (await _hold(api, _class_hold()))[0] == 409
    assert (await _hold(api, hold_body("10:30")))[0] == 409


async def test_racing_holds_across_two_api_processes_fill_exactly_the_seats(
    tmp_path: Path, redis_url: str
) -> None:
    shared = {
        "redis_url": redis_url,
        "database_url": f"sqlite:///{tmp_path / 'holds.sqlite3'}",
        "rate_limit_per_minute": "100000",
    }
    with (
        demo_server(tmp_path / "a", **shared) as first,
        demo_server(tmp_path / "b", **shared) as second,
    ):
        async with aiohttp.ClientSession() as http:

            async def hold(server: Any) -> int:
                async with http.post(
                    f"{server.api}/holds",
                    json=_class_hold(),
                    headers={"Authorization": f"Bearer {server.key}"},
                ) as response:
                    return response.status

            servers = [first, second] * (3 * SEATS // 2)
            statuses = await asyncio.gather(*(hold(server) for server in servers))
    assert sorted(statuses) == [201] * SEATS + [409] * (2 * SEATS)


@pytest.mark.parametrize("seed", range(3))
async def test_every_offered_slot_takes_exactly_its_seats_among_mixed_bookings(
    make_api: MakeApi, seed: int
) -> None:
    """Random slots of exclusive and group types, in random order: each slot offered takes
    exactly `seats_available` more holds, the next is refused, and the list stays true."""
    api = await make_api(max_active_holds_per_key=1000, rate_limit_per_minute=100000)
    chooser = random.Random(seed)
    filled = 0
    for _ in range(12):
        kind = chooser.choice([INITIAL, HYDRO, BACK_CARE_CLASS, WORKSHOP])
        query = f"appointment_type_id={kind}&start_date={SUMMER_MONDAY}&end_date={SUMMER_MONDAY}"
        _, offered = await api.call("GET", f"/availability?{query}&clinician_id={AMARA}")
        if not offered["data"]:  # the day is full for this type
            continue
        slot = chooser.choice(offered["data"])
        body = {
            "appointment_type_id": kind,
            "clinician_id": AMARA,
            "location_id": slot["location_id"],
            "date": SUMMER_MONDAY,
            "start_time": _london_time(slot["start_time"]),
        }
        statuses = [(await _hold(api, body))[0] for _ in range(slot["seats_available"] + 1)]
        assert statuses == [201] * slot["seats_available"] + [409], (kind, slot)
        filled += 1
    assert filled >= 6  # most rounds found a slot to fill


def _london_time(utc: str) -> str:
    """HH:MM in London on SUMMER_MONDAY (British Summer Time: an hour ahead of UTC)."""
    hour, minute = int(utc[11:13]) + 1, utc[14:16]
    return f"{hour:02d}:{minute}"


async def _booked_seat(api: Api) -> str:
    _, hold = await _hold(api, _class_hold())
    _, appointment = await api.call("POST", f"/holds/{hold['data']['id']}/confirm", confirm_body())
    return str(appointment["data"]["id"])


async def test_sql_keeps_the_seats_of_one_session_unmarked(
    make_api: MakeApi, database_url: str
) -> None:
    api = await make_api(database_url=database_url)
    service = api.client.app[APPOINTMENTS]  # type: ignore[index]
    for appointment_id in [await _booked_seat(api) for _ in range(3)]:
        await service.persist(appointment_id)
    rows = await sql_rows(database_url, "SELECT conflict_with, session_key FROM appointments")
    assert len(rows) == 3
    assert {row.conflict_with for row in rows} == {None}
    assert len({row.session_key for row in rows}) == 1


async def test_postgresql_allows_one_sessions_seats_to_overlap_and_nothing_else(
    make_api: MakeApi, postgres_url: str
) -> None:
    api = await make_api(database_url=postgres_url)
    service = api.client.app[APPOINTMENTS]  # type: ignore[index]
    seat = await service.get(ORG, await _booked_seat(api))
    await service.persist(seat.id)
    engine = create_engine(postgres_url)
    try:
        for intruder in (_copy(seat, session_key=None), _copy(seat, session_key="0" * 16)):
            with pytest.raises(IntegrityError):
                async with session_factory(engine).begin() as session:
                    session.add(AppointmentRow(**appointments_repo._row_values(intruder, None)))
        async with session_factory(engine).begin() as session:  # another seat: allowed
            session.add(AppointmentRow(**appointments_repo._row_values(_copy(seat), None)))
    finally:
        await engine.dispose()


def _copy(seat: Appointment, **changes: Any) -> Appointment:
    """Another appointment in the same occupied time as `seat`."""
    return replace(seat, id=new_tagged_id("apt", tag_of(seat.id)), **changes)
