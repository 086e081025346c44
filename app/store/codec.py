"""Loading Lua scripts, and converting Redis hash records to and from domain objects."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol, runtime_checkable

from app.domain.records import Appointment, BookingDetails, Hold
from app.domain.slots import Interval

BOOKING_FIELDS = ("attendee_name", "attendee_email", "attendee_phone", "notes")


class Script(Protocol):
    def __call__(self, keys: Sequence[Any] = ..., args: Sequence[Any] = ...) -> Awaitable[Any]: ...


class ScriptHost(Protocol):
    """A Redis client that runs Lua scripts: redis-py's, or the API's AutoPipeline."""

    def register_script(self, source: str) -> Script: ...


def source(name: str) -> str:
    return resources.files("app.store").joinpath("lua", name).read_text(encoding="utf-8")


@runtime_checkable
class ReplicatingScriptHost(Protocol):
    """A client that can answer a script's call once a replica has its writes (a cluster's)."""

    def register_replicated_script(self, source: str) -> Script: ...


def script(host: ScriptHost, name: str, *, replicated: bool = False) -> Script:
    """The script `name`; `replicated`: its calls wait for a replica, where `host` can."""
    if replicated and isinstance(host, ReplicatingScriptHost):
        return host.register_replicated_script(source(name))
    return host.register_script(source(name))


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def moment(seconds: str | int | float) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def now_ms(seconds: int, micros: int) -> int:
    """Redis `TIME` as epoch milliseconds."""
    return seconds * 1000 + micros // 1000


def pairs(flat: list[bytes] | dict[bytes, bytes]) -> dict[str, str]:
    """A hash reply, as HGETALL or a script's flat field/value list returns it, as text."""
    if isinstance(flat, dict):
        return {k.decode(): v.decode() for k, v in flat.items()}
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}


# The record fields `hold_from` reads, for a script to read just those (get_hold.lua).
HOLD_FIELDS = ("org", "key", "type", "cli", "loc", "start", "end", "expires", "status",
               "created", "apt")  # fmt: skip


def named(names: Sequence[str], values: Sequence[bytes | None]) -> dict[str, str]:
    """The fields a script read by name (HMGET), as text; absent ones left out."""
    read = zip(names, values, strict=True)
    return {name: value.decode() for name, value in read if value is not None}


def hold_from(hold_id: str, fields: dict[str, str], *, now_ms: int) -> Hold:
    """The hold a record describes; an active one past its expiry reads expired at once."""
    status = fields["status"]
    if status == "active" and now_ms >= int(fields["expires"]) * 1000:
        status = "expired"
    return Hold(
        id=hold_id,
        org_id=fields["org"],
        api_key_id=fields["key"],
        appointment_type_id=fields["type"],
        clinician_id=fields["cli"],
        location_id=fields["loc"] or None,
        start_time=moment(fields["start"]),
        end_time=moment(fields["end"]),
        expires_at=moment(fields["expires"]),
        status=status,
        created_at=moment(fields["created"]),
        appointment_id=fields.get("apt"),
    )


def appointment_from(fields: dict[str, str]) -> Appointment:
    return Appointment(
        id=fields["id"],
        org_id=fields["org"],
        hold_id=fields["hold"],
        appointment_type_id=fields["type"],
        clinician_id=fields["cli"],
        location_id=fields["loc"] or None,
        start_time=moment(fields["start"]),
        end_time=moment(fields["end"]),
        status=fields["status"],
        booking=BookingDetails(
            patient_id=fields["patient"], **{name: fields.get(name) for name in BOOKING_FIELDS}
        ),
        created_at=moment(fields["created"]),
        updated_at=moment(fields["updated"]),
        occupied=Interval(moment(fields["ostart"]), moment(fields["oend"])),
        version=int(fields.get("ver", "1")),
        persisted_version=int(fields.get("persisted", "0")),
        cancel_reason=fields.get("cancel_reason"),
        conflict_with=fields.get("conflict"),
        session_key=fields.get("sess"),
    )


def appointment_fields(appointment: Appointment) -> dict[str, str]:
    """The record `appointment_from` reads back; absent optional fields are left out."""
    booking = appointment.booking
    fields = {
        "id": appointment.id,
        "hold": appointment.hold_id,
        "org": appointment.org_id,
        "cli": appointment.clinician_id,
        "type": appointment.appointment_type_id,
        "loc": appointment.location_id or "",
        "start": str(epoch(appointment.start_time)),
        "end": str(epoch(appointment.end_time)),
        "ostart": str(epoch(appointment.occupied.start)),
        "oend": str(epoch(appointment.occupied.end)),
        "status": appointment.status,
        "created": str(epoch(appointment.created_at)),
        "updated": str(epoch(appointment.updated_at)),
        "ver": str(appointment.version),
        "persisted": str(appointment.persisted_version),
        "patient": booking.patient_id,
        "cancel_reason": appointment.cancel_reason,
        "conflict": appointment.conflict_with,
        "sess": appointment.session_key,
    } | {name: getattr(booking, name) for name in BOOKING_FIELDS}
    return {name: value for name, value in fields.items() if value is not None}
