"""SQL access for the catalog and patients."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.domain import catalog as domain
from app.fields import parse_time
from app.ids import shard_tag

Change = Literal["created", "updated", "unchanged"]
CatalogModel = type[models.Location] | type[models.Clinician] | type[models.AppointmentType]


async def fetch_org_catalog(session: AsyncSession, org_id: str) -> domain.OrgCatalog | None:
    """One organisation's whole catalog, as the API keeps it in memory."""
    org = await session.get(models.Organization, org_id)
    if org is None:
        return None
    locations = await session.scalars(select(models.Location).filter_by(org_id=org_id))
    clinicians = await session.scalars(select(models.Clinician).filter_by(org_id=org_id))
    kinds = await session.scalars(select(models.AppointmentType).filter_by(org_id=org_id))
    return domain.OrgCatalog(
        version=org.updated_at,
        org_id=org.id,
        name=org.name,
        timezone=org.timezone,
        locations={row.id: _location(row) for row in sorted(locations, key=lambda r: r.id)},
        clinicians={row.id: _clinician(row) for row in sorted(clinicians, key=lambda r: r.id)},
        appointment_types={row.id: _kind(row) for row in sorted(kinds, key=lambda r: r.id)},
    )


def _location(row: models.Location) -> domain.Location:
    return domain.Location(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        is_active=row.is_active,
        address_line_1=row.address_line_1,
        city=row.city,
        postcode=row.postcode,
        country=row.country,
    )


def _clinician(row: models.Clinician) -> domain.Clinician:
    return domain.Clinician(
        id=row.id,
        first_name=row.first_name,
        last_name=row.last_name,
        title=row.title,
        role=row.role,
        is_active=row.is_active,
        schedule=tuple(_block(block) for block in row.schedule),
        time_off=tuple(_time_off(entry) for entry in row.time_off),
    )


def _block(block: dict[str, Any]) -> domain.ScheduleBlock:
    return domain.ScheduleBlock(
        weekday=domain.WEEKDAYS.index(block["weekday"]),
        start=parse_time(block["start"]),
        end=parse_time(block["end"]),
        location_id=block.get("location_id"),
    )


def _time_off(entry: dict[str, Any]) -> domain.TimeOff:
    return domain.TimeOff(
        start=datetime.fromisoformat(entry["start"]),
        end=datetime.fromisoformat(entry["end"]),
        reason=entry.get("reason"),
    )


def _kind(row: models.AppointmentType) -> domain.AppointmentType:
    return domain.AppointmentType(
        id=row.id,
        name=row.name,
        description=row.description,
        duration_minutes=row.duration_minutes,
        slot_interval_minutes=row.slot_interval_minutes or row.duration_minutes,
        buffer_before_minutes=row.buffer_before_minutes,
        buffer_after_minutes=row.buffer_after_minutes,
        booking_notice_hours=row.booking_notice_hours,
        max_group_size=row.max_group_size,
        allow_online_booking=row.allow_online_booking,
        is_active=row.is_active,
        price=row.price,
        currency=row.currency,
        clinician_ids=tuple(row.clinician_ids),
    )


async def owners(session: AsyncSession, model: Any, ids: set[str]) -> dict[str, str]:
    """The organisation owning each of `ids` that exists, for cross-tenant checks."""
    if not ids:
        return {}
    rows = await session.execute(select(model.id, model.org_id).where(model.id.in_(ids)))
    return {row_id: org_id for row_id, org_id in rows}


async def upsert(session: AsyncSession, model: Any, values: dict[str, Any]) -> Change:
    """Create the row or bring it to `values`; says which, so the loader can report it."""
    row = await session.get(model, values["id"])
    if row is None:
        session.add(model(**values))
        return "created"
    changed = {key: value for key, value in values.items() if getattr(row, key) != value}
    for key, value in changed.items():
        setattr(row, key, value)
    return "updated" if changed else "unchanged"


async def clinician_tags(session: AsyncSession) -> dict[str, str]:
    """Every clinician's shard tag: where the workers look for their holds and appointments."""
    rows = await session.execute(select(models.Clinician.id, models.Clinician.org_id))
    return {clinician_id: shard_tag(org_id, clinician_id) for clinician_id, org_id in rows}


async def touch_org(session: AsyncSession, org_id: str) -> None:
    """Mark the organisation's catalog as changed, so API processes reload their copy."""
    org = await session.get(models.Organization, org_id)
    if org is not None:
        org.updated_at = datetime.now(UTC)


async def catalog_version(session: AsyncSession, org_id: str) -> datetime | None:
    """When anything in the organisation's catalog last changed (None: no such organisation)."""
    return await session.scalar(
        select(models.Organization.updated_at).where(models.Organization.id == org_id)
    )
