"""What the store must do, as a small pure-Python model: holds, appointments, the expiry index
and time (CONTRACT sections 3 and 7). tests/test_store_model.py drives the real store and this
model side by side and compares every answer.

Every operation takes `now`, the moment Redis ran it as closely as the test can know it, and
returns what the store must answer, in the store's own types (Created, Taken, Hold, Appointment),
so a test compares with `==`. Where an answer is not one value but any of a set (which conflicting
hold `Taken` names) or a range (a cleanup lag measured by a clock the test does not control), the
expected value is a `OneOf` or an `InRange`, which compare equal to every value they allow.

The one rule that decides whether two bookings collide is `StoreModel.blocking`: the seats of
one group session (same session key, same occupied interval) share it up to the session's size,
nothing else overlaps; every operation follows from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from app.domain.records import Appointment, BookingDetails, Hold
from app.ids import shard_tag
from app.store.codec import epoch, moment
from app.store.holds import Confirmed, Created, NewHold, Occupied, Taken


@dataclass(frozen=True)
class Diary:
    """One clinician's time: the same clinician id in another organisation is another diary."""

    org_id: str
    clinician_id: str

    @property
    def tag(self) -> str:
        return shard_tag(self.org_id, self.clinician_id)


@dataclass(frozen=True)
class Now:
    """When Redis ran an operation: some millisecond in [lo_ms, hi_ms], one second's worth."""

    lo_ms: int
    hi_ms: int

    @property
    def second(self) -> int:
        return self.lo_ms // 1000

    @classmethod
    def between(cls, before_ms: int, after_ms: int) -> list[Now]:
        """Every second an operation that started after `before_ms` and ended before `after_ms`
        may have run in: one, or more when a second boundary fell in between."""
        firsts = range(before_ms // 1000 * 1000, after_ms + 1, 1000)
        return [cls(max(before_ms, first), min(after_ms, first + 999)) for first in firsts]


@dataclass(frozen=True)
class OneOf:
    """Equal to any of these values."""

    options: frozenset[str]

    def __eq__(self, other: object) -> bool:
        return other in self.options

    def __hash__(self) -> int:
        return hash(self.options)


@dataclass(frozen=True)
class InRange:
    """Equal to any whole number in [lo, hi]."""

    lo: int
    hi: int

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and self.lo <= other <= self.hi

    def __hash__(self) -> int:
        return hash((self.lo, self.hi))


@dataclass
class HoldRecord:
    new: NewHold
    created_ms: int
    status: str  # as stored: active, released or confirmed (an expiry is by the clock alone)
    expires: int  # epoch s
    appointment_id: str | None = None

    @property
    def diary(self) -> Diary:
        return Diary(self.new.org_id, self.new.clinician_id)


@dataclass
class AppointmentRecord:
    id: str
    hold: NewHold
    booking: BookingDetails
    created: int  # epoch s
    updated: int
    status: str = "confirmed"
    version: int = 1
    cancel_reason: str | None = None


@dataclass
class StoreModel:
    ttl_seconds: int
    retention_seconds: int
    holds: dict[str, HoldRecord] = field(default_factory=dict)
    appointments: dict[str, AppointmentRecord] = field(default_factory=dict)
    expiry_index: dict[str, set[str]] = field(default_factory=dict)  # tag -> hold ids

    # What is stored, and what is live.

    def record(self, hold_id: str, now: Now) -> HoldRecord | None:
        """The hold's record while Redis keeps it: readable at least `retention` after the hold
        ends, and gone `ttl + retention` after it was created (the key's own TTL)."""
        record = self.holds.get(hold_id)
        if record is None:
            return None
        gone_after = record.created_ms + (self.ttl_seconds + self.retention_seconds) * 1000
        assert not now.lo_ms <= gone_after < now.hi_ms, "the test cannot tell: a longer retention"
        return record if now.lo_ms <= gone_after else None

    def live(self, diary: Diary, now: Now) -> list[tuple[Occupied, str]]:
        """The diary's occupied intervals (with their group session) and their owners: active
        holds until the second of their expires_at, confirmed appointments until cancelled."""
        found = [
            (Occupied(record.new.occupied, record.new.session_key), hold_id)
            for hold_id, record in self.holds.items()
            if record.diary == diary and record.status == "active" and now.second < record.expires
        ]
        found += [
            (Occupied(appointment.hold.occupied, appointment.hold.session_key), appointment.id)
            for appointment in self.appointments.values()
            if Diary(appointment.hold.org_id, appointment.hold.clinician_id) == diary
            and appointment.status == "confirmed"
        ]
        return sorted(found, key=lambda pair: (pair[0].interval.start, pair[1]))

    def occupancy(self, diary: Diary, now: Now) -> list[Occupied]:
        return [occupied for occupied, _ in self.live(diary, now)]

    def blocking(self, new: NewHold, now: Now) -> Taken | None:
        """Why a new hold cannot be made (whom it overlaps, or its full session), or None."""
        diary = Diary(new.org_id, new.clinician_id)
        overlapping = [
            (occupied, owner)
            for occupied, owner in self.live(diary, now)
            if occupied.interval.overlaps(new.occupied)
        ]
        seat = Occupied(new.occupied, new.session_key)
        others = {
            owner for occupied, owner in overlapping if new.session_key is None or occupied != seat
        }
        if others:
            return Taken(by=OneOf(frozenset(others)))  # type: ignore[arg-type]
        if len(overlapping) >= new.seats:
            seats = frozenset(owner for _, owner in overlapping)
            return Taken(by=OneOf(seats), session_full=True)  # type: ignore[arg-type]
        return None

    # The operations, each answering as the store must.

    def create(self, new: NewHold, now: Now) -> Created | Taken:
        blocking = self.blocking(new, now)
        if blocking is not None:
            return blocking
        record = HoldRecord(new, now.lo_ms, "active", now.second + self.ttl_seconds)
        self.holds[new.id] = record
        self.expiry_index.setdefault(record.diary.tag, set()).add(new.id)
        return Created(self.hold_view(record, now))

    def get(self, org_id: str, hold_id: str, now: Now) -> Hold | None:
        record = self.record(hold_id, now)
        if record is None or record.new.org_id != org_id:
            return None
        return self.hold_view(record, now)

    def release(self, org_id: str, hold_id: str, now: Now) -> tuple[str, str]:
        record = self.record(hold_id, now)
        if record is None or record.new.org_id != org_id:
            return "not_found", ""
        outcome = self._ended(record, now)
        if outcome is None:
            record.status = outcome = "released"
            self.expiry_index[record.diary.tag].discard(hold_id)
        return outcome, record.new.api_key_id

    def confirm(
        self, org_id: str, hold_id: str, appointment_id: str, booking: BookingDetails, now: Now
    ) -> Confirmed | str:
        record = self.record(hold_id, now)
        if record is None or record.new.org_id != org_id:
            return "not_found"
        outcome = self._ended(record, now)
        if outcome is not None:
            return "already_confirmed" if outcome == "confirmed" else outcome
        record.status, record.appointment_id = "confirmed", appointment_id
        self.expiry_index[record.diary.tag].discard(hold_id)
        appointment = AppointmentRecord(appointment_id, record.new, booking, now.second, now.second)
        self.appointments[appointment_id] = appointment
        return Confirmed(self.appointment_view(appointment), record.new.api_key_id)

    def cancel(
        self, org_id: str, appointment_id: str, reason: str | None, now: Now
    ) -> Appointment | None:
        appointment = self.appointments.get(appointment_id)
        if appointment is None or appointment.hold.org_id != org_id:
            return None
        if appointment.status == "confirmed":  # cancelling twice changes nothing
            appointment.status, appointment.updated = "cancelled", now.second
            appointment.version += 1
            appointment.cancel_reason = reason or None
        return self.appointment_view(appointment)

    def appointment(self, appointment_id: str) -> Appointment | None:
        appointment = self.appointments.get(appointment_id)
        return self.appointment_view(appointment) if appointment else None

    def expire_due(self, tag: str, limit: int, now: Now) -> tuple[bool, list[int | InRange]]:
        """Take up to `limit` holds whose expires_at has come from the tag's expiry index,
        soonest first, and expire those still active. Returns whether it took `limit` (more
        may be due) and the cleanup lag in ms of each hold it expired, in that order."""
        due = sorted(
            (self.holds[hold_id].expires, hold_id)
            for hold_id in self.expiry_index.get(tag, set())
            if self.holds[hold_id].expires <= now.second
        )[:limit]
        lags: list[int | InRange] = []
        for _, hold_id in due:
            self.expiry_index[tag].discard(hold_id)  # ended, or a record Redis dropped, too
            record = self.record(hold_id, now)
            if record is not None and record.status == "active":
                due_ms = record.expires * 1000
                lags.append(InRange(now.lo_ms - due_ms, now.hi_ms - due_ms))
        return len(due) == limit, lags

    def _ended(self, record: HoldRecord, now: Now) -> str | None:
        """Why this hold can no longer be released or confirmed, or None while it can."""
        if record.status != "active":
            return record.status
        return "expired" if now.second >= record.expires else None

    # Views, in the store's own types.

    def hold_view(self, record: HoldRecord, now: Now) -> Hold:
        new = record.new
        ended = self._ended(record, now)
        return Hold(
            id=new.id,
            org_id=new.org_id,
            api_key_id=new.api_key_id,
            appointment_type_id=new.appointment_type_id,
            clinician_id=new.clinician_id,
            location_id=new.location_id,
            start_time=_second(new.start_time),
            end_time=_second(new.end_time),
            expires_at=moment(record.expires),
            status=ended or "active",
            created_at=moment(record.created_ms // 1000),
            appointment_id=record.appointment_id,
        )

    def appointment_view(self, appointment: AppointmentRecord) -> Appointment:
        hold = appointment.hold
        return Appointment(
            id=appointment.id,
            org_id=hold.org_id,
            hold_id=hold.id,
            appointment_type_id=hold.appointment_type_id,
            clinician_id=hold.clinician_id,
            location_id=hold.location_id,
            start_time=_second(hold.start_time),
            end_time=_second(hold.end_time),
            status=appointment.status,
            booking=appointment.booking,
            created_at=moment(appointment.created),
            updated_at=moment(appointment.updated),
            occupied=hold.occupied,
            version=appointment.version,
            cancel_reason=appointment.cancel_reason,
            session_key=hold.session_key,
        )


def _second(instant: datetime) -> datetime:
    return moment(epoch(instant))
