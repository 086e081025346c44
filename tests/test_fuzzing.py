"""Schemathesis against a live `holds serve`: no generated request may get a 5xx."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from app.embedded_redis import free_port


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {
        "HOLDS_DATA_DIR": str(directory / "data"),
        "HOLDS_RATE_LIMIT_PER_MINUTE": "100000",
        "HOLDS_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    key = _demo_key(process)
    base = f"http://127.0.0.1:{port}"
    _wait_until_ready(f"{base}/readyz")
    yield base, key
    process.send_signal(signal.SIGINT)
    process.wait(timeout=20)


def _demo_key(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = re.search(r"pk_test_\S+", line)
        if found:
            return found.group(0)
        if not line and process.poll() is not None:
            break
    raise AssertionError("holds serve --demo printed no key")


def _wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} not ready")


@pytest.fixture(scope="module")
def api_schema(live_server: tuple[str, str]) -> Any:
    base, _ = live_server
    return schemathesis.openapi.from_url(f"{base}/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case: Any, live_server: tuple[str, str]) -> None:
    base, key = live_server
    case.call_and_validate(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, checks=[not_a_server_error]
    )
