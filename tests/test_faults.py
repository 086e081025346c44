"""Every 201 from confirm ends as exactly one SQL row, whatever process dies when.

Real processes, really killed: `holds worker` and `holds serve` subprocesses and a redis-server
run with deploy/redis.conf, each stopped with SIGKILL at the worst moment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from app.config import Settings
from app.embedded_redis import free_port
from app.web.app import create_app
from tests.conftest import Api, StartWorker, eventually, seed_database, sql_rows
from tests.helpers import confirm_body, hold_body
from tests.servers import DeployedRedis

MONDAYS = ("2030-07-01", "2030-07-15", "2030-07-22")
SLOTS = [f"{hour:02d}:{minute:02d}" for hour in range(9, 17) for minute in (0, 30)]


async def _row_counts(database_url: str, appointment_ids: list[str]) -> dict[str, int]:
    rows = await sql_rows(database_url, "SELECT id FROM appointments")
    found = [row.id for row in rows]
    return {appointment_id: found.count(appointment_id) for appointment_id in appointment_ids}


async def _all_persisted_once(database_url: str, appointment_ids: list[str]) -> bool:
    return set((await _row_counts(database_url, appointment_ids)).values()) == {1}


async def test_worker_killed_mid_persist(api: Api, start_worker: StartWorker) -> None:
    slow = start_worker(fault_persist_delay_seconds="5")
    booked = []
    for start_time in ("09:00", "10:00", "11:00"):
        _, hold = await api.call("POST", "/holds", hold_body(start_time))
        _, confirmed = await api.call(
            "POST", f"/holds/{hold['data']['id']}/confirm", confirm_body()
        )
        booked.append(confirmed["data"]["id"])
    queue = aioredis.Redis.from_url(api.settings.redis_url)

    async def jobs_in_progress() -> bool:
        return bool([key async for key in queue.scan_iter("arq:in-progress:*")])

    await eventually(jobs_in_progress)
    os.kill(slow.pid, signal.SIGKILL)
    slow.wait()
    await queue.aclose()
    assert await _row_counts(api.settings.effective_database_url, booked) == dict.fromkeys(
        booked, 0
    )
    start_worker()
    await eventually(lambda: _all_persisted_once(api.settings.effective_database_url, booked), 30)


@pytest.fixture
def api_process(
    redis_url: str, sqlite_url: str, tmp_path: Path
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """`holds serve` that dies right after confirm commits to Redis, before it queues the job."""
    keys = asyncio.run(seed_database(sqlite_url))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {
        "HOLDS_REDIS_URL": redis_url,
        "HOLDS_DATABASE_URL": sqlite_url,
        "HOLDS_FAULT_EXIT_AFTER_CONFIRM_COMMIT": "true",
        "HOLDS_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield f"http://127.0.0.1:{port}/v1", keys.key, process
    if process.poll() is None:
        process.kill()
        process.wait()


async def test_api_dying_between_redis_commit_and_enqueue(
    api_process: tuple[str, str, subprocess.Popen[bytes]],
    sqlite_url: str,
    start_worker: StartWorker,
) -> None:
    base, key, process = api_process
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        await eventually(lambda: _answers(http, base), within=30)
        async with http.post(f"{base}/holds", json=hold_body()) as response:
            hold_id = (await response.json())["data"]["id"]
        with pytest.raises(aiohttp.ClientError):
            async with http.post(
                f"{base}/holds/{hold_id}/confirm", json=confirm_body()
            ) as response:
                await response.read()
    assert process.wait(timeout=10) == 70
    start_worker()

    async def persisted() -> bool:
        rows = await sql_rows(sqlite_url, "SELECT hold_id FROM appointments")
        return [row.hold_id for row in rows] == [hold_id]

    await eventually(persisted, within=30)


async def _answers(http: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with http.get(base.replace("/v1", "/readyz")) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def test_redis_killed_and_restarted_mid_traffic(
    aiohttp_client: Any, deployed_redis: DeployedRedis, sqlite_url: str, start_worker: StartWorker
) -> None:
    keys = await seed_database(sqlite_url)
    settings = Settings(redis_url=deployed_redis.url, database_url=sqlite_url)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    api = Api(client, keys.key, keys.other_org_key, keys.lacking, settings)
    start_worker(redis=deployed_redis.url)
    holds = []
    for day in MONDAYS:
        for start_time in SLOTS:
            status, hold = await api.call("POST", "/holds", hold_body(start_time, date=day))
            assert status == 201, hold
            holds.append(hold["data"]["id"])

    confirmed: list[str] = []

    async def confirm(hold_id: str) -> None:
        status, body = await api.call("POST", f"/holds/{hold_id}/confirm", confirm_body())
        if status == 201:
            confirmed.append(body["data"]["id"])
        elif status == 503:
            await asyncio.sleep(0.2)  # the client retries later, as a booking page would
            status, body = await api.call("POST", f"/holds/{hold_id}/confirm", confirm_body())
            if status == 201:
                confirmed.append(body["data"]["id"])

    async def traffic() -> None:
        for start in range(0, len(holds), 4):
            await asyncio.gather(*(confirm(h) for h in holds[start : start + 4]))

    async def crash_and_restart() -> None:
        await eventually(lambda: _at_least(confirmed, 10), within=15)
        deployed_redis.kill()
        await asyncio.sleep(0.3)
        await deployed_redis.start()

    await asyncio.gather(traffic(), crash_and_restart())
    assert len(confirmed) >= 10
    await eventually(lambda: _all_persisted_once(sqlite_url, confirmed), within=40)


async def _at_least(items: list[str], count: int) -> bool:
    return len(items) >= count
