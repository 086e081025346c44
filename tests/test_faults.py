"""Every 201 from confirm ends as exactly one SQL row, whatever process dies when.

Real processes, really killed: `holds worker` and `holds serve` subprocesses and a redis-server
run with deploy/redis.conf, each stopped with SIGKILL at the worst moment.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from app.config import Settings
from app.embedded_redis import EmbeddedRedis, free_port
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


def _serve(
    redis_url: str, sqlite_url: str, log_path: Path, **settings: str
) -> tuple[str, subprocess.Popen[bytes]]:
    """A `holds serve` subprocess on a free port with HOLDS_<NAME> settings."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {
        "HOLDS_REDIS_URL": redis_url,
        "HOLDS_DATABASE_URL": sqlite_url,
        "HOLDS_LOG_LEVEL": "WARNING",
    }
    env |= {f"HOLDS_{name.upper()}": value for name, value in settings.items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return f"http://127.0.0.1:{port}/v1", process


@pytest.fixture
def api_process(
    redis_url: str, sqlite_url: str, tmp_path: Path
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """`holds serve` that dies right after confirm commits to Redis, before it queues the job."""
    keys = asyncio.run(seed_database(sqlite_url))
    base, process = _serve(
        redis_url, sqlite_url, tmp_path / "serve.log", fault_exit_after_confirm_commit="true"
    )
    yield base, keys.key, process
    if process.poll() is None:
        process.kill()
        process.wait()


async def test_api_dying_between_redis_commit_and_enqueue(
    api_process: tuple[str, str, subprocess.Popen[bytes]],
    redis_url: str,
    sqlite_url: str,
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    base, key, process = api_process
    headers = {"Authorization": f"Bearer {key}"}
    confirm = {"Idempotency-Key": "confirm-once"}
    async with aiohttp.ClientSession(headers=headers) as http:
        await eventually(lambda: _answers(http, base), within=30)
        async with http.post(f"{base}/holds", json=hold_body()) as response:
            hold_id = (await response.json())["data"]["id"]
        with pytest.raises(aiohttp.ClientError):
            async with http.post(
                f"{base}/holds/{hold_id}/confirm", json=confirm_body(), headers=confirm
            ) as response:
                await response.read()
    assert process.wait(timeout=10) == 70
    start_worker()

    async def persisted() -> bool:
        rows = await sql_rows(sqlite_url, "SELECT hold_id FROM appointments")
        return [row.hold_id for row in rows] == [hold_id]

    await eventually(persisted, within=30)
    # The client never got its answer: its retry, to another process, gets the appointment.
    base, again = _serve(redis_url, sqlite_url, tmp_path / "serve-again.log")
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            await eventually(lambda: _answers(http, base), within=30)
            async with http.post(
                f"{base}/holds/{hold_id}/confirm", json=confirm_body(), headers=confirm
            ) as response:
                assert (response.status, response.headers["Idempotent-Replayed"]) == (201, "true")
                appointment_id = (await response.json())["data"]["id"]
    finally:
        again.kill()
        again.wait()
    rows = await sql_rows(sqlite_url, "SELECT id FROM appointments")
    assert [row.id for row in rows] == [appointment_id]


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
    # Jobs cut short by the kill run again or are reconciled (every 5 s): about 10 s at most,
    # below SQLite's 30 s busy timeout, so a write lock left behind would show here.
    await eventually(lambda: _all_persisted_once(sqlite_url, confirmed), within=25)


async def _at_least(items: list[str], count: int) -> bool:
    return len(items) >= count


FILLER_KEYS = 600_000  # about a second of loading for the AOF's RDB preamble


async def _grow_the_aof(url: str) -> None:
    """Give Redis a data set it takes a visible while to load after a restart."""
    client = aioredis.Redis.from_url(url)
    await client.execute_command("DEBUG", "POPULATE", FILLER_KEYS, "filler", 64)
    await client.bgrewriteaof()
    for _ in range(600):
        if not (await client.info("persistence"))["aof_rewrite_in_progress"]:
            break
        await asyncio.sleep(0.1)
    await client.aclose()


@dataclass
class Seen:
    """Every answer the API gave while Redis restarted, and each 503'd write to retry."""

    statuses: list[int] = field(default_factory=list)
    not_ready_while_loading: int = 0
    unanswered: list[tuple[str, Any, str]] = field(default_factory=list)  # path, body, key


async def _request(
    client: TestClient[Any, Any], seen: Seen, method: str, path: str, body: Any, headers: Any
) -> tuple[int, Any]:
    response = await client.request(method, path, json=body, headers=headers)
    assert response.content_type == "application/json", await response.text()
    payload = await response.json()
    assert response.headers["X-Request-Id"]
    seen.statuses.append(response.status)
    if response.status == 503:
        assert response.headers["Retry-After"] and payload["error"]["code"] == "unavailable"
        assert payload["error"]["request_id"] == response.headers["X-Request-Id"]
    return response.status, payload


async def test_redis_restarting_with_a_large_aof_gives_503s_and_no_500(
    aiohttp_client: Any, deployed_redis: DeployedRedis, sqlite_url: str
) -> None:
    keys = await seed_database(sqlite_url)
    await _grow_the_aof(deployed_redis.url)
    settings = Settings(redis_url=deployed_redis.url, database_url=sqlite_url)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    auth = {"Authorization": f"Bearer {keys.key}"}
    seen = Seen()
    slots = iter([(day, start) for day in MONDAYS for start in SLOTS])
    restarted, booked = asyncio.Event(), asyncio.Event()

    async def book() -> None:
        for day, start in slots:
            key = f"book-{day}-{start}"
            headers = auth | {"Idempotency-Key": key}
            status, _ = await _request(
                client, seen, "POST", "/v1/holds", hold_body(start, date=day), headers
            )
            if status == 503:
                seen.unanswered.append(("/v1/holds", hold_body(start, date=day), key))
            if restarted.is_set() and status == 201 and seen.not_ready_while_loading:
                return

    async def probe() -> None:
        while not booked.is_set():
            status, body = await _request(client, seen, "GET", "/readyz", None, {})
            if status == 503 and "loading" in body["error"]["message"]:
                seen.not_ready_while_loading += 1
            await asyncio.sleep(0.02)

    async def restart() -> None:
        # Mid-traffic, however fast the machine books.
        await eventually(lambda: _at_least(seen.statuses, 4), within=30)
        deployed_redis.kill()
        deployed_redis.launch()  # answers LOADING while it reads the AOF back
        restarted.set()

    async def traffic() -> None:
        await asyncio.gather(book(), book())
        booked.set()

    await asyncio.wait_for(asyncio.gather(traffic(), probe(), restart()), timeout=60)
    assert 500 not in seen.statuses
    assert seen.not_ready_while_loading >= 1 and seen.unanswered
    for path, body, key in seen.unanswered:  # each 503'd write, retried, has one outcome
        for _ in range(100):  # as a client would: on 503, and while its first attempt runs
            status, answer = await _request(
                client, seen, "POST", path, body, auth | {"Idempotency-Key": key}
            )
            in_use = status == 409 and answer["error"]["code"] == "idempotency_key_in_use"
            if status != 503 and not in_use:
                break
            await asyncio.sleep(0.1)
        assert status == 201, answer


async def test_embedded_redis_is_handed_over_only_once_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    embedded = EmbeddedRedis(tmp_path / "redis")
    await _grow_the_aof(embedded.start())
    embedded.stop()
    with caplog.at_level(logging.WARNING, logger="holds.redis"):
        url = embedded.start()
    try:
        client = aioredis.Redis.from_url(url)
        assert (await client.info("persistence"))["loading"] == 0
        assert await client.dbsize() == FILLER_KEYS
        await client.aclose()
    finally:
        embedded.stop()
    assert "loading its data set" in caplog.text


BUSY_SCRIPT = """
local started = redis.call('TIME')
repeat
  local now = redis.call('TIME')
until (now[1] - started[1]) * 1000000 + (now[2] - started[2]) > tonumber(ARGV[1])
return 1
"""


async def test_a_redis_busy_with_a_long_script_gives_503s_and_no_500(
    aiohttp_client: Any, deployed_redis: DeployedRedis, sqlite_url: str
) -> None:
    keys = await seed_database(sqlite_url)
    settings = Settings(redis_url=deployed_redis.url, database_url=sqlite_url)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    auth = {"Authorization": f"Bearer {keys.key}"}
    seen = Seen()
    await _request(client, seen, "POST", "/v1/holds", hold_body("09:00"), auth)
    blocker = aioredis.Redis.from_url(deployed_redis.url)
    # deploy/redis.conf's lua-time-limit is 500 ms: past that, Redis answers others BUSY.
    busy = asyncio.ensure_future(blocker.eval(BUSY_SCRIPT, 0, 1_500_000))
    await asyncio.sleep(0.7)
    for start in ("10:00", "11:00"):
        status, _ = await _request(client, seen, "POST", "/v1/holds", hold_body(start), auth)
    await busy
    await blocker.aclose()
    status, _ = await _request(client, seen, "POST", "/v1/holds", hold_body("12:00"), auth)
    assert status == 201
    assert 503 in seen.statuses and 500 not in seen.statuses
