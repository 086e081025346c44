"""Appointments in Redis: the working copy that the workers persist to SQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping

from redis.asyncio import Redis

from app.domain.records import Appointment
from app.ids import tag_of
from app.store import codec, keys


class AppointmentStore:
    def __init__(self, redis: Redis, scripts: codec.ScriptHost | None = None) -> None:
        self.redis = redis
        host = scripts or redis
        self._cancel = codec.script(host, "cancel_appointment.lua")
        self._mark_persisted = codec.script(host, "mark_persisted.lua")
        self._restore = codec.script(host, "restore_appointments.lua")
        self._pending = codec.script(host, "pending_appointments.lua")

    async def get(self, appointment_id: str) -> Appointment | None:
        """The Redis copy, whatever its organisation (callers check tenancy)."""
        record: dict[bytes, bytes] = await self.redis.hgetall(  # type: ignore[misc]
            keys.appointment(appointment_id)
        )
        return codec.appointment_from(codec.pairs(record)) if record else None

    async def pending(self, org_id: str, tags: Iterable[str]) -> list[Appointment]:
        """The organisation's appointments under these hash tags whose latest change SQL lacks.
        One script call per tag, all issued at once: one round trip on the auto-pipeline."""
        replies = await asyncio.gather(
            *(
                self._pending(keys=[keys.pending(tag)], args=[org_id, keys.appointment_prefix(tag)])
                for tag in sorted(set(tags))
            )
        )
        return [codec.appointment_from(codec.pairs(flat)) for reply in replies for flat in reply]

    async def cancel(
        self, org_id: str, appointment_id: str, reason: str | None
    ) -> Appointment | None:
        """Cancel (or find already cancelled); None when Redis has no such appointment."""
        tag = tag_of(appointment_id)
        outcome, *flat = await self._cancel(
            keys=[keys.appointment(appointment_id), keys.pending(tag), keys.events(tag)],
            args=[org_id, keys.occupancy_prefix(tag), appointment_id, reason or ""],
        )
        return codec.appointment_from(codec.pairs(flat)) if outcome == b"ok" else None

    async def mark_persisted(
        self,
        appointment: Appointment,
        conflict_with: str | None,
        keep_until: int,
        remarked: Mapping[str, str | None] | None = None,
    ) -> bool:
        """Record that SQL has this version and its mark, and the marks SQL decided again for
        other appointments of its clinician; True when nothing newer waits to be persisted."""
        tag = tag_of(appointment.id)
        remarked = remarked or {}
        cleared: int = await self._mark_persisted(
            keys=[
                keys.appointment(appointment.id),
                keys.pending(tag),
                *(keys.appointment(other) for other in remarked),
            ],
            args=[
                appointment.id,
                appointment.version,
                conflict_with or "",
                keep_until,
                *(mark or "" for mark in remarked.values()),
            ],
        )
        return cleared == 1

    async def restore(self, tag: str, appointments: list[Appointment], *, mark_ready: bool) -> int:
        """Give Redis appointments from SQL that it lacks; returns how many it lacked."""
        script_keys = [keys.ready(tag)]
        args = ["1" if mark_ready else "0"]
        for appointment in appointments:
            script_keys += [
                keys.occupancy(tag, appointment.clinician_id),
                keys.appointment(appointment.id),
            ]
            args.append(json.dumps(codec.appointment_fields(appointment)))
        restored: int = await self._restore(keys=script_keys, args=args)
        return restored
