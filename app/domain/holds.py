"""The Holds API's decisions: which slot a request means, and what each hold transition returns."""

from __future__ import annotations

import dataclasses
import logging
import os

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import client_secrets, ids, metrics
from app.catalog.cache import CatalogCache
from app.clock import Clock
from app.db import patients_repo
from app.domain import attempts
from app.domain.appointments import AppointmentService
from app.domain.catalog import AppointmentType, Clinician, OrgCatalog
from app.domain.limits import Limits
from app.domain.principal import Principal
from app.domain.records import Appointment, BookingDetails, Hold
from app.domain.slots import occupied_interval, requested_slot, session_key
from app.errors import (
    HoldAlreadyConfirmed,
    HoldConfirmed,
    HoldExpired,
    HoldExtensionLimit,
    HoldNotFound,
    HoldReleased,
    HoldsError,
    IdempotencyKeyInUse,
    ResourceMissing,
    SlotNotOffered,
    SlotUnavailable,
)
from app.schemas import HoldConfirm, HoldCreate
from app.store.holds import (
    Confirmed,
    Created,
    HoldStore,
    InProgress,
    NewHold,
    NotRestored,
    Taken,
)

log = logging.getLogger("holds.holds")

# What each losing outcome of a store script means to the caller.
_RELEASE_REFUSALS: dict[str, tuple[type[HoldsError], str]] = {
    "not_found": (HoldNotFound, "No such hold."),
    "expired": (HoldExpired, "This hold has expired; its slot is free again."),
    "confirmed": (HoldConfirmed, "This hold is confirmed; cancel the appointment instead."),
}
_EXTEND_REFUSALS: dict[str, tuple[type[HoldsError], str]] = {
    "not_found": (HoldNotFound, "No such hold."),
    "expired": (HoldExpired, "This hold has expired; create a new hold."),
    "released": (HoldReleased, "This hold was released; create a new hold."),
    "confirmed": (HoldConfirmed, "This hold is confirmed already."),
    "limit": (HoldExtensionLimit, "This hold has reached its longest lifetime."),
}
_CONFIRM_REFUSALS: dict[str, tuple[type[HoldsError], str]] = {
    "not_found": (HoldNotFound, "No such hold."),
    "expired": (HoldExpired, "This hold has expired; create a new hold."),
    "released": (HoldReleased, "This hold was released; create a new hold."),
    "already_confirmed": (HoldAlreadyConfirmed, "This hold is already confirmed."),
}
_IN_PROGRESS = "A request with this Idempotency-Key is still in progress."


class HoldService:
    def __init__(
        self,
        store: HoldStore,
        catalogs: CatalogCache,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        appointments: AppointmentService,
        limits: Limits,
        *,
        exit_after_confirm_commit: bool = False,
    ) -> None:
        self.store = store
        self.catalogs = catalogs
        self.sessions = sessions
        self.clock = clock
        self.appointments = appointments
        self.limits = limits
        self.exit_after_confirm_commit = exit_after_confirm_commit

    async def create(self, principal: Principal, request: HoldCreate) -> Hold:
        """Hold the requested slot for this caller, or say why it cannot be held."""
        catalog = await self.catalogs.get(principal.org_id)
        kind, clinician = _resolve(catalog, request)
        hold_id = _new_id("hold", ids.shard_tag(principal.org_id, clinician.id))
        secret = client_secrets.new()
        try:
            slot = requested_slot(
                catalog,
                kind,
                clinician,
                request.date,
                request.start_time,
                request.location_id,
                self.clock.now(),
            )
        except SlotNotOffered:
            # A retry may come after the slot's booking notice began: its first attempt's
            # hold still answers it, not this refusal.
            made = await self._made_earlier(principal, hold_id)
            if made is None:
                raise
            return await self._with_new_secret(made, secret)
        new_hold = NewHold(
            id=hold_id,
            org_id=principal.org_id,
            api_key_id=principal.key_id,
            appointment_type_id=kind.id,
            clinician_id=clinician.id,
            location_id=slot.location_id,
            start_time=slot.start,
            end_time=slot.end,
            occupied=occupied_interval(slot.start, slot.end, kind),
            session_key=session_key(kind, slot.start, slot.location_id),
            seats=kind.max_group_size,
            secret_hash=client_secrets.digest(secret),
            client_secret=secret,
        )
        await self.limits.admit(principal, new_hold_id=hold_id)
        outcome: Created | Taken | NotRestored | InProgress | None = None
        try:
            outcome = await self._create(new_hold)
        finally:
            if not isinstance(outcome, Created | InProgress):  # no hold: give its place back
                await self.limits.free_hold(principal.key_id, hold_id)
        if isinstance(outcome, InProgress):  # the place is the earlier attempt's
            raise IdempotencyKeyInUse(_IN_PROGRESS)
        if not isinstance(outcome, Created):
            metrics.SLOT_CONFLICTS.inc()
            raise SlotUnavailable(_why_unavailable(outcome))
        if outcome.replayed:  # an earlier attempt made it, and its answer was lost
            attempts.mark_replayed()
            if outcome.hold.status != "active":  # its place was freed when it ended
                await self.limits.free_hold(principal.key_id, hold_id)
            return await self._with_new_secret(outcome.hold, secret)
        metrics.HOLDS_CREATED.inc()
        return outcome.hold  # with its client_secret

    async def _with_new_secret(self, hold: Hold, secret: str) -> Hold:
        """A hold an earlier attempt made, answered again. Only its client_secret's hash is
        kept, so the lost answer's secret is gone: this answer's replaces it (the client
        never saw the other)."""
        await self.store.replace_secret(hold.id, client_secrets.digest(secret))
        return dataclasses.replace(hold, client_secret=secret)

    async def _made_earlier(self, principal: Principal, hold_id: str) -> Hold | None:
        """The hold an earlier attempt of this request (same Idempotency-Key) made, if any."""
        if not attempts.token():
            return None
        hold = await self.store.get(principal.org_id, hold_id)
        if hold is not None:
            attempts.mark_replayed()
        return hold

    async def _create(self, new_hold: NewHold) -> Created | Taken | NotRestored | InProgress:
        recover_only = attempts.recover_only()
        outcome = await self.store.create(new_hold, recover_only=recover_only)
        if isinstance(outcome, NotRestored):
            # First use of this hash tag since Redis started empty: booked slots come from SQL.
            await self.appointments.restore_tag(outcome.tag)
            outcome = await self.store.create(new_hold, recover_only=recover_only)
        return outcome

    async def get(self, principal: Principal, hold_id: str) -> Hold:
        hold = None
        if ids.is_valid("hold", hold_id):
            hold = await self.store.get(principal.org_id, hold_id)
        if hold is None:
            raise HoldNotFound("No such hold.")
        return hold

    async def release(self, principal: Principal, hold_id: str) -> None:
        """Free the slot at once; releasing an already released hold is not an error."""
        if not ids.is_valid("hold", hold_id):
            raise HoldNotFound("No such hold.")
        outcome, api_key_id = await self.store.release(principal.org_id, hold_id)
        if outcome in _RELEASE_REFUSALS:
            error, message = _RELEASE_REFUSALS[outcome]
            raise error(message)
        await self.limits.free_hold(api_key_id, hold_id)
        metrics.HOLDS_RELEASED.inc()

    async def extend(self, principal: Principal, hold_id: str) -> Hold:
        """Start the hold's countdown again, within its longest lifetime; the slot stays held."""
        if not ids.is_valid("hold", hold_id):
            raise HoldNotFound("No such hold.")
        outcome = await self.store.extend(principal.org_id, hold_id)
        if isinstance(outcome, str):
            error, message = _EXTEND_REFUSALS[outcome]
            raise error(message)
        # The key's active set lives on another hash tag, so it moves in a second step. Its
        # score only ever rises and no place is added: a stale score higher than the hold's
        # expiry (two extensions racing, or a hold released meanwhile) only keeps a place a
        # little longer, and the hold's own place is never given to another hold. Only if this
        # process dies between the two steps does the place lapse at the old expiry.
        expires_ms = int(outcome.expires_at.timestamp()) * 1000
        await self.limits.extend_hold(outcome.api_key_id, hold_id, expires_ms)
        metrics.HOLDS_EXTENDED.inc()
        return outcome

    async def confirm(
        self, principal: Principal, hold_id: str, request: HoldConfirm
    ) -> Appointment:
        """Book the held slot for a patient of the caller's organisation."""
        if not ids.is_valid("hold", hold_id):
            raise HoldNotFound("No such hold.")
        async with self.sessions() as session:
            if not await patients_repo.exists(session, principal.org_id, request.patient_id):
                raise ResourceMissing("No such patient.", param="patient_id")
        booking = BookingDetails(
            patient_id=request.patient_id,
            attendee_name=request.attendee_name,
            attendee_email=request.attendee_email,
            attendee_phone=request.attendee_phone,
            notes=request.notes,
        )
        appointment_id = _new_id("apt", ids.tag_of(hold_id))
        outcome = await self.store.confirm(
            principal.org_id,
            hold_id,
            appointment_id,
            booking,
            token=attempts.token(),
            recover_only=attempts.recover_only(),
        )
        if isinstance(outcome, InProgress):
            raise IdempotencyKeyInUse(_IN_PROGRESS)
        if isinstance(outcome, str):
            error, message = _CONFIRM_REFUSALS[outcome]
            raise error(message)
        if self.exit_after_confirm_commit and not outcome.replayed:  # fault tests: die
            # between the commit in Redis and everything after it (queue, answer)
            os._exit(70)
        await self._after_confirm(outcome, hold_id)
        return outcome.appointment

    async def _after_confirm(self, confirmed: Confirmed, hold_id: str) -> None:
        """Free the hold's place and queue persistence; a replay repeats both (each is
        idempotent), since the attempt that committed may have died before doing them."""
        if confirmed.replayed:
            attempts.mark_replayed()
        else:
            metrics.HOLDS_CONFIRMED.inc()
        await self.limits.free_hold(confirmed.api_key_id, hold_id)
        await self.appointments.hand_to_workers(confirmed.appointment)


def _new_id(prefix: str, tag: str) -> str:
    """A fresh id; under an Idempotency-Key, the one every attempt of the request derives."""
    if not attempts.token():
        return ids.new_tagged_id(prefix, tag)
    return ids.tagged_id(prefix, tag, attempts.derived_uuid_hex(prefix))


def _why_unavailable(outcome: Taken | NotRestored | None) -> str:
    if isinstance(outcome, Taken) and outcome.session_full:
        return "Every seat of that session is taken."
    return "That slot overlaps another hold or appointment of the clinician."


def _resolve(catalog: OrgCatalog, request: HoldCreate) -> tuple[AppointmentType, Clinician]:
    kind = catalog.appointment_types.get(request.appointment_type_id)
    if kind is None:
        raise ResourceMissing("No such appointment type.", param="appointment_type_id")
    clinician = catalog.clinicians.get(request.clinician_id)
    if clinician is None:
        raise ResourceMissing("No such clinician.", param="clinician_id")
    if request.location_id is not None and request.location_id not in catalog.locations:
        raise ResourceMissing("No such location.", param="location_id")
    return kind, clinician
