"""The store's scripts against a model of what must hold, over hundreds of random sequences.

A hypothesis state machine drives the real store classes (HoldStore, AppointmentStore, and the
workers' UpkeepStore with its expiry script) through random sequences of create, get, release,
confirm, cancel, the expiry sweep and time passing, and after every step compares each answer
with tests/store_model.py, a small pure-Python model of CONTRACT sections 3 and 7:

- no two live occupied intervals of one clinician overlap, and Redis' live intervals are exactly
  the model's (checked after every step through `HoldStore.occupied`, the read that availability
  uses): a refused create, a release or confirm of another hold, or another organisation's call
  changes nothing; release and cancel free a slot at once;
- a hold reads `expired`, cannot be released or confirmed, and stops blocking its slot exactly
  at `expires_at` (not a millisecond before), whether or not the sweep has run;
- every answer (the hold, the appointment, the refusal's reason, the sweep's due list and lags)
  is the one the model gives.

Two clinicians, each of another organisation (whose calls the other's holds must ignore),
eight start times 15 minutes apart, durations of 15 to 45 minutes and buffers of 0, 5 or 15
minutes, so that most creates collide with something.

Two backends run the same machine:

- fakeredis, whose Lua runs on lupa (Lua 5.1, as Redis), with a clock the test moves: fakeredis
  takes `TIME`, key TTLs and expiry from `time.time()`, which is patched around each call, so
  time stands still during a step and jumps to exactly the millisecond a rule asks for (one
  before an `expires_at`, on it, past the retention). The workers' due-expiry query reads
  `time.time()` too, so it sees the same clock.
- a real redis-server (tests/conftest.py's), through the API's own auto-pipelining client. Its
  clock cannot be moved, so the test reads `TIME` after each call: the answer must be the
  model's for some second between the previous reading and this one (two candidates when a
  second boundary fell in between). Two runs: a long one where holds live an hour, so nothing
  expires and every run takes the same path; and a short one where holds live 1 s (TTL 1),
  expire at whatever second boundaries the run crosses, and each sequence may also wait once
  for the next second, after which all its holds have expired. A failure on Redis' clock may
  be reported as flaky: that clock does not replay.

What it costs: fakeredis is no faster than Redis here. A step (the operation and the check
after it) costs a few milliseconds of CPU, about a third of it hypothesis' own and a quarter
fakeredis parsing and running commands in Python, so a sequence costs about as much as on a
real redis-server over loopback. fakeredis' worth is its clock. The counts below keep the file
near 30 s on an idle machine; HOLDS_STORE_MODEL_EXAMPLES asks for a longer fakeredis run (say
5000, before changing a script).

Where fakeredis differs from Redis for what these scripts use, that part is proven on Redis:

- fakeredis compares a key's expiry in float seconds, Redis in whole milliseconds, so the very
  millisecond a hold record's TTL runs out is not well defined on fakeredis: its clock never
  stops there (`FakeRedisBackend.advance_to` steps past it). Only fakeredis tests the record
  disappearing after the retention period (Redis would have to wait `ttl + retention`).
- fakeredis reads `time.time()` afresh for a script's `TIME`, and once per command for key
  expiry; Redis expires keys by the time the script started. With the patched clock the two
  agree exactly; on Redis they differ by the script's own microseconds, which no answer here
  depends on.
- Real-clock behaviour (a hold expiring while requests are in flight, `TIME` with microseconds)
  is only on Redis.

Adding an operation (the next issues' extend, group seats):

1. give `StoreModel` a method for it that takes `now`, returns what the store must answer in the
   store's types and updates the model (extend: the new `expires_at` is
   `min(now + ttl, created + max lifetime)`, the hold stays in the expiry index under its new
   time, and `StoreModel.record` must know when the record's own TTL now runs out);
2. add a `@rule` here that builds the request, calls `self.observe(store call, model method)`
   and counts what happened in `self.seen`; take holds from the `holds` bundle;
Group seats are in: a create draws a session size (1 is exclusive), `StoreModel.blocking` lets
up to that many holds of one session share its interval exactly, `hold_the_same_again` asks for
another seat of a session (or a full one), and `no_overlaps` allows overlap only as one
session's seats.
Add the new outcomes to the `REQUIRED` lists so a run that never reaches them fails.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import fakeredis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from app.domain.records import BookingDetails
from app.domain.slots import Interval
from app.ids import tag_of
from app.store import keys
from app.store.appointments import AppointmentStore
from app.store.holds import Created, HoldStore, NewHold, Occupancy, Occupied, Taken
from app.store.pipeline import AutoPipeline
from app.store.upkeep import UpkeepStore
from tests.store_model import Diary, Now, StoreModel

T = TypeVar("T")

ORG = "org_5a3e6f1c-8d2b-4c47-9e11-0b6f2a7d9c30"
OTHER_ORG = "org_c1d2e3f4-a5b6-4c7d-8e9f-a0b1c2d3e4f5"
DIARIES = (
    Diary(ORG, "cli_0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a"),
    Diary(OTHER_ORG, "cli_e4d3c2b1-a0f9-4e8d-9c7b-6a5f4e3d2c1b"),
)
CLINICIAN_TAGS = {diary.clinician_id: diary.tag for diary in DIARIES}
FIRST_START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
WINDOW = Interval(FIRST_START - timedelta(hours=1), FIRST_START + timedelta(days=1))
BOOKING = BookingDetails(patient_id="pat_3b9f2c1e-7a4d-4e8b-9c6f-5d2a1e0b8c7d", attendee_name="Ann")

# Holds outlive their TTL by the retention period; on fakeredis both are short enough to reach.
FAKE_TTL, FAKE_RETENTION = 10, 20
FAKE_CLOCK_START_MS = 1_900_000_000_250  # not on a second, like most requests
FAKE_STEPS_MS = (1, 250, 999, 1_000, 4_000, FAKE_TTL * 1000, (FAKE_TTL + FAKE_RETENTION) * 1000)
HOLD_REQUESTS: dict[str, st.SearchStrategy[Any]] = {
    "diary": st.sampled_from(DIARIES),
    "slot": st.integers(0, 7),  # start times 15 minutes apart
    "minutes": st.sampled_from((15, 30, 45)),
    "buffer_before": st.sampled_from((0, 5, 15)),
    "buffer_after": st.sampled_from((0, 5, 15)),
    "remote": st.booleans(),
    # A group session's size; 1 is an exclusive hold. The session is (duration, place, start),
    # whatever the buffers, so seats with other buffers meet and must be refused.
    "seats": st.sampled_from((1, 1, 2, 3)),
}
UNTIL = ("a while", "1 ms before an expires_at", "an expires_at")
REAL_RETENTION = 3600
# Sequences per run, and most steps per sequence: within the suite's budget (see above).
FAKE_EXAMPLES = int(os.environ.get("HOLDS_STORE_MODEL_EXAMPLES", 400))
REDIS_EXAMPLES, REDIS_CLOCK_EXAMPLES, STEPS = 250, 15, 10


class Backend:
    """The three stores on one Redis, run from synchronous rules, and that Redis' clock. One
    backend (event loop, connections, Lua runtime) serves a whole run; `reset` empties Redis
    for each sequence."""

    ttl_seconds: int
    retention_seconds: int
    max_waits: int  # how often one sequence may let time pass
    redis: Redis

    def __init__(self, scripts: Any = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.holds = HoldStore(
            self.redis,
            ttl_seconds=self.ttl_seconds,
            retention_seconds=self.retention_seconds,
            scripts=scripts,
        )
        self.appointments = AppointmentStore(self.redis, scripts)
        self.upkeep = UpkeepStore(self.redis)

    def reset(self) -> None:
        """An empty Redis that has been given every diary's appointments from SQL (none), in
        one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.flushall()
        for diary in DIARIES:
            pipe.set(keys.ready(diary.tag), "1")
        self.run(pipe.execute())

    def run(self, operation: Awaitable[T]) -> T:
        return self.loop.run_until_complete(operation)

    def timed(self, operation: Awaitable[T]) -> tuple[T, int, int]:
        """The answer, and epoch ms before the operation started and after it ended."""
        raise NotImplementedError

    def clock(self) -> int:
        """Epoch ms now, as far as the test knows."""
        raise NotImplementedError

    def advance_by(self, ms: int, avoid: set[int]) -> None:
        raise NotImplementedError

    def advance_to(self, target_ms: int, avoid: set[int]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.run(self.redis.aclose())
        self.loop.close()


class FakeRedisBackend(Backend):
    """fakeredis (one FakeServer, one Lua runtime), its clock standing still between rules."""

    ttl_seconds, retention_seconds, max_waits = FAKE_TTL, FAKE_RETENTION, 10**9

    def __init__(self) -> None:
        self.clock_ms = FAKE_CLOCK_START_MS
        self.redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        super().__init__()  # fakeredis answers redis-py's own EVALSHA path

    def reset(self) -> None:
        self.clock_ms = FAKE_CLOCK_START_MS
        super().reset()

    def run(self, operation: Awaitable[T]) -> T:
        real_time, time.time = time.time, self._time  # what freezegun would do, but cheaper
        try:
            return self.loop.run_until_complete(operation)
        finally:
            time.time = real_time

    def _time(self) -> float:
        return self.clock_ms / 1000

    def timed(self, operation: Awaitable[T]) -> tuple[T, int, int]:
        return self.run(operation), self.clock_ms, self.clock_ms

    def clock(self) -> int:
        return self.clock_ms

    def advance_by(self, ms: int, avoid: set[int]) -> None:
        self.advance_to(self.clock_ms + ms, avoid)

    def advance_to(self, target_ms: int, avoid: set[int]) -> None:
        if target_ms > self.clock_ms:
            self.clock_ms = target_ms + 1 if target_ms in avoid else target_ms


class RealRedisBackend(Backend):
    """A real redis-server, its scripts through the API's auto-pipelining client."""

    retention_seconds = REAL_RETENTION

    def __init__(self, url: str, *, ttl_seconds: int, max_waits: int) -> None:
        self.ttl_seconds, self.max_waits = ttl_seconds, max_waits
        self.redis = Redis.from_url(url)
        self.pipeline = AutoPipeline(url)
        self.last_ms = 0
        super().__init__(self.pipeline)

    def reset(self) -> None:
        super().reset()
        self.last_ms = self.run(self._now_ms())

    async def _now_ms(self) -> int:
        seconds, micros = await self.pipeline.execute("TIME")
        return int(seconds) * 1000 + int(micros) // 1000

    def timed(self, operation: Awaitable[T]) -> tuple[T, int, int]:
        """One Redis `TIME` per operation: the one read after the last operation came before
        this one started."""

        async def timed() -> tuple[T, int]:
            answer = await operation
            return answer, await self._now_ms()

        before = self.last_ms
        answer, self.last_ms = self.run(timed())
        return answer, before, self.last_ms

    def clock(self) -> int:
        return self.last_ms

    def advance_by(self, ms: int, avoid: set[int]) -> None:
        self._wait_for_next_second()

    def advance_to(self, target_ms: int, avoid: set[int]) -> None:
        self._wait_for_next_second()

    def _wait_for_next_second(self) -> None:
        time.sleep((1000 - self.run(self._now_ms()) % 1000 + 2) / 1000)
        self.last_ms = self.run(self._now_ms())

    def close(self) -> None:
        self.run(self.pipeline.aclose())
        super().close()


class StoreMachine(RuleBasedStateMachine):
    """Random sequences of store operations, each answer compared with the model's."""

    backend: ClassVar[Backend]
    seen: ClassVar[Counter[str]]

    holds = Bundle("holds")
    appointments = Bundle("appointments")

    def __init__(self) -> None:
        super().__init__()
        self.backend.reset()
        self.model = StoreModel(self.backend.ttl_seconds, self.backend.retention_seconds)
        self.requests: dict[str, NewHold] = {}
        self.serial = 0
        self.waits = 0

    def observe(
        self, operation: Callable[[], Awaitable[T]], predict: Callable[[StoreModel, Now], Any]
    ) -> T:
        """Run `operation` on Redis; its answer must be the model's at some moment it ran."""
        actual, before, after = self.backend.timed(operation())
        moments = Now.between(before, after)
        expected: Any = None
        for now in moments:
            model = self.model if len(moments) == 1 else copy.deepcopy(self.model)
            expected = predict(model, now)
            if actual == expected:
                self.model = model
                return actual
        raise AssertionError(f"the store answered\n  {actual!r}\nthe model expects\n  {expected!r}")

    def caller(self, owned_id: str, as_owner: bool) -> str:
        org = self.requests[owned_id].org_id
        return org if as_owner else (OTHER_ORG if org == ORG else ORG)

    def new_id(self, prefix: str, tag: str) -> str:
        """Ids as the service makes them (shard tag first), but the same in every replay."""
        self.serial += 1
        return f"{prefix}_{tag}{self.serial:04x}-0000-4000-8000-{self.serial:012x}"

    @initialize(target=holds, **HOLD_REQUESTS)
    def first_hold(self, **request: Any) -> str:
        """Every sequence starts with a hold: rules that need one are never all disabled,
        which would make hypothesis throw the sequence away."""
        return self.create_hold(**request)

    @rule(target=holds, **HOLD_REQUESTS)
    def create_hold(
        self, diary: Diary, slot: int, minutes: int, buffer_before: int, buffer_after: int,
        remote: bool, seats: int,
    ) -> str:  # fmt: skip
        start = FIRST_START + timedelta(minutes=15 * slot)
        end = start + timedelta(minutes=minutes)
        occupied = Interval(
            start - timedelta(minutes=buffer_before), end + timedelta(minutes=buffer_after)
        )
        session = f"{minutes}.{remote}.{slot}" if seats > 1 else None
        new = NewHold(
            self.new_id("hold", diary.tag), diary.org_id, "key_1", f"type_{minutes}",
            diary.clinician_id, None if remote else "loc_1", start, end, occupied, session, seats,
        )  # fmt: skip
        self.requests[new.id] = new
        outcome = self.observe(
            lambda: self.backend.holds.create(new), lambda m, now: m.create(new, now)
        )
        self.seen[_create_outcome(outcome, new)] += 1
        return new.id  # a refused hold's id too: it must not exist

    @rule(target=holds, hold_id=holds)
    def hold_the_same_again(self, hold_id: str) -> str:
        """The same request once more, under a new id: another seat of a group session (or a
        full one), or a refusal for an exclusive hold."""
        new = replace(self.requests[hold_id], id=self.new_id("hold", tag_of(hold_id)))
        self.requests[new.id] = new
        outcome = self.observe(
            lambda: self.backend.holds.create(new), lambda m, now: m.create(new, now)
        )
        self.seen[_create_outcome(outcome, new)] += 1
        return new.id

    @rule(hold_id=holds, as_owner=st.booleans())
    def read_hold(self, hold_id: str, as_owner: bool) -> None:
        org = self.caller(hold_id, as_owner)
        hold = self.observe(
            lambda: self.backend.holds.get(org, hold_id), lambda m, now: m.get(org, hold_id, now)
        )
        if hold is None and as_owner and hold_id in self.model.holds:
            self.seen["read none: gone after the retention"] += 1
        self.seen[f"read {hold.status}" if hold else "read none"] += 1

    @rule(hold_id=holds, as_owner=st.booleans())
    def release_hold(self, hold_id: str, as_owner: bool) -> None:
        org = self.caller(hold_id, as_owner)
        outcome, _ = self.observe(
            lambda: self.backend.holds.release(org, hold_id),
            lambda m, now: m.release(org, hold_id, now),
        )
        self.seen[f"release: {outcome}"] += 1

    @rule(target=appointments, hold_id=holds, as_owner=st.booleans())
    def confirm_hold(self, hold_id: str, as_owner: bool) -> Any:
        org = self.caller(hold_id, as_owner)
        appointment_id = self.new_id("apt", tag_of(hold_id))
        self.requests[appointment_id] = self.requests[hold_id]
        outcome = self.observe(
            lambda: self.backend.holds.confirm(org, hold_id, appointment_id, BOOKING),
            lambda m, now: m.confirm(org, hold_id, appointment_id, BOOKING, now),
        )
        if isinstance(outcome, str):
            self.seen[f"confirm refused: {outcome}"] += 1
            return multiple()
        self.seen["confirmed"] += 1
        return appointment_id

    @rule(
        appointment_id=appointments,
        as_owner=st.booleans(),
        reason=st.sampled_from((None, "Feeling better")),
    )
    def cancel_appointment(self, appointment_id: str, as_owner: bool, reason: str | None) -> None:
        org = self.caller(appointment_id, as_owner)
        appointment = self.observe(
            lambda: self.backend.appointments.cancel(org, appointment_id, reason),
            lambda m, now: m.cancel(org, appointment_id, reason, now),
        )
        self.seen["cancel: done" if appointment else "cancel: not found"] += 1

    @rule(appointment_id=appointments)
    def read_appointment(self, appointment_id: str) -> None:
        self.observe(
            lambda: self.backend.appointments.get(appointment_id),
            lambda m, now: m.appointment(appointment_id),
        )

    @rule(diary=st.sampled_from(DIARIES), limit=st.sampled_from((1, 2, 100)))
    def sweep_due_expiries(self, diary: Diary, limit: int) -> None:
        """What the workers' sweep does: expire the tag's due holds, a batch at a time."""
        more, lags = self.observe(
            lambda: self.backend.upkeep.expire_due(diary.tag, limit),
            lambda m, now: m.expire_due(diary.tag, limit, now),
        )
        self.seen["swept" if lags else "swept: none expired"] += 1
        if more:
            self.seen["swept: a full batch, more may be due"] += 1

    def _may_wait(self) -> bool:
        return self.waits < self.backend.max_waits

    @precondition(_may_wait)
    @rule(ms=st.sampled_from(FAKE_STEPS_MS), until=st.sampled_from(UNTIL))
    def time_passes(self, ms: int, until: str) -> None:
        """Time moves on by `ms`, or to the next expires_at of an active hold (or 1 ms short
        of it). Redis' own clock can only be waited for: there, to the next second."""
        self.waits += 1
        self.seen["time moved"] += 1
        due = sorted(r.expires * 1000 for r in self.model.holds.values() if r.status == "active")
        offset = 1 if until == "1 ms before an expires_at" else 0
        later = [moment - offset for moment in due if moment - offset > self.backend.clock()]
        if until != "a while" and later:
            self.backend.advance_to(later[0], self._record_ends())
            self.seen[f"clock at {until}"] += 1
        else:
            self.backend.advance_by(ms, self._record_ends())
            self.seen["time passed"] += 1

    def _record_ends(self) -> set[int]:
        """The milliseconds at which a hold record's TTL runs out (see the module docstring)."""
        lifetime = (self.model.ttl_seconds + self.model.retention_seconds) * 1000
        return {record.created_ms + lifetime for record in self.model.holds.values()}

    @invariant()
    def live_intervals_are_the_models_and_never_overlap(self) -> None:
        occupancy = self.observe(
            lambda: self.backend.holds.occupied(CLINICIAN_TAGS, WINDOW),
            lambda m, now: Occupancy(
                {diary.clinician_id: m.occupancy(diary, now) for diary in DIARIES}, set()
            ),
        )
        for occupied in occupancy.by_clinician.values():
            no_overlaps(occupied)


def _create_outcome(outcome: object, new: NewHold) -> str:
    if isinstance(outcome, Created):
        return "created a seat" if new.session_key else "created"
    full = isinstance(outcome, Taken) and outcome.session_full
    return "create refused: session full" if full else "create refused: taken"


def no_overlaps(occupied: list[Occupied]) -> None:
    """CONTRACT 7.1 and 11, on what Redis says is live, whatever the model says: intervals
    overlap only as seats of one session, sharing it exactly."""
    sessions = sorted(set(occupied), key=lambda o: (o.interval.start, str(o.session_key)))
    for first, second in itertools.pairwise(sessions):
        assert first.interval.end <= second.interval.start, f"{first} overlaps {second}"
    for one in sessions:
        if one.session_key is None:
            assert occupied.count(one) == 1, f"{one} is held twice"


def machine(name: str, backend: Backend) -> type[StoreMachine]:
    """The state machine on this backend, counting what it sees afresh."""
    return type(name, (StoreMachine,), {"backend": backend, "seen": Counter()})


def run(machine_class: type[StoreMachine], examples: int, steps: int) -> Counter[str]:
    """Run the machine deterministically (fixed seed, no example database) and say what it saw."""
    started, cpu = time.perf_counter(), time.process_time()
    run_state_machine_as_test(
        machine_class,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    seen = machine_class.seen
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"\n{machine_class.__name__}: {examples} examples, {elapsed:.1f} s ({cpu:.1f} s CPU)")
    print(dict(sorted(seen.items())))
    return seen


def assert_reached(seen: Counter[str], outcomes: list[str]) -> None:
    """The run reached each of these outcomes at least once."""
    missing = [outcome for outcome in outcomes if not seen[outcome]]
    assert not missing, f"the run never reached {missing}: {dict(seen)}"


# What each run must have seen, so that a change that stops it reaching them fails. A run on
# fakeredis, or on Redis with hour-long holds, takes the same path every time; on Redis' clock
# runs differ, so there only some expiry, seen in any answer, is required (each kind of it is
# required on fakeredis, and tests/test_hold_expiry.py and test_workers.py see each on Redis).
REQUIRED = [
    "created", "create refused: taken", "read active", "read expired", "read released",
    "read none", "release: released", "release: not_found", "release: expired",
    "release: confirmed", "confirmed", "confirm refused: not_found", "confirm refused: expired",
    "confirm refused: released", "confirm refused: already_confirmed", "cancel: done",
    "cancel: not found", "swept", "swept: none expired", "swept: a full batch, more may be due",
    "time passed",
    "clock at an expires_at", "clock at 1 ms before an expires_at",
    "read none: gone after the retention", "created a seat", "create refused: session full",
]  # fmt: skip
REQUIRED_ON_REDIS = [
    "created", "create refused: taken", "read active", "read none",
    "release: released", "release: not_found", "release: confirmed", "confirmed",
    "confirm refused: not_found", "confirm refused: released",
    "confirm refused: already_confirmed", "cancel: done", "cancel: not found",
    "swept: none expired", "created a seat", "create refused: session full",
]  # fmt: skip
EXPIRY_ON_REDIS_CLOCK = [
    "read expired", "confirm refused: expired", "release: expired", "swept",
]  # fmt: skip


def test_store_matches_the_model_on_fakeredis() -> None:
    backend = FakeRedisBackend()
    try:
        seen = run(machine("StoreOnFakeRedis", backend), FAKE_EXAMPLES, STEPS)
    finally:
        backend.close()
    assert_reached(seen, REQUIRED)


def test_store_matches_the_model_on_redis(redis_url: str) -> None:
    backend = RealRedisBackend(redis_url, ttl_seconds=3600, max_waits=0)
    try:
        seen = run(machine("StoreOnRedis", backend), REDIS_EXAMPLES, STEPS)
    finally:
        backend.close()
    assert_reached(seen, REQUIRED_ON_REDIS)


def test_holds_expire_on_redis_own_clock(redis_url: str) -> None:
    backend = RealRedisBackend(redis_url, ttl_seconds=1, max_waits=1)
    try:
        seen = run(machine("StoreOnRedisClock", backend), REDIS_CLOCK_EXAMPLES, 2 * STEPS)
    finally:
        backend.close()
    assert seen["time moved"] > 0, dict(seen)
    assert sum(seen[outcome] for outcome in EXPIRY_ON_REDIS_CLOCK) > 0, dict(seen)
