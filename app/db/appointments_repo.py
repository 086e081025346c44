"""SQL access for appointments: idempotent saves guarded by version, reads, and restores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import AppointmentRow
from app.domain.records import Appointment, BookingDetails
from app.domain.slots import Interval
from app.ids import tag_of


@dataclass(frozen=True, slots=True)
class AppointmentFilter:
    clinician_id: str | None = None
    patient_id: str | None = None
    status: str | None = None
    start_date: date | None = None  # compared with the start's UTC date, both inclusive
    end_date: date | None = None


async def save(session: AsyncSession, appointment: Appointment) -> str | None:
    """Write this version unless SQL has it or a newer one; safe to run any number of times.

    Returns the id of an overlapping confirmed appointment SQL already had (the row is then
    kept, marked as conflicting, outside the no-overlap rule), else None.
    """
    row = await session.get(AppointmentRow, appointment.id)
    if row is not None and row.version >= appointment.version:
        return row.conflict_with
    conflict = row.conflict_with if row is not None else None
    if row is None and appointment.status == "confirmed":
        conflict = await _overlapping(session, appointment)
    values = _row_values(appointment, conflict)
    if row is None:
        session.add(AppointmentRow(**values))
    else:
        for field, value in values.items():
            setattr(row, field, value)
    await session.flush()  # constraint violations surface here, inside the caller's transaction
    return conflict


async def _overlapping(session: AsyncSession, appointment: Appointment) -> str | None:
    query = select(AppointmentRow.id).where(
        AppointmentRow.clinician_id == appointment.clinician_id,
        AppointmentRow.status == "confirmed",
        AppointmentRow.conflict_with.is_(None),
        AppointmentRow.occupied_start < appointment.occupied.end,
        AppointmentRow.occupied_end > appointment.occupied.start,
        AppointmentRow.id != appointment.id,
    )
    if appointment.session_key is not None:  # seats of one session may share their time
        query = query.where(
            or_(
                AppointmentRow.session_key.is_(None),
                AppointmentRow.session_key != appointment.session_key,
            )
        )
    return await session.scalar(query.limit(1))


def _row_values(appointment: Appointment, conflict: str | None) -> dict[str, Any]:
    booking = appointment.booking
    return {
        "id": appointment.id,
        "org_id": appointment.org_id,
        "shard_tag": tag_of(appointment.id),
        "hold_id": appointment.hold_id,
        "patient_id": booking.patient_id,
        "clinician_id": appointment.clinician_id,
        "appointment_type_id": appointment.appointment_type_id,
        "location_id": appointment.location_id,
        "start_time": appointment.start_time,
        "end_time": appointment.end_time,
        "occupied_start": appointment.occupied.start,
        "occupied_end": appointment.occupied.end,
        "status": appointment.status,
        "attendee_name": booking.attendee_name,
        "attendee_email": booking.attendee_email,
        "attendee_phone": booking.attendee_phone,
        "notes": booking.notes,
        "cancel_reason": appointment.cancel_reason,
        "conflict_with": conflict,
        "session_key": appointment.session_key,
        "version": appointment.version,
        "created_at": appointment.created_at,
        "updated_at": appointment.updated_at,
    }


def to_domain(row: AppointmentRow) -> Appointment:
    return Appointment(
        id=row.id,
        org_id=row.org_id,
        hold_id=row.hold_id,
        appointment_type_id=row.appointment_type_id,
        clinician_id=row.clinician_id,
        location_id=row.location_id,
        start_time=row.start_time,
        end_time=row.end_time,
        status=row.status,
        booking=BookingDetails(
            patient_id=row.patient_id,
            attendee_name=row.attendee_name,
            attendee_email=row.attendee_email,
            attendee_phone=row.attendee_phone,
            notes=row.notes,
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
        occupied=Interval(row.occupied_start, row.occupied_end),
        version=row.version,
        persisted_version=row.version,
        cancel_reason=row.cancel_reason,
        conflict_with=row.conflict_with,
        session_key=row.session_key,
    )


async def get(session: AsyncSession, org_id: str, appointment_id: str) -> Appointment | None:
    row = await session.get(AppointmentRow, appointment_id)
    return to_domain(row) if row is not None and row.org_id == org_id else None


async def find(
    session: AsyncSession, org_id: str, where: AppointmentFilter, limit: int, offset: int
) -> tuple[list[Appointment], int]:
    """One page of an organisation's appointments by start time, and how many match in all."""
    query = _filtered(select(AppointmentRow).filter_by(org_id=org_id), where)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    page = query.order_by(AppointmentRow.start_time, AppointmentRow.id).limit(limit).offset(offset)
    rows = await session.scalars(page)
    return [to_domain(row) for row in rows], int(total or 0)


def _filtered(query: Select[Any], where: AppointmentFilter) -> Any:
    for field in ("clinician_id", "patient_id", "status"):
        value = getattr(where, field)
        if value is not None:
            query = query.where(getattr(AppointmentRow, field) == value)
    if where.start_date is not None:
        query = query.where(AppointmentRow.start_time >= _midnight(where.start_date))
    if where.end_date is not None:
        query = query.where(AppointmentRow.start_time < _midnight(where.end_date, next_day=True))
    return query


def _midnight(day: date, next_day: bool = False) -> datetime:
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return moment + timedelta(days=1) if next_day else moment


async def restorable(session: AsyncSession, tag: str, now: datetime) -> list[Appointment]:
    """Confirmed appointments of a hash tag that still occupy time, to give back to Redis."""
    query = select(AppointmentRow).where(
        AppointmentRow.shard_tag == tag,
        AppointmentRow.status == "confirmed",
        AppointmentRow.conflict_with.is_(None),
        AppointmentRow.occupied_end > now,
    )
    return [to_domain(row) for row in await session.scalars(query)]
