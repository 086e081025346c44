"""SQL access for patients."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Patient


async def exists(session: AsyncSession, org_id: str, patient_id: str) -> bool:
    found = await session.scalar(
        select(func.count()).select_from(Patient).filter_by(id=patient_id, org_id=org_id)
    )
    return bool(found)


async def get(session: AsyncSession, org_id: str, patient_id: str) -> Patient | None:
    row = await session.get(Patient, patient_id)
    return row if row is not None and row.org_id == org_id else None


async def page(
    session: AsyncSession, org_id: str, limit: int, offset: int
) -> tuple[list[Patient], int]:
    query = select(Patient).filter_by(org_id=org_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Patient.last_name, Patient.first_name, Patient.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


def add(session: AsyncSession, patient: Patient) -> None:
    session.add(patient)
