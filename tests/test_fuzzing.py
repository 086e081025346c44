"""Schemathesis against a live `holds serve`: no generated request may get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.servers import DemoServer, demo_server


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    with demo_server(tmp_path_factory.mktemp("fuzz"), rate_limit_per_minute="100000") as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(live_server: DemoServer) -> Any:
    return schemathesis.openapi.from_url(f"{live_server.api}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: Any, live_server: DemoServer) -> None:
    case.call_and_validate(
        base_url=live_server.base,
        headers={"Authorization": f"Bearer {live_server.key}"},
        checks=[not_a_server_error],
    )
