"""SQL access for appointments: idempotent saves guarded by version, reads, and restores."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, String, all_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
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

    def admits(self, appointment: Appointment) -> bool:
        """Whether the appointment matches, by the same rule as the SQL query (`_filtered`)."""
        found = {
            "clinician_id": appointment.clinician_id,
            "patient_id": appointment.booking.patient_id,
            "status": appointment.status,
        }
        for field, value in found.items():
            wanted = getattr(self, field)
            if wanted is not None and wanted != value:
                return False
        if self.start_date is not None and appointment.start_time < _midnight(self.start_date):
            return False
        end = self.end_date
        return end is None or appointment.start_time < _midnight(end, next_day=True)


# A new appointment is checked against at most this many overlapping rows: in normal operation
# there are none, and each is looked up in Redis.
OVERLAP_CANDIDATES = 10


async def save(
    session: AsyncSession, appointment: Appointment, conflict: str | None = None
) -> str | None:
    """Upsert this version unless SQL has a newer one; safe to run any number of times, and
    concurrently: two jobs for successive versions never collide, the newer version wins.

    `conflict` is the mark decided for a confirmed version (None: no overlap); a cancelled
    version keeps the row's mark. Returns the row's mark as SQL now has it.
    """
    values = _row_values(appointment, conflict)
    insert = _dialect_insert(session)(AppointmentRow).values(**values)
    kept = {"id"} if appointment.status == "confirmed" else {"id", "conflict_with"}
    newer = AppointmentRow.version < insert.excluded.version
    if appointment.status == "confirmed":  # the same version again: its mark was decided anew
        newer = AppointmentRow.version <= insert.excluded.version
    upsert = insert.on_conflict_do_update(
        index_elements=[AppointmentRow.id],
        set_={name: insert.excluded[name] for name in values if name not in kept},
        where=newer,
    )
    # Constraint violations (the PostgreSQL exclusion rule) surface here, in the caller's
    # transaction.
    await session.execute(upsert)
    mark = select(AppointmentRow.conflict_with).where(AppointmentRow.id == appointment.id)
    return await session.scalar(mark)


def _dialect_insert(session: AsyncSession) -> Any:
    """The engine's own INSERT, which has ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


async def overlapping(session: AsyncSession, appointment: Appointment) -> list[Appointment]:
    """SQL's confirmed, unmarked appointments of the clinician that overlap this one."""
    query = select(AppointmentRow).where(
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
    return await _rows(session, query.order_by(AppointmentRow.id).limit(OVERLAP_CANDIDATES))


async def marked_with(session: AsyncSession, appointment_id: str) -> list[Appointment]:
    """Confirmed appointments marked as conflicting with this one."""
    query = select(AppointmentRow).where(
        AppointmentRow.conflict_with == appointment_id, AppointmentRow.status == "confirmed"
    )
    return await _rows(session, query.order_by(AppointmentRow.id))


async def set_conflict(session: AsyncSession, appointment_id: str, conflict: str | None) -> None:
    """Mark (or clear the mark of) an appointment, whatever its version."""
    await session.execute(
        update(AppointmentRow)
        .where(AppointmentRow.id == appointment_id)
        .values(conflict_with=conflict)
    )


async def _rows(session: AsyncSession, query: Select[Any]) -> list[Appointment]:
    # populate_existing: this transaction may have rewritten rows the session loaded before.
    rows = await session.scalars(query.execution_options(populate_existing=True))
    return [to_domain(row) for row in rows]


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
    session: AsyncSession,
    org_id: str,
    where: AppointmentFilter,
    limit: int,
    offset: int,
    excluding: Collection[str] = (),
) -> tuple[list[Appointment], int]:
    """One page of an organisation's appointments by (start time, id), and how many match in
    all, leaving out the ids `excluding` names (their newer versions are elsewhere)."""
    query = _filtered(select(AppointmentRow).filter_by(org_id=org_id), where)
    if excluding:
        query = query.where(_none_of(session, sorted(excluding)))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    page = query.order_by(AppointmentRow.start_time, AppointmentRow.id).limit(limit).offset(offset)
    rows = await session.scalars(page)
    return [to_domain(row) for row in rows], int(total or 0)


def _none_of(session: AsyncSession, ids: list[str]) -> ColumnElement[bool]:
    """`id NOT IN ids` with the ids as one bound value: an organisation's backlog may hold more
    ids than an engine takes parameters (asyncpg: 32,767; SQLite builds: 32,766 by default)."""
    if session.get_bind().dialect.name == "postgresql":
        return AppointmentRow.id != all_(bindparam("excluded", ids, type_=postgresql.ARRAY(String)))
    listed = func.json_each(bindparam("excluded", json.dumps(ids))).table_valued("value")
    return AppointmentRow.id.not_in(select(listed.c.value))


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
