"""A hold's live status for browsers: its client_secret and GET /holds/{id}/events
(CONTRACT section 9)."""

from __future__ import annotations

import hashlib
from typing import Any

import redis.asyncio as aioredis

from app.store import keys
from tests.conftest import Api
from tests.helpers import confirm_body, hold_body


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
    ):
        response = await api.client.request(method, path, json=body, headers=secret_auth)
        assert response.status == 401, (method, path)
        assert (await response.json())["error"]["code"] == "unauthorized"


async def test_client_secret_in_the_query_opens_no_json_route(api: Api) -> None:
    hold = await _hold(api)
    path = f"{api.settings.base_path}/holds/{hold['id']}?client_secret={hold['client_secret']}"
    response = await api.client.get(path)
    assert response.status == 401
