"""Outbox entries, and the one place that turns an event into what it says (its id, moment
and public data), so every consumer (the status stream, webhooks, GET /events) agrees."""

from __future__ import annotations

import dataclasses
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
    shared: bool = False  # its entry records the same change of several holds

    @property
    def at_ms(self) -> int:
        return int(self.entry_id.split("-", 1)[0])

    @property
    def place(self) -> str:
        """Where the event is in its tag's outbox: the entry, and the hold within a shared
        entry. Unique, and the same however often it is read."""
        return f"{self.entry_id}/{self.id}" if self.shared else self.entry_id


# An entry's fields: `_event` and its type, `_subject` and the id it is about, then the
# record's own field/value pairs as HGETALL gives them (a copy as it was right after the change).
# Lua writes the pairs as they are, which costs Redis a fraction of encoding them as JSON.
# hold.expired is the exception: an expiry changes nothing but the status, so one entry records
# the expiry of several holds, `_subjects` and their ids (space-separated) in place of `_subject`,
# then only the change (the pair `status` `expired`); readers complete it (`is_change_only`).
_EVENT, _SUBJECT, _SUBJECTS = b"_event", b"_subject", b"_subjects"
_RECORD_AT = 4  # where the record's pairs begin


def subjects_of(fields: list[bytes]) -> list[str]:
    """The ids an outbox entry is about, without decoding the rest: a process follows every
    entry of a tag but decodes only those of holds it streams."""
    if fields[:1] == [_EVENT]:
        return fields[3].decode().split(" ")
    return [codec.pairs(fields).get("id", "")]  # an entry written before (see _legacy_entry)


def events_of(entry_id: bytes, fields: list[bytes]) -> list[Event]:
    """The events of an outbox entry as XREAD returns it: one, or one per hold of an entry
    shared by several holds' expiries."""
    if fields[:1] == [_EVENT] and fields[2:3] == [_SUBJECTS]:
        change = codec.pairs(fields[_RECORD_AT:])
        event_type, entry = fields[1].decode(), entry_id.decode()
        return [Event(entry, event_type, hold_id, dict(change), shared=True)
                for hold_id in fields[3].decode().split(" ")]  # fmt: skip
    return [from_entry(entry_id, fields)]


def from_entry(entry_id: bytes, fields: list[bytes]) -> Event:
    """An outbox entry of one subject as XREAD returns it: its id and flat field/value list."""
    if fields[:1] == [_EVENT] and fields[2:3] == [_SUBJECT]:
        record = codec.pairs(fields[_RECORD_AT:])
        return Event(entry_id.decode(), fields[1].decode(), fields[3].decode(), record)
    return _legacy_entry(entry_id, fields)


def _legacy_entry(entry_id: bytes, fields: list[bytes]) -> Event:
    """An entry written before records were stored as pairs: `type`, `id`, and `record` as
    cjson's encoding of the HGETALL reply (a JSON array). Such entries may still wait in an
    outbox a worker has not moved since an upgrade."""
    values = codec.pairs(fields)
    raw = json.loads(values["record"])
    record = dict(zip(raw[0::2], raw[1::2], strict=True)) if isinstance(raw, list) else {}
    return Event(entry_id.decode(), values["type"], values["id"], record)


def is_change_only(event: Event) -> bool:
    """Whether the entry carries only what changed (an expiry) rather than the whole record."""
    return "org" not in event.record


def completed(event: Event, record: dict[str, str]) -> Event:
    """A change-only event made whole from the hold's record as Redis keeps it: an expiry is
    a hold's last change, so the record read later is the record right after it."""
    return dataclasses.replace(event, record=record | event.record)


def hold_of(event: Event) -> Hold:
    """The hold as it was right after the change the event records (a whole record)."""
    return codec.hold_from(event.id, event.record, now_ms=event.at_ms)


def hold_after(event: Event, before: Hold) -> Hold:
    """The hold right after the event, from the hold as it was before (which a change-only
    event needs)."""
    if is_change_only(event):
        return dataclasses.replace(before, status=event.record["status"])
    return hold_of(event)


def hold_payload(hold: Hold) -> dict[str, Any]:
    """A hold exactly as GET /holds/{id} returns it inside `data`."""
    payload: dict[str, Any] = HoldPublic.model_validate(hold).model_dump(mode="json")
    return payload


def kind_of(event_type: str) -> str:
    """'hold' or 'appointment': what the event's data is."""
    return event_type.split(".", 1)[0]


def event_id(tag: str, place: str) -> str:
    """The event's id, the same whichever worker records it and however often: derived from
    its place in the outbox of its hash tag (outbox entry ids are unique and never reused)."""
    digest = hashlib.sha256(f"{tag}/{place}".encode()).digest()
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
