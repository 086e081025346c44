"""Events: facts about holds and appointments, named as CONTRACT section 10 names them.

Each script that changes a hold or an appointment appends one entry to its hash tag's outbox
stream (`holds:{T}:events`) in the same atomic step: `type` (a name below), `id` (of the hold or
appointment) and `record` (the record's fields after the change, as JSON). `app.events.outbox`
reads entries and turns them into what an event says, in one place, so the status stream, the
webhooks and `GET /events` cannot disagree. The names live here, apart, so request schemas can
name event types without importing the public models.
"""

from __future__ import annotations

from typing import Literal, get_args

EventType = Literal[
    "hold.created",
    "hold.extended",
    "hold.released",
    "hold.expired",
    "hold.confirmed",
    "appointment.created",
    "appointment.cancelled",
]
TYPES: tuple[str, ...] = get_args(EventType)

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
