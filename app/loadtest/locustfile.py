"""The booking flow of `holds loadtest`, for Locust (`pip install 'holds[locust]'`).

    HOLDS_LOADTEST_KEY=pk_test_... locust -f app/loadtest/locustfile.py \\
        --host http://127.0.0.1:8080/v1 --headless -u 100 -r 20 -t 60s

Each user starts one flow a second (so `-u 100` is about 100 flows/s while the service keeps
up; Locust is closed-loop: a slow service gets fewer flows, unlike `holds loadtest`). A flow
reads one clinician's availability for a random day of the next HOLDS_LOADTEST_DAYS (14), holds
one of the offered slots at random, then confirms it (half the flows), releases it (three in
ten) or abandons it. A 409 on `POST /holds` is the slot taken meanwhile, not a failure.
"""

from __future__ import annotations

import os
import random
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from locust import FastHttpUser, constant_pacing, task

KEY = os.environ.get("HOLDS_LOADTEST_KEY", "")
if not KEY:
    sys.exit("set HOLDS_LOADTEST_KEY to an API key of the organisation under test")
DAYS = int(os.environ.get("HOLDS_LOADTEST_DAYS", "14"))
ZONE = os.environ.get("HOLDS_LOADTEST_TIMEZONE", "Europe/London")  # the organisation's


class BookingFlow(FastHttpUser):
    wait_time = constant_pacing(1.0)
    default_headers = {"Authorization": f"Bearer {KEY}"}  # noqa: RUF012 (Locust's own field)
    diaries: ClassVar[list[tuple[str, str]]] = []  # (appointment type, clinician), read once
    zones: ClassVar[dict[str, str]] = {}  # location id -> timezone
    patient_id = ""

    def on_start(self) -> None:
        if not BookingFlow.diaries:
            self._discover()

    def _discover(self) -> None:
        kinds = self._data("/appointment-types?limit=100")
        BookingFlow.zones = {
            loc["id"]: loc["timezone"] for loc in self._data("/locations?limit=100")
        }
        BookingFlow.diaries = [
            (kind["id"], clinician)
            for kind in kinds
            if kind["is_active"] and kind["allow_online_booking"]
            for clinician in kind["clinician_ids"]
        ]
        patients = self._data("/patients?limit=1")
        BookingFlow.patient_id = patients[0]["id"] if patients else ""

    def _data(self, path: str) -> list[dict[str, Any]]:
        response = self.client.get(path, name=path.split("?")[0])
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    @task
    def book(self) -> None:
        kind, clinician = random.choice(self.diaries)
        day = date.today() + timedelta(days=random.randint(1, DAYS))
        query = (
            f"appointment_type_id={kind}&clinician_id={clinician}&start_date={day}&end_date={day}"
        )
        offered = self.client.get(f"/availability?{query}", name="GET /availability")
        slots = offered.json()["data"] if offered.status_code == 200 else []
        if not slots:
            return
        hold_id = self._hold(kind, random.choice(slots))
        if hold_id is None:
            return
        outcome = random.choices(("confirm", "release", "abandon"), (0.5, 0.3, 0.2))[0]
        if outcome == "confirm":
            body = {"patient_id": self.patient_id, "attendee_name": "Load Test"}
            self.client.post(
                f"/holds/{hold_id}/confirm", json=body, name="POST /holds/{id}/confirm"
            )
        elif outcome == "release":
            self.client.delete(f"/holds/{hold_id}", name="DELETE /holds/{id}")

    def _hold(self, kind: str, slot: dict[str, Any]) -> str | None:
        """The new hold's id, or None when the slot was taken meanwhile (409) or it failed."""
        zone = ZoneInfo(self.zones.get(slot["location_id"] or "", ZONE))
        start = datetime.strptime(slot["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        local = start.astimezone(zone)
        body = {
            "appointment_type_id": kind,
            "clinician_id": slot["clinician_id"],
            "location_id": slot["location_id"],
            "date": local.strftime("%Y-%m-%d"),
            "start_time": local.strftime("%H:%M"),
        }
        with self.client.post(
            "/holds", json=body, name="POST /holds", catch_response=True
        ) as response:
            if response.status_code == 409:
                response.success()
                return None
            if response.status_code != 201:
                return None
            hold_id: str = response.json()["data"]["id"]
            return hold_id
