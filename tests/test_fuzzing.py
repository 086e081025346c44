"""Schemathesis against a live `holds serve`, with every check: the document is exact.

Every generated request's response must conform to the document (status, headers, body
schema, content type), schema-valid requests must be accepted and schema-invalid ones refused,
and no request may get a 5xx. The stateful phase follows the document's links (create a hold,
then read, release or confirm it; confirm, then read or cancel the appointment).
"""

from __future__ import annotations

import contextlib
import itertools
import tomllib
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import FlakyStrategyDefinition

from tests.catalog import AMARA, FOLLOW_UP, INITIAL, PATIENT, TOM
from tests.servers import DemoServer, demo_server

CONFIG_FILE = Path(__file__).parents[1] / "schemathesis.toml"
# Bounded so that this module runs in about a minute on a busy 2-core machine.
EXAMPLES_PER_OPERATION = 5
SCENARIOS, STEPS_PER_SCENARIO = 20, 8


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(
        tmp_path_factory.mktemp("fuzz"),
        rate_limit_per_minute="1000000",
        max_active_holds_per_key="100000",
    ) as server:
        yield server


def _auth(server: DemoServer) -> dict[str, str]:
    # Sent per call, not set in the configuration, so that the auth checks can take it away.
    return {"Authorization": f"Bearer {server.key}"}


def _config(server: DemoServer) -> schemathesis.Config:
    """The repository's schemathesis.toml (what the CLI reads), plus this run's bounds."""
    data = tomllib.loads(CONFIG_FILE.read_text())
    data.setdefault("generation", {})["max-examples"] = EXAMPLES_PER_OPERATION
    data |= {
        "phases": {
            **{name: {"enabled": True} for name in ("examples", "coverage", "fuzzing")},
            # Sequences of valid requests: invalid ones are the stateless phases' work.
            "stateful": {"generation": {"mode": "positive"}},
        },
    }
    return schemathesis.Config.from_dict(data)


@pytest.fixture(scope="module")
def api_schema(live_server: DemoServer) -> Any:
    url = f"{live_server.api}/openapi.json"
    return schemathesis.openapi.from_url(url, config=_config(live_server))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_generated_request_gets_a_documented_answer(
    case: Any, live_server: DemoServer
) -> None:
    # No `checks=`: every check the configuration enables, which is every built-in one.
    case.call_and_validate(base_url=live_server.base, headers=_auth(live_server))


def _booking_schema(server: DemoServer) -> Any:
    """The served document with only the booking flow's paths, so that every scenario's steps
    go to holds and appointments (the catalog's reads are covered above)."""
    with urllib.request.urlopen(f"{server.api}/openapi.json", timeout=10) as response:
        document = orjson.loads(response.read())
    flow = ("/v1/holds", "/v1/appointments")
    document["paths"] = {p: ops for p, ops in document["paths"].items() if p.startswith(flow)}
    return schemathesis.openapi.from_dict(document, config=_config(server))


def test_linked_operations_conform_in_sequence(live_server: DemoServer) -> None:
    slots = iter(_free_slots(live_server))
    answered: set[tuple[str, int]] = set()
    failures: list[str] = []

    class Booking(_booking_schema(live_server).as_state_machine()):  # type: ignore[misc]
        """Half the holds it creates are real free slots, and confirms name a real patient,
        so the links reach held, confirmed and cancelled resources, not only 4xx."""

        creations = itertools.count()

        def before_call(self, case: Any) -> None:
            operation = case.operation.label
            if operation == "POST /v1/holds" and next(self.creations) % 2 == 0:
                case.body = next(slots, case.body)
            if operation == "POST /v1/holds/{hold_id}/confirm" and isinstance(case.body, dict):
                case.body = {**case.body, "patient_id": PATIENT}

        def after_call(self, response: Any, case: Any) -> None:
            answered.add((case.operation.label, response.status_code))
            super().after_call(response, case)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live_server.base, "headers": _auth(live_server)}

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            try:
                super().validate_response(response, case, *args, **kwargs)
            except Exception as failure:
                failures.append(f"{case.operation.label} -> {response.status_code}: {failure}")
                raise

    # Replaying a scenario meets a service whose state has moved on, so its rules draw
    # differently (schemathesis' own runner treats this the same way): the failures recorded
    # as they happened are what counts.
    with contextlib.suppress(FlakyStrategyDefinition):
        Booking.run(
            settings=settings(
                max_examples=SCENARIOS,
                stateful_step_count=STEPS_PER_SCENARIO,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
        )
    assert not failures, "\n\n".join(failures)
    assert next(slots, None) is not None, "ran out of free slots: the scenarios used them all"
    # Real holds were made, and the links from them reached a real hold at least once.
    linked = {
        ("GET /v1/holds/{hold_id}", 200),
        ("DELETE /v1/holds/{hold_id}", 200),
        ("POST /v1/holds/{hold_id}/confirm", 201),
    }
    assert ("POST /v1/holds", 201) in answered, repr(sorted(answered))
    assert linked & answered, repr(sorted(answered))


def _free_slots(server: DemoServer) -> list[dict[str, str]]:
    """Bodies for POST /holds naming slots that GET /availability offers now."""
    bodies = []
    start = datetime.now(UTC).date() + timedelta(days=2)
    for kind, clinician in itertools.product((INITIAL, FOLLOW_UP), (AMARA, TOM)):
        for slot in _availability(server, kind, clinician, start, start + timedelta(days=20)):
            local = datetime.fromisoformat(slot["start_time"]).astimezone(ZoneInfo("Europe/London"))
            bodies.append(
                {
                    "appointment_type_id": kind,
                    "clinician_id": clinician,
                    "date": local.date().isoformat(),
                    "start_time": local.strftime("%H:%M"),
                }
            )
    return bodies[::7]  # spread over days and clinicians


def _availability(
    server: DemoServer, kind: str, clinician: str, first: date, last: date
) -> list[dict[str, Any]]:
    query = f"appointment_type_id={kind}&clinician_id={clinician}"
    query += f"&start_date={first}&end_date={last}"
    request = urllib.request.Request(
        f"{server.api}/availability?{query}", headers={"Authorization": f"Bearer {server.key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        slots: list[dict[str, Any]] = orjson.loads(response.read())["data"]
    return slots
