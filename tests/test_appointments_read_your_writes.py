"""Lists of appointments show every confirm and cancel that was answered, whether or not a
worker has persisted it yet, with exact totals and pages. No worker runs in these tests: what
SQL lacks, only the API's own reads of Redis can show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from app.db import appointments_repo
from app.db.appointments_repo import AppointmentFilter
from app.db.engine import create_engine, session_factory
from app.domain.appointments import AppointmentService
from app.domain.pages import Window, merged_page, window
from app.ids import new_id
from app.web.state import APPOINTMENTS
from tests.catalog import AMARA, FOLLOW_UP, ORG, PATIENT, SUMMER_MONDAY, TOM
from tests.conftest import Api, MakeApi, seed_database
from tests.helpers import confirm_body, hold_body
from tests.test_persistence_races import confirmed_appointment

TUESDAY = "2030-07-02"


async def _book(api: Api, start_time: str, *, patient: str = PATIENT, **where: Any) -> str:
    status, hold = await api.call("POST", "/holds", hold_body(start_time, **where))
    assert status == 201, hold
    path = f"/holds/{hold['data']['id']}/confirm"
    status, booked = await api.call("POST", path, confirm_body(patient))
    assert status == 201, booked
    appointment_id: str = booked["data"]["id"]
    return appointment_id


async def _cancel(api: Api, appointment_id: str) -> None:
    status, body = await api.call("POST", f"/appointments/{appointment_id}/cancel", {})
    assert status == 200, body


async def _persist(api: Api, *appointment_ids: str) -> None:
    """What a worker would do; called only where a test needs rows already in SQL."""
    service: AppointmentService = api.client.app[APPOINTMENTS]  # type: ignore[index]
    for appointment_id in appointment_ids:
        await service.persist(appointment_id)


async def _listed(api: Api, query: str) -> tuple[list[str], dict[str, Any]]:
    status, body = await api.call("GET", f"/appointments?{query}")
    assert status == 200, body
    return [appointment["id"] for appointment in body["data"]], body["pagination"]


@dataclass
class Diary:
    """In start order: Tom's remote Monday 08:00 (new); Amara's Monday 09:00 (in SQL), 10:00
    (new) and 11:00 (in SQL, cancelled since); Amara's Tuesday 09:00 (new). The second
    patient has the first and the last."""

    patient: str
    tom: str
    persisted: str
    new: str
    cancelled: str
    tuesday: str


async def _diary(api: Api) -> Diary:
    status, patient = await api.call(
        "POST",
        "/patients",
        {"first_name": "Ada", "last_name": "Lane", "date_of_birth": "1980-02-03"},
    )
    assert status == 201, patient
    second = patient["data"]["id"]
    persisted = await _book(api, "09:00")
    cancelled = await _book(api, "11:00")
    await _persist(api, persisted, cancelled)
    await _cancel(api, cancelled)
    return Diary(
        patient=second,
        tom=await _book(api, "08:00", patient=second, kind=FOLLOW_UP, clinician=TOM, location=None),
        persisted=persisted,
        new=await _book(api, "10:00"),
        cancelled=cancelled,
        tuesday=await _book(api, "09:00", patient=second, date=TUESDAY),
    )


# (name of the case, query, who is listed in order)
FILTERS = [
    ("all", "", ("tom", "persisted", "new", "cancelled", "tuesday")),
    ("amara", f"clinician_id={AMARA}", ("persisted", "new", "cancelled", "tuesday")),
    ("tom", f"clinician_id={TOM}", ("tom",)),
    ("patient", f"patient_id={PATIENT}", ("persisted", "new", "cancelled")),
    ("second_patient", "patient_id=<second>", ("tom", "tuesday")),
    ("confirmed", "status=confirmed", ("tom", "persisted", "new", "tuesday")),
    ("cancelled", "status=cancelled", ("cancelled",)),
    ("from_tuesday", f"start_date={TUESDAY}", ("tuesday",)),
    ("until_monday", f"end_date={SUMMER_MONDAY}", ("tom", "persisted", "new", "cancelled")),
    (
        "combined",
        f"clinician_id={AMARA}&status=confirmed&start_date={SUMMER_MONDAY}&end_date={SUMMER_MONDAY}",
        ("persisted", "new"),
    ),
]


@pytest.mark.parametrize(
    ("query", "expected"), [case[1:] for case in FILTERS], ids=[case[0] for case in FILTERS]
)
async def test_list_shows_unpersisted_confirms_and_cancels_for_every_filter(
    api: Api, query: str, expected: tuple[str, ...]
) -> None:
    diary = await _diary(api)
    listed, pagination = await _listed(api, query.replace("<second>", diary.patient))
    assert listed == [getattr(diary, name) for name in expected]
    assert pagination["total"] == len(expected)


async def test_list_shows_the_new_version_of_an_unpersisted_change_not_the_old(
    api: Api,
) -> None:
    appointment = await _book(api, "09:00")
    await _persist(api, appointment)
    await _cancel(api, appointment)
    _, body = await api.call("GET", "/appointments")
    assert [(a["id"], a["status"], a["persisted"]) for a in body["data"]] == [
        (appointment, "cancelled", False)
    ]
    assert body["pagination"]["total"] == 1


async def test_a_booking_through_one_api_process_is_listed_by_another(
    make_api: MakeApi,
) -> None:
    booking_page, back_office = await make_api(), await make_api()
    appointment = await _book(booking_page, "09:00")
    assert await _listed(back_office, f"patient_id={PATIENT}") == (
        [appointment],
        {"total": 1, "limit": 20, "offset": 0, "has_more": False},
    )
    await _cancel(back_office, appointment)
    assert (await _listed(booking_page, "status=confirmed"))[0] == []
    assert (await _listed(booking_page, "status=cancelled"))[0] == [appointment]


async def test_unpersisted_changes_move_page_boundaries_exactly(api: Api) -> None:
    nine, ten, eleven = [await _book(api, at) for at in ("09:00", "10:00", "11:00")]
    await _persist(api, nine, ten, eleven)
    half_nine = await _book(api, "09:30")  # lands between two SQL rows of the first page
    assert await _listed(api, "limit=2") == (
        [nine, half_nine],
        {"total": 4, "limit": 2, "offset": 0, "has_more": True},
    )
    assert await _listed(api, "limit=2&offset=2") == (
        [ten, eleven],
        {"total": 4, "limit": 2, "offset": 2, "has_more": False},
    )
    await _cancel(api, nine)  # leaves the confirmed list: every later one moves up
    pages = [await _listed(api, f"status=confirmed&limit=2&offset={at}") for at in (0, 2)]
    assert [ids for ids, _ in pages] == [[half_nine, ten], [eleven]]
    assert [pagination["total"] for _, pagination in pages] == [3, 3]
    await _persist(api, nine, half_nine)  # once SQL has it all, the same pages
    assert [await _listed(api, f"status=confirmed&limit=2&offset={at}") for at in (0, 2)] == pages


def _redis_writes() -> float:
    """Writes to Redis by the auto-pipelining client: one per round trip."""
    return REGISTRY.get_sample_value("holds_redis_pipeline_batch_commands_count") or 0.0


async def test_list_reads_the_backlogs_of_every_clinician_in_one_round_trip(api: Api) -> None:
    await _book(api, "09:00")
    await _book(api, "08:00", kind=FOLLOW_UP, clinician=TOM, location=None)
    await _listed(api, "")  # the script is loaded now
    before = _redis_writes()
    await api.call("GET", "/clinicians")  # what any request costs (the rate limit)
    per_request = _redis_writes() - before
    before = _redis_writes()
    listed, _ = await _listed(api, "")
    assert len(listed) == 2
    assert _redis_writes() - before == per_request + 1


async def test_a_backlog_beyond_the_engines_parameter_limits_is_still_left_out(
    database_url: str,
) -> None:
    await seed_database(database_url)
    kept, left_out = confirmed_appointment(0), confirmed_appointment(1)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with sessions.begin() as session:
            for appointment in (kept, left_out):
                await appointments_repo.save(session, appointment)
        backlog = {left_out.id} | {new_id("apt") for _ in range(40_000)}
        async with sessions() as session:
            found, total = await appointments_repo.find(
                session, ORG, AppointmentFilter(), 20, 0, excluding=backlog
            )
    finally:
        await engine.dispose()
    assert ([appointment.id for appointment in found], total) == ([kept.id], 1)


@given(
    everything=st.sets(st.integers(0, 60), max_size=40),
    pending_share=st.integers(0, 100),
    offset=st.integers(0, 45),
    limit=st.integers(1, 12),
)
def test_merged_page_is_that_page_of_the_whole_sorted_list(
    everything: set[int], pending_share: int, offset: int, limit: int
) -> None:
    """Pure logic: the page arithmetic, for every split between the two sources."""
    ordered = sorted(everything)
    small = [item for item in ordered if item * 37 % 101 < pending_share]
    large = [item for item in ordered if item not in small]
    at = window(offset, limit, len(small))
    rows = large[at.offset : at.offset + at.limit]
    page = merged_page(rows, at, small, Window(offset, limit), key=lambda item: item)
    assert page == ordered[offset : offset + limit]
