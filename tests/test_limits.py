"""Per-key rate limit and active-hold cap (contract section 5)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from tests.catalog import FOLLOW_UP
from tests.conftest import Api, MakeApi
from tests.helpers import confirm_body, hold_body


async def test_every_response_carries_rate_limit_headers(api: Api) -> None:
    first = await api.client.get("/v1/clinicians", headers=api.auth())
    second = await api.client.post("/v1/holds", json={}, headers=api.auth())
    unauthenticated = await api.client.get("/v1/clinicians")
    for response in (first, second, unauthenticated):
        assert response.headers["X-RateLimit-Limit"] == "600"
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in (first, second)]
    assert remaining[1] == remaining[0] - 1


async def test_each_request_on_a_kept_alive_connection_is_counted_on_its_own(
    make_api: MakeApi,
) -> None:
    api = await make_api(rate_limit_per_minute=100)
    authenticated = await api.client.get("/v1/clinicians", headers=api.auth())
    anonymous = await api.client.get("/v1/clinicians")
    refused = await api.client.post("/v1/holds", json={}, headers=api.auth())
    again = await api.client.get("/v1/clinicians", headers=api.auth())
    assert anonymous.headers["X-RateLimit-Remaining"] == "100"
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in (authenticated, refused, again)]
    assert remaining == [99, 98, 97]


async def test_requests_over_the_rate_are_429_with_retry_after(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_per_minute=5)
    statuses = [(await api.call("GET", "/clinicians"))[0] for _ in range(5)]
    assert statuses == [200] * 5
    response = await api.client.get("/v1/clinicians", headers=api.auth())
    body = await response.json()
    assert (response.status, body["error"]["code"]) == (429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"


async def test_a_huge_limit_admits_everything(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_per_minute=1_000_000_000)
    statuses = [(await api.call("GET", "/clinicians"))[0] for _ in range(20)]
    assert statuses == [200] * 20


async def test_rate_limits_are_per_key(make_api: MakeApi) -> None:
    api = await make_api(rate_limit_per_minute=2)
    for _ in range(2):
        await api.call("GET", "/clinicians")
    assert (await api.call("GET", "/clinicians"))[0] == 429
    assert (await api.call("GET", "/clinicians", key=api.other_org_key))[0] == 200


async def test_active_holds_per_key_are_capped(make_api: MakeApi) -> None:
    api = await make_api(max_active_holds_per_key=2)
    assert (await api.call("POST", "/holds", hold_body("09:00")))[0] == 201
    assert (await api.call("POST", "/holds", hold_body("10:00")))[0] == 201
    status, body = await api.call("POST", "/holds", hold_body("11:00"))
    assert (status, body["error"]["code"]) == (429, "too_many_holds")


async def test_release_and_confirm_free_room_at_once(make_api: MakeApi) -> None:
    api = await make_api(max_active_holds_per_key=1)
    _, first = await api.call("POST", "/holds", hold_body("09:00"))
    await api.call("DELETE", f"/holds/{first['data']['id']}")
    status, second = await api.call("POST", "/holds", hold_body("10:00"))
    assert status == 201
    await api.call("POST", f"/holds/{second['data']['id']}/confirm", confirm_body())
    assert (await api.call("POST", "/holds", hold_body("11:00")))[0] == 201


async def test_expiry_frees_room(make_api: MakeApi) -> None:
    api = await make_api(max_active_holds_per_key=1, hold_ttl_seconds=1)
    assert (await api.call("POST", "/holds", hold_body("09:00")))[0] == 201
    await asyncio.sleep(2.1)
    assert (await api.call("POST", "/holds", hold_body("10:00")))[0] == 201


async def test_refused_holds_take_no_room(make_api: MakeApi) -> None:
    api = await make_api(max_active_holds_per_key=2)
    assert (await api.call("POST", "/holds", hold_body("09:00")))[0] == 201
    for _ in range(3):
        status, _ = await api.call("POST", "/holds", hold_body("09:15", kind=FOLLOW_UP))
        assert status == 409
    assert (await api.call("POST", "/holds", hold_body("10:00")))[0] == 201


async def test_creating_a_hold_costs_two_redis_round_trips(api: Api) -> None:
    await api.call("POST", "/holds", hold_body("09:00"))  # warm caches and the tag's marker
    client = aioredis.Redis.from_url(api.settings.redis_url, decode_responses=True)
    sent: list[str] = []
    ready = asyncio.Event()

    async def watch() -> None:
        async with client.monitor() as monitor:
            ready.set()
            async for command in monitor.listen():
                if command["client_type"] != "lua":  # commands scripts run are not round trips
                    sent.append(command["command"].split()[0].upper())

    watcher = asyncio.create_task(watch())
    await ready.wait()
    await asyncio.sleep(0.1)
    status, _ = await api.call("POST", "/holds", hold_body("10:00"))
    await asyncio.sleep(0.2)
    watcher.cancel()
    await client.aclose()
    assert status == 201
    assert sent == ["EVALSHA", "EVALSHA"]
