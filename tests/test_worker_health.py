"""Many `holds worker` processes on one host with default settings, and `--check` per worker."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import redis

from app.embedded_redis import free_port
from tests.catalog import AWAY_MONDAY
from tests.conftest import WORKER_HEALTH_KEY, Api, MakeApi, eventually, sql_rows
from tests.helpers import confirm_body, hold_body

PERSIST_RUNS = re.compile(r'^holds_job_duration_seconds_count\{job="persist_appointment"\} (\S+)$')
ALIVE_FOR_SECONDS = 10.0


class Workers:
    """`holds worker` processes started with default settings but for HOLDS_WORKER_METRICS_PORT,
    a free base port so that runs elsewhere on this host using 9101 do not interfere."""

    def __init__(self, redis_url: str, database_url: str, directory: Path) -> None:
        self.base_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
        self.env |= {
            "HOLDS_REDIS_URL": redis_url,
            "HOLDS_DATABASE_URL": database_url,
            "HOLDS_WORKER_METRICS_PORT": str(self.base_port),
            "HOLDS_LOG_LEVEL": "WARNING",
        }
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *arguments: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "worker", *arguments],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        return (self.directory / f"worker-{self.processes.index(process)}.log").read_text()

    def ports(self) -> dict[int, int]:
        """pid -> metrics port, for every worker answering on the ports it may have taken."""
        found = {}
        for port in range(self.base_port, self.base_port + 32):
            body = _get(f"http://127.0.0.1:{port}/healthz")
            if body is not None and body.get("status") == "ok":
                found[body["pid"]] = port
        return found

    async def wait_until_healthy(self) -> dict[int, int]:
        async def every_one_answers() -> bool:
            assert all(process.poll() is None for process in self.processes), "a worker exited"
            pids = set(self.ports())
            return pids == {process.pid for process in self.processes}

        await eventually(every_one_answers, within=30)
        return self.ports()

    def check(self, *arguments: str) -> int:
        command = [sys.executable, "-m", "app", "worker", "--check", *arguments]
        return subprocess.run(command, env=self.env, capture_output=True).returncode

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(redis_url: str, sqlite_url: str, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(redis_url, sqlite_url, tmp_path)
    yield started
    started.stop()


def _get(url: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body: dict[str, object] = json.loads(response.read())
            return body
    except (OSError, ValueError, http.client.HTTPException):
        return None  # nothing there, or not a worker (another test's Redis may sit on a port)


def _persist_runs(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        for line in response.read().decode().splitlines():
            found = PERSIST_RUNS.match(line)
            if found:
                return float(found.group(1))
    return 0.0


def _slots() -> Iterator[tuple[str, str]]:
    """Distinct bookable slots: every hour of Dr Okafor's Mondays from the test summer on,
    but the one she is away."""
    monday = date(2030, 7, 1)
    while True:
        if monday.isoformat() != AWAY_MONDAY:
            for hour in range(9, 17):
                yield monday.isoformat(), f"{hour:02d}:00"
        monday += timedelta(weeks=1)


async def _book(api: Api, day: str, start_time: str) -> None:
    status, hold = await api.call("POST", "/holds", hold_body(start_time, date=day))
    assert status == 201, hold
    path = f"/holds/{hold['data']['id']}/confirm"
    status, appointment = await api.call("POST", path, confirm_body())
    assert status == 201, appointment


async def _book_until_each_took_a_job(
    api: Api, slots: Iterator[tuple[str, str]], ports: list[int], most: int = 80
) -> None:
    """Book one at a time, so jobs arrive as every worker polls, until each worker has run a
    persistence job since this call began."""
    before = {port: _persist_runs(port) for port in ports}
    for _ in range(most):
        await _book(api, *next(slots))
        await asyncio.sleep(0.1)
        if all(_persist_runs(port) > before[port] for port in ports):
            return
    raise AssertionError(f"after {most} bookings, some worker ran no job")


async def test_two_then_three_workers_with_default_settings_on_one_host_all_run_and_take_jobs(
    make_api: MakeApi, workers: Workers
) -> None:
    api = await make_api()
    slots = _slots()
    started = time.monotonic()
    for _ in range(2):
        workers.start()
    ports = await workers.wait_until_healthy()
    assert sorted(ports.values())[0] == workers.base_port  # the first has the default port
    await _book_until_each_took_a_job(api, slots, list(ports.values()))
    workers.start()
    ports = await workers.wait_until_healthy()
    await _book_until_each_took_a_job(api, slots, list(ports.values()))
    await asyncio.sleep(max(0.0, ALIVE_FOR_SECONDS - (time.monotonic() - started)))
    assert [process.poll() for process in workers.processes] == [None] * 3
    assert set(workers.ports()) == {process.pid for process in workers.processes}
    moved = [process for process in workers.processes if ports[process.pid] != workers.base_port]
    for process in moved:
        where = f"metrics port {workers.base_port} is taken; serving on {ports[process.pid]}"
        assert where in workers.log(process)


async def test_a_worker_whose_metrics_port_is_taken_logs_it_and_works_on(
    make_api: MakeApi, workers: Workers
) -> None:
    api = await make_api()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", workers.base_port))
        squatter.listen()
        worker = workers.start("--metrics-port", str(workers.base_port))
        await eventually(lambda: _queue_health_recorded(workers))
        await _book(api, *next(_slots()))
        await eventually(lambda: _appointments_in_sql(api, 1))
    assert worker.poll() is None
    assert f"metrics port {workers.base_port} taken" in workers.log(worker)


async def _queue_health_recorded(workers: Workers) -> bool:
    client = redis.Redis.from_url(workers.env["HOLDS_REDIS_URL"])
    try:
        return bool(client.exists(WORKER_HEALTH_KEY))
    finally:
        client.close()


async def _appointments_in_sql(api: Api, count: int) -> bool:
    query = "SELECT count(*) AS n FROM appointments"
    rows = await sql_rows(api.settings.effective_database_url, query)
    return bool(rows[0].n == count)


async def test_check_fails_for_a_dead_worker_while_the_one_beside_it_passes(
    workers: Workers,
) -> None:
    for _ in range(2):
        workers.start()
    ports = await workers.wait_until_healthy()
    # The one on the default port lives on; the other dies.
    alive, dead = sorted(workers.processes, key=lambda process: ports[process.pid])
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    assert await _queue_health_recorded(workers)  # the queue-wide record still says healthy
    assert workers.check("--metrics-port", str(ports[dead.pid])) == 1
    assert ports[alive.pid] == workers.base_port
    assert workers.check() == 0  # default settings: the worker on this host's default port


def test_check_fails_when_no_worker_answers(workers: Workers) -> None:
    assert workers.check() == 1
