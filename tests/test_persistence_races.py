"""Persistence when changes reach SQL out of order: successive versions of one appointment
written at once, and a cancellation that reaches SQL after the booking that reused its slot;
and persistence after a job was cut short inside its transaction."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text

from app.db import appointments_repo
from app.db.engine import create_engine, session_factory
from app.domain.appointments import AppointmentService
from app.domain.records import Appointment
from app.web.state import APPOINTMENTS
from tests.conftest import Api, MakeApi, seed_database, sql_rows
from tests.helpers import confirm_body, confirmed_appointment, hold_body


def _cancelled(appointment: Appointment) -> Appointment:
    return replace(appointment, status="cancelled", version=appointment.version + 1)


async def _rows(database_url: str, appointment_id: str) -> list[Any]:
    return await sql_rows(
        database_url,
        "SELECT status, version, conflict_with FROM appointments WHERE id = :id",
        id=appointment_id,
    )


async def test_successive_versions_saved_together_leave_the_newer_without_error(
    database_url: str,
) -> None:
    await seed_database(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)

    async def save(appointment: Appointment) -> None:
        async with sessions.begin() as session:
            await appointments_repo.save(session, appointment)

    try:
        confirmed = [confirmed_appointment(hours_later=i) for i in range(6)]
        # Each pair races on one new row; half start with the older version, half the newer.
        pairs = [
            (first, _cancelled(first)) if i % 2 else (_cancelled(first), first)
            for i, first in enumerate(confirmed)
        ]
        await asyncio.gather(*(save(version) for pair in pairs for version in pair))
    finally:
        await engine.dispose()
    for appointment in confirmed:
        rows = await _rows(database_url, appointment.id)
        assert [(row.status, row.version) for row in rows] == [("cancelled", 2)]


# A statement that runs for about a second inside the transaction, as a slow query would.
_SLOW_STATEMENT = {  # far longer than the test's 0.2 s wait: about 1.3 s of SQLite on a fast core
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000000)"
    " SELECT max(i) FROM n",
    "postgresql": "SELECT pg_sleep(1)",
}


async def test_job_cancelled_mid_statement_leaves_the_next_write_unblocked(
    database_url: str,
) -> None:
    """A persist job cancelled (its timeout, or its worker stopping) while a statement of its
    transaction runs: its write is rolled back, and the next job's write commits at once rather
    than waiting on a lock the cancelled one kept."""
    await seed_database(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    appointment = confirmed_appointment()
    in_statement = asyncio.Event()

    async def cut_short_job() -> None:
        async with sessions.begin() as session:
            await appointments_repo.save(session, appointment)
            in_statement.set()
            await session.execute(text(_SLOW_STATEMENT[engine.dialect.name]))

    try:
        job = asyncio.create_task(cut_short_job())
        await in_statement.wait()
        await asyncio.sleep(0.2)  # the slow statement is under way
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert await _rows(database_url, appointment.id) == []  # its write never committed
        async with asyncio.timeout(10):  # far below the 30 s lock wait
            async with sessions.begin() as session:
                await appointments_repo.save(session, _cancelled(appointment))
    finally:
        await engine.dispose()
    rows = await _rows(database_url, appointment.id)
    assert [(row.status, row.version) for row in rows] == [("cancelled", 2)]


async def _book(api: Api, start_time: str = "09:00") -> str:
    status, hold = await api.call("POST", "/holds", hold_body(start_time))
    assert status == 201, hold
    status, booked = await api.call("POST", f"/holds/{hold['data']['id']}/confirm", confirm_body())
    assert status == 201, booked
    appointment_id: str = booked["data"]["id"]
    return appointment_id


def _service(api: Api) -> AppointmentService:
    return api.client.app[APPOINTMENTS]  # type: ignore[index,no-any-return]


async def test_rebooking_persisted_before_the_cancel_it_follows_is_not_a_conflict(
    make_api: MakeApi, database_url: str
) -> None:
    api = await make_api(database_url=database_url)
    first = await _book(api)
    await _service(api).persist(first)
    assert (await api.call("POST", f"/appointments/{first}/cancel", {}))[0] == 200
    second = await _book(api)  # the slot the cancel freed
    await _service(api).persist(second)  # before the cancel reaches SQL
    # The cancel Redis had was written along with the booking that depends on it.
    assert [tuple(r) for r in await _rows(database_url, first)] == [("cancelled", 2, None)]
    await _service(api).persist(first)  # the delayed cancel
    assert [tuple(r) for r in await _rows(database_url, second)] == [("confirmed", 1, None)]
    assert [tuple(r) for r in await _rows(database_url, first)] == [("cancelled", 2, None)]
    _, shown = await api.call("GET", f"/appointments/{second}")
    assert shown["data"]["conflicting_appointment_id"] is None
    assert shown["data"]["persisted"] is True


async def test_rebooking_persisted_while_the_cancel_commits_slowly_is_not_a_conflict(
    make_api: MakeApi, database_url: str
) -> None:
    api = await make_api(database_url=database_url)
    first = await _book(api)
    await _service(api).persist(first)
    await api.call("POST", f"/appointments/{first}/cancel", {})
    second = await _book(api)
    service = _service(api)
    slow = AppointmentService(
        service.store, service.sessions, retention_seconds=60, pause_before_commit=0.5
    )

    async def rebooking_persisted_meanwhile() -> None:
        await asyncio.sleep(0.2)  # the cancel's transaction is open, not yet committed
        await service.persist(second)

    await asyncio.gather(slow.persist(first), rebooking_persisted_meanwhile())
    assert [tuple(r) for r in await _rows(database_url, second)] == [("confirmed", 1, None)]
    assert [tuple(r) for r in await _rows(database_url, first)] == [("cancelled", 2, None)]


async def _real_conflict(api: Api, database_url: str) -> tuple[str, str]:
    """An SQL-only booking Redis never heard of, and a booking over it through Redis."""
    await api.call("POST", "/holds", hold_body("15:00"))  # Redis now knows this tag from SQL
    existing = confirmed_appointment()
    engine = create_engine(database_url)
    async with session_factory(engine).begin() as session:
        await appointments_repo.save(session, existing)
    await engine.dispose()
    overlapping = await _book(api)
    await _service(api).persist(overlapping)
    return existing.id, overlapping


async def test_real_conflict_stays_marked_when_persisted_again(
    make_api: MakeApi, database_url: str
) -> None:
    api = await make_api(database_url=database_url)
    existing, overlapping = await _real_conflict(api, database_url)
    await _service(api).persist(overlapping)
    assert [r.conflict_with for r in await _rows(database_url, overlapping)] == [existing]
    _, shown = await api.call("GET", f"/appointments/{overlapping}")
    assert shown["data"]["conflicting_appointment_id"] == existing


async def test_conflict_mark_is_cleared_once_the_row_it_names_is_cancelled(
    make_api: MakeApi, database_url: str
) -> None:
    api = await make_api(database_url=database_url)
    existing, overlapping = await _real_conflict(api, database_url)
    assert (await api.call("POST", f"/appointments/{existing}/cancel", {}))[0] == 200
    await _service(api).persist(existing)
    assert [r.conflict_with for r in await _rows(database_url, overlapping)] == [None]
    _, shown = await api.call("GET", f"/appointments/{overlapping}")
    assert shown["data"]["conflicting_appointment_id"] is None


async def test_stale_mark_is_cleared_on_the_next_persist_of_the_marked_row(
    make_api: MakeApi, database_url: str
) -> None:
    api = await make_api(database_url=database_url)
    first = await _book(api)
    await api.call("POST", f"/appointments/{first}/cancel", {})
    await _service(api).persist(first)
    second = await _book(api)
    await _service(api).persist(second)
    engine = create_engine(database_url)  # a mark left by an earlier, wrong decision
    async with session_factory(engine).begin() as session:
        await appointments_repo.set_conflict(session, second, first)
    await engine.dispose()
    await _service(api).persist(second)
    assert [r.conflict_with for r in await _rows(database_url, second)] == [None]


async def test_a_late_record_of_an_older_version_leaves_the_newer_persisted(
    api: Api,
) -> None:
    appointment_id = await _book(api)
    confirmed = await _service(api).store.get(appointment_id)
    assert confirmed is not None
    await api.call("POST", f"/appointments/{appointment_id}/cancel", {})
    await _service(api).persist(appointment_id)  # the cancel's job finishes first
    await _service(api).store.mark_persisted(confirmed, None, 2_000_000_000)  # then the confirm's
    _, shown = await api.call("GET", f"/appointments/{appointment_id}")
    assert (shown["data"]["status"], shown["data"]["persisted"]) == ("cancelled", True)
