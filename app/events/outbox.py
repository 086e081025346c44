"""Outbox entries, and the one place that turns an event into what it says (its id, moment
and public data), so every consumer (the status stream, webhooks, GET /events) agrees."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from app.domain.catalog import OrgCatalog
from app.domain.records import Hold
from app.public import AppointmentPublic, HoldPublic
from app.store import codec


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


def kind_of(event_type: str) -> str:
    """'hold' or 'appointment': what the event's data is."""
    return event_type.split(".", 1)[0]


def event_id(tag: str, entry_id: str) -> str:
    """The event's id, the same whichever worker records it and however often: derived from
    its place in the outbox of its hash tag (outbox entry ids are unique and never reused)."""
    digest = hashlib.sha256(f"{tag}/{entry_id}".encode()).digest()
    return f"evt_{uuid.UUID(bytes=digest[:16], version=4)}"


def entry_moment(entry_id: str) -> datetime:
    """When the change happened: outbox entry ids begin with Redis' clock in milliseconds."""
    return datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, UTC)


def data_of(event: Event, catalog: OrgCatalog) -> dict[str, Any]:
    """The hold or appointment as the API returns it, as it was right after the change."""
    if kind_of(event.type) == "hold":
        return hold_payload(hold_of(event))
    appointment = codec.appointment_from(event.record)
    return AppointmentPublic.of(appointment, catalog).model_dump(mode="json")


def body(event_id: str, event_type: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    """The delivered body; the same bytes for every attempt of one event."""
    stamp = created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return orjson.dumps({"id": event_id, "type": event_type, "created_at": stamp, "data": data})
