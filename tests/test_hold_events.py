"""A hold's live status for browsers: its client_secret and GET /holds/{id}/events
(CONTRACT section 9)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from app.embedded_redis import free_port
from app.store import keys
from app.web.app import create_app
from tests.conftest import Api, MakeApi
from tests.helpers import confirm_body, hold_body
from tests.servers import _wait_until_ready as wait_until_ready

MISSING = "hold_00000000-0000-4000-8000-000000000000"


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


async def _sleep_until(epoch: float) -> None:
    await asyncio.sleep(max(0.0, epoch - time.time()))


async def _hold(api: Api, body: dict[str, Any] | None = None) -> dict[str, Any]:
    status, created = await api.call("POST", "/holds", body or hold_body())
    assert status == 201
    hold: dict[str, Any] = created["data"]
    return hold


# client_secret


async def test_created_hold_carries_a_long_random_client_secret(api: Api) -> None:
    first, second = await _hold(api), await _hold(api, hold_body("10:00"))
    assert len(first["client_secret"]) >= 32
    assert first["client_secret"] != second["client_secret"]


async def test_idempotent_replay_of_a_create_returns_the_same_client_secret(api: Api) -> None:
    path = f"{api.settings.base_path}/holds"
    headers = api.auth() | {"Idempotency-Key": "create-1"}
    first = await api.client.post(path, json=hold_body(), headers=headers)
    second = await api.client.post(path, json=hold_body(), headers=headers)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert (await first.json())["data"]["client_secret"] == (await second.json())["data"][
        "client_secret"
    ]


async def test_reading_a_hold_never_shows_its_client_secret(api: Api) -> None:
    hold = await _hold(api)
    _, fetched = await api.call("GET", f"/holds/{hold['id']}")
    assert "client_secret" not in fetched["data"]
    _, extended = await api.call("POST", f"/holds/{hold['id']}/extend", {})
    assert hold["client_secret"] not in str(extended)


async def test_the_hold_record_keeps_only_a_hash_of_the_client_secret(api: Api) -> None:
    hold = await _hold(api)
    client = aioredis.Redis.from_url(api.settings.redis_url)
    try:
        record = await client.hgetall(keys.hold(hold["id"]))  # type: ignore[misc]
    finally:
        await client.aclose()
    secret = hold["client_secret"].encode()
    assert all(secret not in value for value in record.values())
    assert record[b"sec"] == hashlib.sha256(secret).hexdigest().encode()


async def test_client_secret_as_a_bearer_token_opens_no_route(api: Api) -> None:
    hold = await _hold(api)
    secret_auth = {"Authorization": f"Bearer {hold['client_secret']}"}
    base, hold_path = api.settings.base_path, f"{api.settings.base_path}/holds/{hold['id']}"
    for method, path, body in (
        ("GET", hold_path, None),
        ("DELETE", hold_path, None),
        ("POST", f"{hold_path}/extend", {}),
        ("POST", f"{hold_path}/confirm", confirm_body()),
        ("POST", f"{base}/holds", hold_body("10:00")),
        ("GET", f"{base}/appointments", None),
        ("GET", f"{base}/patients", None),
        ("GET", f"{hold_path}/events", None),
    ):
        response = await api.client.request(method, path, json=body, headers=secret_auth)
        assert response.status == 401, (method, path)
        assert (await response.json())["error"]["code"] == "unauthorized"


async def test_client_secret_in_the_query_opens_no_json_route(api: Api) -> None:
    hold = await _hold(api)
    path = f"{api.settings.base_path}/holds/{hold['id']}?client_secret={hold['client_secret']}"
    response = await api.client.get(path)
    assert response.status == 401


# GET /holds/{id}/events


@dataclass
class Stream:
    """A Server-Sent Events response, read one event (or comment) at a time."""

    response: aiohttp.ClientResponse

    async def next(self, within: float = 3.0) -> dict[str, str]:
        """The next event's fields (a comment comes as {'comment': text}); {} at the end."""
        fields: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(self.response.content.readline(), within)
            if not line:
                return fields
            text = line.decode().rstrip("\n")
            if not text:
                if fields:
                    return fields
                continue
            name, _, value = text.partition(":")
            fields["comment" if name == "" else name] = value.strip()

    async def hold(self, within: float = 3.0) -> dict[str, Any]:
        fields = await self.next(within)
        assert fields.get("event") == "hold", fields
        data: dict[str, Any] = json.loads(fields["data"])
        return data


def _events_path(api: Api, hold_id: str, secret: str | None = None) -> str:
    query = f"?client_secret={secret}" if secret is not None else ""
    return f"{api.settings.base_path}/holds/{hold_id}/events{query}"


async def _open(
    api: Api, hold_id: str, *, secret: str | None = None, headers: dict[str, str] | None = None
) -> Stream:
    response = await api.client.get(
        _events_path(api, hold_id, secret),
        headers=headers if headers is not None else ({} if secret else api.auth()),
    )
    assert response.status == 200, await response.text()
    return Stream(response)


async def test_stream_sends_the_hold_at_once_as_get_returns_it(api: Api) -> None:
    hold = await _hold(api)
    stream = await _open(api, hold["id"])
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    first = await stream.next(within=1.0)
    _, fetched = await api.call("GET", f"/holds/{hold['id']}")
    assert first["event"] == "hold" and first["id"]
    assert json.loads(first["data"]) == fetched["data"]


async def test_client_secret_in_the_query_opens_the_stream(api: Api) -> None:
    hold = await _hold(api)
    stream = await _open(api, hold["id"], secret=hold["client_secret"])
    assert (await stream.hold())["id"] == hold["id"]


async def test_stream_without_credentials_is_401_json(api: Api) -> None:
    hold = await _hold(api)
    response = await api.client.get(_events_path(api, hold["id"]))
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"


async def test_stream_with_a_wrong_secret_or_another_org_is_404_json(api: Api) -> None:
    hold = await _hold(api)
    other = await _hold(api, hold_body("10:00"))
    for path, headers in (
        (_events_path(api, hold["id"], other["client_secret"]), {}),
        (_events_path(api, hold["id"], "x" * 43), {}),
        (_events_path(api, "hold_nope", hold["client_secret"]), {}),
        (_events_path(api, hold["id"]), api.auth(api.other_org_key)),
        (_events_path(api, MISSING), api.auth()),
    ):
        response = await api.client.get(path, headers=headers)
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "hold_not_found"


async def test_extension_reaches_the_stream_within_a_second(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=3)
    hold = await _hold(api)
    stream = await _open(api, hold["id"])
    await stream.hold()
    await _sleep_until(_epoch(hold["created_at"]) + 1.05)
    _, extended = await api.call("POST", f"/holds/{hold['id']}/extend", {})
    changed_at = time.monotonic()
    assert await stream.hold() == extended["data"]
    assert time.monotonic() - changed_at < 1.0


async def test_release_is_streamed_and_then_the_stream_ends(api: Api) -> None:
    hold = await _hold(api)
    stream = await _open(api, hold["id"])
    await stream.hold()
    await api.call("DELETE", f"/holds/{hold['id']}")
    assert (await stream.hold(within=1.0))["status"] == "released"
    assert await stream.next() == {}


async def test_confirmation_is_streamed_and_then_the_stream_ends(api: Api) -> None:
    hold = await _hold(api)
    stream = await _open(api, hold["id"], secret=hold["client_secret"])
    await stream.hold()
    _, appointment = await api.call("POST", f"/holds/{hold['id']}/confirm", confirm_body())
    confirmed = await stream.hold(within=1.0)
    assert (confirmed["status"], confirmed["appointment_id"]) == (
        "confirmed",
        appointment["data"]["id"],
    )
    assert await stream.next() == {}


async def test_expiry_is_streamed_within_a_second_with_no_worker(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=2)
    hold = await _hold(api)
    stream = await _open(api, hold["id"], secret=hold["client_secret"])
    await stream.hold()
    expired = await stream.hold(within=4.0)
    assert expired["status"] == "expired"
    assert time.time() - _epoch(hold["expires_at"]) < 1.0
    assert await stream.next() == {}


async def test_a_stream_of_an_ended_hold_sends_its_state_and_ends(api: Api) -> None:
    hold = await _hold(api)
    await api.call("DELETE", f"/holds/{hold['id']}")
    stream = await _open(api, hold["id"])
    assert (await stream.hold())["status"] == "released"
    assert await stream.next() == {}


async def test_quiet_stream_sends_a_ping_comment(make_api: MakeApi) -> None:
    api = await make_api(stream_ping_seconds=0.3)
    hold = await _hold(api)
    stream = await _open(api, hold["id"])
    await stream.hold()
    assert await stream.next(within=2.0) == {"comment": "ping"}


async def test_reconnect_with_last_event_id_resends_the_current_state(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=3)
    hold = await _hold(api)
    first = await _open(api, hold["id"])
    last_id = (await first.next())["id"]
    first.response.close()
    await _sleep_until(_epoch(hold["created_at"]) + 1.05)
    _, extended = await api.call("POST", f"/holds/{hold['id']}/extend", {})
    again = await _open(api, hold["id"], headers=api.auth() | {"Last-Event-ID": last_id})
    assert (await again.hold())["expires_at"] == extended["data"]["expires_at"]


async def test_open_streams_per_api_key_are_capped_with_429(make_api: MakeApi) -> None:
    api = await make_api(streams_per_key=1)
    hold = await _hold(api)
    await (await _open(api, hold["id"])).hold()
    response = await api.client.get(_events_path(api, hold["id"]), headers=api.auth())
    assert response.status == 429
    assert (await response.json())["error"]["code"] == "too_many_streams"


async def test_open_streams_per_client_secret_are_capped_with_429(make_api: MakeApi) -> None:
    api = await make_api(streams_per_hold=1)
    hold = await _hold(api)
    await (await _open(api, hold["id"], secret=hold["client_secret"])).hold()
    response = await api.client.get(_events_path(api, hold["id"], hold["client_secret"]))
    assert response.status == 429


async def test_stream_answers_cors_for_an_allowed_origin(make_api: MakeApi) -> None:
    api = await make_api(cors_origins="https://book.example")
    hold = await _hold(api)
    origin = {"Origin": "https://book.example"}
    stream = await _open(api, hold["id"], secret=hold["client_secret"], headers=origin)
    assert stream.response.headers.get("Access-Control-Allow-Origin") == origin["Origin"]
    await stream.hold()


@contextmanager
def _second_api_process(api: Api, directory: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Another `holds serve` (no worker) on the same Redis and database: its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {
        "HOLDS_REDIS_URL": api.settings.redis_url,
        "HOLDS_DATABASE_URL": api.settings.database_url,
        "HOLDS_DATA_DIR": str(directory),
        "HOLDS_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz")
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_changes_made_by_another_api_process_reach_the_stream(
    api: Api, tmp_path: Path
) -> None:
    hold = await _hold(api)
    stream = await _open(api, hold["id"], secret=hold["client_secret"])
    await stream.hold()
    with _second_api_process(api, tmp_path) as (other, _):
        async with aiohttp.ClientSession() as session:
            url = f"{other}{api.settings.base_path}/holds/{hold['id']}"
            async with session.delete(url, headers=api.auth()) as response:
                assert response.status == 200
            released_at = time.monotonic()
        assert (await stream.hold(within=2.0))["status"] == "released"
        assert time.monotonic() - released_at < 1.0


async def test_shutdown_ends_open_streams_cleanly(api: Api) -> None:
    hold = await _hold(api)
    server = TestServer(create_app(api.settings))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            url = server.make_url(_events_path(api, hold["id"]))
            async with session.get(url, headers=api.auth()) as response:
                stream = Stream(response)
                await stream.hold()
                closing = asyncio.create_task(server.close())
                assert await stream.next(within=5.0) == {}
                await asyncio.wait_for(closing, 10)
    finally:
        await server.close()
