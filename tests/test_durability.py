"""SQL as the second line of defence, and the keyspace-event listener on its own."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from sqlalchemy.exc import IntegrityError

from app.config import Settings
from app.db import appointments_repo
from app.db.engine import create_engine, session_factory
from app.db.models import AppointmentRow
from app.domain.records import Appointment
from app.ids import tag_of
from app.store import keys
from app.web.state import APPOINTMENTS
from tests.conftest import MakeApi, eventually, seed_database, sql_rows
from tests.helpers import confirm_body, confirmed_appointment, hold_body
from workers import expiry
from workers.context import WorkerContext


async def _save(database_url: str, appointment: Appointment) -> str | None:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine).begin() as session:
            return await appointments_repo.save(session, appointment)
    finally:
        await engine.dispose()


async def test_conflict_found_at_persistence_is_kept_marked_and_visible(
    make_api: MakeApi, database_url: str
) -> None:
    api = await make_api(database_url=database_url)
    await api.call("POST", "/holds", hold_body("15:00"))  # Redis now knows this tag from SQL
    existing = confirmed_appointment()
    await _save(database_url, existing)  # SQL gains a booking Redis never heard of
    _, hold = await api.call("POST", "/holds", hold_body("09:00"))
    _, booked = await api.call("POST", f"/holds/{hold['data']['id']}/confirm", confirm_body())
    conflicts_before = REGISTRY.get_sample_value("holds_persistence_conflicts_total") or 0
    await api.client.app[APPOINTMENTS].persist(booked["data"]["id"])  # type: ignore[index]
    _, fetched = await api.call("GET", f"/appointments/{booked['data']['id']}")
    assert fetched["data"]["conflicting_appointment_id"] == existing.id
    assert fetched["data"]["persisted"] is True
    conflicts_after = REGISTRY.get_sample_value("holds_persistence_conflicts_total")
    assert conflicts_after == conflicts_before + 1
    rows = await sql_rows(
        database_url,
        "SELECT conflict_with FROM appointments WHERE id = :id",
        id=booked["data"]["id"],
    )
    assert [row.conflict_with for row in rows] == [existing.id]


async def test_postgresql_refuses_overlapping_confirmed_rows(postgres_url: str) -> None:
    await seed_database(postgres_url)
    await _save(postgres_url, confirmed_appointment())
    engine = create_engine(postgres_url)
    with pytest.raises(IntegrityError):
        async with session_factory(engine).begin() as session:
            session.add(
                AppointmentRow(**appointments_repo._row_values(confirmed_appointment(), None))
            )
    await engine.dispose()


async def test_keyspace_event_of_holds_expiring_together_starts_their_cleanup(
    make_api: MakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep that would wait half a minute cleans up at once when the shared expiry tick of
    the holds' second expires."""
    monkeypatch.setattr(expiry, "_until_next_sweep", lambda: 30.0)
    api = await make_api(hold_ttl_seconds=2)
    settings = Settings(redis_url=api.settings.redis_url, database_url=api.settings.database_url)
    worker = await WorkerContext.open(settings)
    listener = asyncio.create_task(expiry.listen(worker))
    sweep = asyncio.create_task(expiry.sweep(worker))
    client = aioredis.Redis.from_url(api.settings.redis_url, decode_responses=True)
    try:
        await asyncio.sleep(0.3)  # subscribed
        created = await asyncio.gather(
            *(api.call("POST", "/holds", hold_body(at)) for at in ("09:00", "09:30", "10:00"))
        )
        hold_ids = [hold["data"]["id"] for _, hold in created]
        ticks = [key async for key in client.scan_iter(match="holds:*:ttl:*")]
        # One clinician, created within a second or two: one or two shared ticks, not three.
        assert 1 <= len(ticks) < len(hold_ids)

        async def all_cleaned() -> bool:
            return await client.zcard(keys.expiries(tag_of(hold_ids[0]))) == 0

        await eventually(all_cleaned, within=6)
    finally:
        await client.aclose()
        listener.cancel()
        sweep.cancel()
        await worker.close()
