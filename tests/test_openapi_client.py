"""A client generated from the served document by openapi-python-client books the seed's flow."""

from __future__ import annotations

import importlib
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.catalog import AMARA, INITIAL, PATIENT
from tests.servers import DemoServer, demo_server

PACKAGE = "holds_client"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("client")) as server:
        yield server


@pytest.fixture(scope="module")
def generated(live_server: DemoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The generated package, imported; it is generated with --fail-on-warning."""
    directory = tmp_path_factory.mktemp("generated")
    document = directory / "openapi.json"
    with urllib.request.urlopen(f"{live_server.api}/openapi.json", timeout=10) as response:
        document.write_bytes(response.read())
    config = directory / "config.yaml"
    config.write_text(f"project_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\n")
    command = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document)]
    command += ["--config", str(config), "--meta", "none", "--fail-on-warning"]
    command += ["--output-path", str(directory / PACKAGE)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    sys.path.insert(0, str(directory))
    try:
        yield _Client(live_server)
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


class _Client:
    """The generated modules, and an authenticated client of the live server."""

    def __init__(self, server: DemoServer) -> None:
        self.client = self.module("client").AuthenticatedClient(
            base_url=server.base, token=server.key
        )

    def module(self, name: str) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.{name}")

    def api(self, tag: str, operation: str) -> ModuleType:
        return self.module(f"api.{tag}.{operation}")

    def model(self, name: str) -> Any:
        return getattr(self.module("models"), name)


def _first_free_slot(generated: _Client) -> dict[str, Any]:
    first = datetime.now(UTC).date() + timedelta(days=2)
    found = generated.api("availability", "list_availability").sync(
        client=generated.client,
        appointment_type_id=INITIAL,
        clinician_id=AMARA,
        start_date=first,
        end_date=first + timedelta(days=14),
    )
    start = found.data[0].start_time.astimezone(ZoneInfo("Europe/London"))
    return {"day": start.date(), "time": start.strftime("%H:%M")}


def _hold(generated: _Client, day: date, at: str) -> Any:
    body = generated.model("HoldCreate")(
        appointment_type_id=INITIAL, clinician_id=AMARA, date=day, start_time=at
    )
    response = generated.api("holds", "create_hold").sync_detailed(
        client=generated.client, body=body
    )
    assert response.status_code == 201
    assert type(response.parsed).__name__ == "CreateHoldResponse201"
    return response.parsed.data


def test_generated_client_books_the_whole_flow(generated: _Client) -> None:
    slot = _first_free_slot(generated)
    hold = _hold(generated, slot["day"], slot["time"])
    fetched = generated.api("holds", "get_hold").sync(hold_id=hold.id, client=generated.client)
    assert (fetched.data.id, fetched.data.status.value) == (hold.id, "active")

    confirm = generated.api("holds", "confirm_hold")
    body = generated.model("HoldConfirm")(patient_id=PATIENT)
    confirmed = confirm.sync_detailed(hold_id=hold.id, client=generated.client, body=body)
    assert confirmed.status_code == 201
    assert type(confirmed.parsed).__name__ == "ConfirmHoldResponse201"
    appointment = confirmed.parsed.data
    read = generated.api("appointments", "get_appointment").sync(
        appointment_id=appointment.id, client=generated.client
    )
    assert (read.data.id, read.data.status.value) == (appointment.id, "confirmed")
    assert (read.data.start_time, read.data.patient_id) == (hold.start_time, PATIENT)

    again = confirm.sync_detailed(hold_id=hold.id, client=generated.client, body=body)
    assert again.status_code == 409
    assert again.parsed.error.code.value == "hold_already_confirmed"


def test_generated_client_releases_a_hold(generated: _Client) -> None:
    slot = _first_free_slot(generated)
    hold = _hold(generated, slot["day"], slot["time"])
    released = generated.api("holds", "release_hold").sync(hold_id=hold.id, client=generated.client)
    assert released.data.message.value == "Hold released"
    fetched = generated.api("holds", "get_hold").sync(hold_id=hold.id, client=generated.client)
    assert fetched.data.status.value == "released"
    assert _first_free_slot(generated) == slot  # the slot is free again at once
