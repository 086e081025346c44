"""Appointments across their two homes: Redis (live, at once) and SQL (durable, for good)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import ids, metrics
from app.db import appointments_repo
from app.db.appointments_repo import AppointmentFilter
from app.domain import attempts
from app.domain.catalog import OrgCatalog
from app.domain.pages import Window, merged_page, window
from app.domain.records import Appointment
from app.errors import IdempotencyKeyInUse, NotFound
from app.queue import PersistQueue
from app.store.appointments import AppointmentStore

log = logging.getLogger("holds.appointments")


class AppointmentService:
    def __init__(
        self,
        store: AppointmentStore,
        sessions: async_sessionmaker[AsyncSession],
        queue: PersistQueue | None = None,
        *,
        retention_seconds: int,
        pause_before_commit: float = 0.0,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.queue = queue
        self.retention = timedelta(seconds=retention_seconds)
        self.pause_before_commit = pause_before_commit  # fault tests: a window to kill a worker
        self._restoring: dict[str, asyncio.Future[int]] = {}

    async def get(self, org_id: str, appointment_id: str) -> Appointment:
        """Redis first (it has changes SQL may not have yet), SQL when Redis lacks it."""
        if ids.is_valid("apt", appointment_id):
            found = await self.store.get(appointment_id)
            if found is None:
                async with self.sessions() as session:
                    found = await appointments_repo.get(session, org_id, appointment_id)
            if found is not None and found.org_id == org_id:
                return found
        raise NotFound("No such appointment.")

    async def find(
        self, catalog: OrgCatalog, where: AppointmentFilter, page: Window
    ) -> tuple[list[Appointment], int]:
        """One page of the organisation's appointments by (start time, id), and how many match,
        with every change that was answered, persisted or not: SQL's rows with the newer
        versions the tags' backlogs hold in their place."""
        clinicians = [where.clinician_id] if where.clinician_id else list(catalog.clinicians)
        tags = {ids.shard_tag(catalog.org_id, clinician) for clinician in clinicians}
        # Redis before SQL: a change persisted in between is then in both, and Redis' wins.
        # The other order could miss a change that left the backlog after SQL was read.
        unpersisted = await self.store.pending(catalog.org_id, tags)
        matching = [appointment for appointment in unpersisted if where.admits(appointment)]
        at = window(page.offset, page.limit, len(matching))
        async with self.sessions() as session:
            rows, total = await appointments_repo.find(
                session,
                catalog.org_id,
                where,
                at.limit,
                at.offset,
                excluding={appointment.id for appointment in unpersisted},
            )
        found = merged_page(rows, at, matching, page, key=_listing_order)
        return found, total + len(matching)

    async def cancel(self, org_id: str, appointment_id: str, reason: str | None) -> Appointment:
        """Cancel and free the slot at once; cancelling a cancelled appointment changes nothing."""
        before = await self.get(org_id, appointment_id)  # 404 unless it is this organisation's
        if attempts.recover_only():  # cancelling is idempotent: a cancel's outcome is its state
            if before.status != "cancelled":
                raise IdempotencyKeyInUse(
                    "A request with this Idempotency-Key is still in progress."
                )
            attempts.mark_replayed()
            return before
        cancelled = await self.store.cancel(org_id, appointment_id, reason)
        if cancelled is None:  # only SQL has it: give Redis its copy, then cancel there
            async with self.sessions() as session:
                row = await appointments_repo.get(session, org_id, appointment_id)
            if row is not None:
                await self.store.restore(ids.tag_of(appointment_id), [row], mark_ready=False)
            cancelled = await self.store.cancel(org_id, appointment_id, reason)
        if cancelled is None:
            raise NotFound("No such appointment.")
        if cancelled.version != before.version:
            metrics.APPOINTMENTS_CANCELLED.inc()
            await self.hand_to_workers(cancelled)
        return cancelled

    async def hand_to_workers(self, appointment: Appointment) -> None:
        """Queue persistence of the appointment's latest change. Should this fail, the change
        is still safe: it sits in the Redis backlog and the reconciler persists it."""
        if self.queue is None:
            return
        try:
            await self.queue.enqueue(appointment.id, appointment.version)
        except Exception:
            log.warning("could not queue persistence", extra={"appointment_id": appointment.id})

    async def persist(self, appointment_id: str) -> Appointment | None:
        """Write the Redis copy's latest version to SQL, idempotently; None if Redis has none."""
        appointment = await self.store.get(appointment_id)
        if appointment is None:
            return None
        remarked: dict[str, str | None] = {}
        async with self.sessions.begin() as session:
            conflict = None
            if appointment.status == "confirmed":
                conflict = await self._conflict_of(session, appointment)
            conflict = await appointments_repo.save(session, appointment, conflict)
            if appointment.status == "cancelled":
                remarked = await self._remark_conflicts_with(session, appointment.id)
            if self.pause_before_commit:
                await asyncio.sleep(self.pause_before_commit)
        metrics.PERSISTED.inc()
        if conflict is not None:
            metrics.PERSISTENCE_CONFLICTS.inc()
            log.error(
                "appointment overlaps one SQL already has; kept and marked",
                extra={"appointment_id": appointment.id, "conflict_with": conflict},
            )
        keep_until = max(appointment.end_time, datetime.now(UTC)) + self.retention
        await self.store.mark_persisted(
            appointment, conflict, int(keep_until.timestamp()), remarked
        )
        return replace(appointment, persisted_version=appointment.version, conflict_with=conflict)

    async def _conflict_of(self, session: AsyncSession, appointment: Appointment) -> str | None:
        """The confirmed appointment this one really overlaps, judged by latest versions.

        SQL may lag behind Redis, which is authoritative for live appointments: an overlapping
        row whose cancellation is still on its way is brought up to date here, in the same
        transaction, and is no conflict.
        """
        for candidate in await appointments_repo.overlapping(session, appointment):
            latest = await self.store.get(candidate.id)
            if latest is None or latest.version <= candidate.version:
                return candidate.id  # SQL's row is the latest: a real overlap
            if latest.status == "confirmed":
                return candidate.id
            await appointments_repo.save(session, latest)
        return None

    async def _remark_conflicts_with(
        self, session: AsyncSession, cancelled_id: str
    ) -> dict[str, str | None]:
        """Decide again the mark of every appointment marked as conflicting with one that is
        now cancelled: it no longer conflicts with that one (maybe with another)."""
        remarked: dict[str, str | None] = {}
        for marked in await appointments_repo.marked_with(session, cancelled_id):
            mark = await self._conflict_of(session, marked)
            await appointments_repo.set_conflict(session, marked.id, mark)
            remarked[marked.id] = mark
            log.warning(
                "conflict mark decided again",
                extra={"appointment_id": marked.id, "was": cancelled_id, "conflict_with": mark},
            )
        return remarked

    async def restore_tag(self, tag: str) -> int:
        """Give Redis every appointment of a hash tag that SQL has and Redis lost. Concurrent
        callers for one tag share one restore, so an emptied Redis does not stampede SQL."""
        running = self._restoring.get(tag)
        if running is None:
            running = asyncio.ensure_future(self._restore(tag))
            self._restoring[tag] = running
            running.add_done_callback(lambda _: self._restoring.pop(tag, None))
        return await asyncio.shield(running)

    async def _restore(self, tag: str) -> int:
        async with self.sessions() as session:
            rows = await appointments_repo.restorable(session, tag, datetime.now(UTC))
        restored = await self.store.restore(tag, rows, mark_ready=True)
        metrics.APPOINTMENTS_RESTORED.inc(restored)
        if restored:
            log.warning("restored appointments from SQL", extra={"tag": tag, "count": restored})
        return restored


def _listing_order(appointment: Appointment) -> tuple[datetime, str]:
    return appointment.start_time, appointment.id
