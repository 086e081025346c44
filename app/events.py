"""The events the store's scripts record with each change, and the one place that turns an
event into its public payload, so every consumer (the status stream, webhooks) agrees.

Each script that changes a hold or an appointment appends one entry to its hash tag's outbox
stream (`holds:{T}:events`) in the same atomic step: `type` (a name below), `id` (of the hold or
appointment) and `record` (the record's fields after the change, as JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.domain.records import Hold
from app.public import HoldPublic
from app.store import codec

HOLD_CREATED = "hold.created"
HOLD_EXTENDED = "hold.extended"
HOLD_RELEASED = "hold.released"
HOLD_EXPIRED = "hold.expired"
HOLD_CONFIRMED = "hold.confirmed"
APPOINTMENT_CREATED = "appointment.created"
APPOINTMENT_CANCELLED = "appointment.cancelled"
HOLD_EVENTS = frozenset({HOLD_CREATED, HOLD_EXTENDED, HOLD_RELEASED, HOLD_EXPIRED, HOLD_CONFIRMED})

# After one of these a hold never changes again.
FINAL_STATUSES = frozenset({"confirmed", "released", "expired"})


@dataclass(frozen=True, slots=True)
class Event:
    entry_id: str  # the outbox stream's entry id: "<epoch ms>-<sequence>"
    type: str
    id: str
    record: dict[str, str]

    @property
    def at_ms(self) -> int:
        return int(self.entry_id.split("-", 1)[0])


def subject_of(fields: list[bytes]) -> str:
    """The id an outbox entry is about, without decoding the rest: a process follows every
    entry of a tag but decodes only those of holds it streams."""
    for i in range(0, len(fields), 2):
        if fields[i] == b"id":
            return fields[i + 1].decode()
    return ""


def from_entry(entry_id: bytes, fields: list[bytes]) -> Event:
    """An outbox entry as XREAD returns it: its id and flat field/value list."""
    values = codec.pairs(fields)
    raw = json.loads(values["record"])
    # Lua's cjson encodes the HGETALL reply (a flat list) as a JSON array.
    record = dict(zip(raw[0::2], raw[1::2], strict=True)) if isinstance(raw, list) else {}
    return Event(entry_id.decode(), values["type"], values["id"], record)


def hold_of(event: Event) -> Hold:
    """The hold as it was right after the change the event records."""
    return codec.hold_from(event.id, event.record, now_ms=event.at_ms)


def hold_payload(hold: Hold) -> dict[str, Any]:
    """A hold exactly as GET /holds/{id} returns it inside `data`."""
    payload: dict[str, Any] = HoldPublic.model_validate(hold).model_dump(mode="json")
    return payload
