"""The benchmark's workload: one organisation, 100 clinicians bookable all day every day in
15-minute slots, a key to call it with, and a file of distinct hold requests."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from app.catalog.loader import load_catalog
from app.db import keys_repo
from app.db.engine import create_engine, migrate, session_factory

ORG = "org_00000000-0000-4000-8000-0000000000be"
KIND = "type_00000000-0000-4000-8000-0000000000be"
GROUP_KIND = "type_00000000-0000-4000-8000-0000000000bf"  # the same slots, 10 seats each
GROUP_SEATS = 10
CLINICIANS = 100
API_KEY_ID = "key_00000000-0000-4000-8000-0000000000be"  # as long as a real key's id
PATIENT = "pat_00000000-0000-4000-8000-0000000000be"  # whom the confirm phases book
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def clinician(n: int) -> str:
    return f"cli_00000000-0000-4000-8000-{n:012d}"


def catalog() -> dict[str, Any]:
    day_long = [{"weekday": d, "start": "00:00", "end": "23:45"} for d in DAYS]
    clinicians = [
        {"id": clinician(n), "first_name": "C", "last_name": str(n), "schedule": day_long}
        for n in range(CLINICIANS)
    ]
    kind = {"id": KIND, "name": "Bench", "duration_minutes": 15, "slot_interval_minutes": 15,
            "clinician_ids": [c["id"] for c in clinicians]}  # fmt: skip
    group = kind | {"id": GROUP_KIND, "name": "Bench class", "max_group_size": GROUP_SEATS}
    patient = {"id": PATIENT, "first_name": "P", "last_name": "Bench",
               "date_of_birth": "1990-01-01"}  # fmt: skip
    org = {"id": ORG, "name": "Bench", "timezone": "UTC", "clinicians": clinicians,
           "appointment_types": [kind, group], "patients": [patient]}  # fmt: skip
    return {"organizations": [org]}


def write_bodies(path: Path, kind: str = KIND, seats: int = 1, limit: int | None = None) -> None:
    """Every free 15-minute slot of the next week, one request body per line; each repeated
    `seats` times in a row (a group session filled seat by seat), `limit` lines at most."""
    lines = []
    for offset in range(2, 9):
        day = (date.today() + timedelta(days=offset)).isoformat()
        for minute in range(0, 23 * 60 + 30, 15):
            for n in range(CLINICIANS):
                lines += [json.dumps({
                    "appointment_type_id": kind, "clinician_id": clinician(n), "date": day,
                    "start_time": f"{minute // 60:02d}:{minute % 60:02d}",
                })] * seats  # fmt: skip
    path.write_text("\n".join(lines[:limit]))


async def prepare(database_url: str) -> str:
    """Migrate the database, load the catalog, and return a new key's secret."""
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = session_factory(engine)
    await load_catalog(sessions, json.dumps(catalog()))
    async with sessions.begin() as session:
        created = await keys_repo.create_key(session, ORG, ["write_holds"], "bench", True)
    await engine.dispose()
    return created.secret


def time_at(first: date, index: int) -> datetime:
    midnight = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return midnight + timedelta(minutes=15 * index)
