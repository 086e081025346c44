"""The open-loop run: flows start at a constant rate, however slowly the service answers."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field

import aiohttp

from app.loadtest.plan import Mix, Slot, Target

HOT_SLOTS = 3  # contended flows all aim at these few slots


@dataclass(frozen=True, slots=True)
class Sample:
    endpoint: str
    at: float  # seconds since the run started
    seconds: float
    status: int  # 0 when the request failed without an answer


@dataclass
class Recorder:
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)  # appointment ids from 201s

    async def call(
        self, http: aiohttp.ClientSession, endpoint: str, method: str, url: str, **kwargs: object
    ) -> tuple[int, dict[str, object]]:
        began = time.monotonic()
        try:
            async with http.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
                body = await response.json(content_type=None)
                status = response.status
        except (TimeoutError, aiohttp.ClientError, ValueError):
            body, status = {}, 0
        self.samples.append(
            Sample(endpoint, began - self.started, time.monotonic() - began, status)
        )
        return status, body if isinstance(body, dict) else {}


async def run(
    target: Target, rate: float, duration: float, mix: Mix, contention: float, seed: int = 0
) -> Recorder:
    """Start `rate` flows a second for `duration` seconds; wait for the last to finish."""
    recorder = Recorder()
    rng = random.Random(seed)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        flows: set[asyncio.Task[None]] = set()
        progress = asyncio.create_task(_report_progress(recorder, duration))
        started = time.monotonic()
        n = 0
        while (due := started + n / rate) < started + duration:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            slot = _choose(target.slots, contention, rng)
            outcome = rng.choices(("confirm", "release", "abandon"),
                                  (mix.confirm, mix.release, mix.abandon))[0]  # fmt: skip
            task = asyncio.create_task(_flow(http, target, recorder, slot, outcome, n))
            flows.add(task)
            task.add_done_callback(flows.discard)
            n += 1
        await asyncio.gather(*flows)
        progress.cancel()
    print(file=sys.stderr)
    return recorder


def _choose(slots: list[Slot], contention: float, rng: random.Random) -> Slot:
    if rng.random() < contention:
        return rng.choice(slots[:HOT_SLOTS])
    return rng.choice(slots)


async def _flow(
    http: aiohttp.ClientSession,
    target: Target,
    recorder: Recorder,
    slot: Slot,
    outcome: str,
    n: int,
) -> None:
    """One patient: look at the day's availability, hold a slot, then confirm, release or leave."""
    headers = target.headers(n)
    query = (
        f"appointment_type_id={slot.appointment_type_id}&clinician_id={slot.clinician_id}"
        f"&start_date={slot.local_date}&end_date={slot.local_date}"
    )
    await recorder.call(http, "GET /availability", "GET", f"{target.url}/availability?{query}",
                        headers=headers)  # fmt: skip
    body = {
        "appointment_type_id": slot.appointment_type_id,
        "clinician_id": slot.clinician_id,
        "location_id": slot.location_id,
        "date": slot.local_date,
        "start_time": slot.local_time,
    }
    status, held = await recorder.call(
        http, "POST /holds", "POST", f"{target.url}/holds", json=body, headers=headers
    )
    if status != 201 or outcome == "abandon":
        return
    hold_id = held["data"]["id"]  # type: ignore[index]
    if outcome == "confirm":
        confirm = {"patient_id": target.patient_id, "attendee_name": "Load Test"}
        status, booked = await recorder.call(
            http, "POST /holds/{id}/confirm", "POST", f"{target.url}/holds/{hold_id}/confirm",
            json=confirm, headers=headers,
        )  # fmt: skip
        if status == 201:
            recorder.confirmed.append(booked["data"]["id"])  # type: ignore[index]
    else:
        await recorder.call(http, "DELETE /holds/{id}", "DELETE", f"{target.url}/holds/{hold_id}",
                            headers=headers)  # fmt: skip


async def _report_progress(recorder: Recorder, duration: float) -> None:
    while True:
        await asyncio.sleep(1)
        elapsed = time.monotonic() - recorder.started
        recent = [s for s in recorder.samples if s.at >= elapsed - 1]
        errors = sum(1 for s in recent if s.status == 0 or s.status >= 500)
        print(
            f"\r{elapsed:5.0f}/{duration:.0f} s  {len(recent):6d} req/s  "
            f"{len(recorder.confirmed):6d} booked  {errors} errors/s ",
            end="",
            file=sys.stderr,
            flush=True,
        )
