"""One generator process's share of a step, open loop: flows start on a fixed schedule however
slowly the service answers, and each flow's first request is timed from its scheduled start,
so a stall (of the service or of this generator) shows in the latencies instead of hiding."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from app.loadtest.plan import OUTCOMES, Mix, Slot, Target
from app.loadtest.stats import Stats


@dataclass(frozen=True)
class Step:
    """Start `rate` flows a second for `duration` seconds from `start_at` (time.monotonic(),
    one clock for every process of the machine)."""

    number: int
    rate: float
    duration: float
    start_at: float
    run_started: float  # where the plot's seconds count from
    mix: Mix
    contention: float
    seed: int


@dataclass
class _Flow:
    """What one flow shares between its requests."""

    http: aiohttp.ClientSession
    target: Target
    stats: Stats
    run_started: float
    headers: dict[str, str]

    async def call(
        self, endpoint: str, method: str, path: str, since: float, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        """One request, timed from `since`: its scheduled time, not when it was sent."""
        url = f"{self.target.url}{path}"
        try:
            async with self.http.request(method, url, headers=self.headers, **kwargs) as answer:
                body = await answer.json(content_type=None)
                status = answer.status
        except (TimeoutError, aiohttp.ClientError, ValueError):
            body, status = {}, 0
        done = time.monotonic()
        micros = round((done - since) * 1_000_000)
        self.stats.record(endpoint, int(done - self.run_started), micros, status)
        return status, body if isinstance(body, dict) else {}


async def run_share(target: Target, step: Step, process: int, processes: int) -> Stats:
    """Flows process, process + processes, ... of the step: the processes interleave, so
    together they start `step.rate` flows a second; returns when the last has finished."""
    stats = Stats()
    rng = random.Random(f"{step.seed}/{step.number}/{process}")
    cpu_before = time.process_time()
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        flows: set[asyncio.Task[None]] = set()
        n = process
        while (due := step.start_at + n / step.rate) < step.start_at + step.duration:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            stats.start_lag.record_value(max(1, round((time.monotonic() - due) * 1_000_000)))
            flow = _Flow(http, target, stats, step.run_started, target.headers(n))
            task = asyncio.create_task(_book(flow, step, rng.random(), rng, due))
            flows.add(task)
            task.add_done_callback(flows.discard)
            n += processes
        await asyncio.gather(*flows)
    stats.cpu_seconds[process] = time.process_time() - cpu_before
    return stats


async def _book(flow: _Flow, step: Step, draw: float, rng: random.Random, due: float) -> None:
    """One patient: read a day's availability, hold a slot, then confirm, release or leave."""
    flow.stats.flows += 1
    target = flow.target
    hot = bool(target.hot_slots) and draw < step.contention
    if hot:
        slot = rng.choice(target.hot_slots)
        kind, clinician, day = slot.appointment_type_id, slot.clinician_id, slot.local_date
    else:
        diary = rng.choice(target.diaries)
        kind, clinician = diary.appointment_type_id, diary.clinician_id
        day = rng.choice(target.days)
    outcome = rng.choices(OUTCOMES, (step.mix.confirm, step.mix.release, step.mix.abandon))[0]
    query = f"appointment_type_id={kind}&clinician_id={clinician}&start_date={day}&end_date={day}"
    status, offer = await flow.call("GET /availability", "GET", f"/availability?{query}", due)
    if not hot:
        offered = (offer.get("data") or []) if status == 200 else []
        if not offered:
            flow.stats.no_slot_offered += 1
            return
        slot = target.slot(kind, rng.choice(offered))
    await _hold_and_finish(flow, slot, outcome)


async def _hold_and_finish(flow: _Flow, slot: Slot, outcome: str) -> None:
    body = {
        "appointment_type_id": slot.appointment_type_id,
        "clinician_id": slot.clinician_id,
        "location_id": slot.location_id,
        "date": slot.local_date,
        "start_time": slot.local_time,
    }
    status, held = await flow.call("POST /holds", "POST", "/holds", time.monotonic(), json=body)
    if status != 201 or outcome == "abandon":
        return
    path = f"/holds/{held['data']['id']}"
    if outcome == "release":
        await flow.call("DELETE /holds/{id}", "DELETE", path, time.monotonic())
        return
    confirm = {"patient_id": flow.target.patient_id, "attendee_name": "Load Test"}
    status, booked = await flow.call(
        "POST /holds/{id}/confirm", "POST", f"{path}/confirm", time.monotonic(), json=confirm
    )
    if status == 201:
        flow.stats.confirmed.append(booked["data"]["id"])
