"""POST /holds/{id}/extend: the countdown starts again, within the longest lifetime, and the
slot stays held throughout (CONTRACT section 8)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from app.ids import tag_of
from app.store import keys
from app.web.state import UPKEEP
from tests.catalog import WORKSHOP
from tests.conftest import Api, MakeApi
from tests.helpers import confirm_body, hold_body

MISSING = "hold_00000000-0000-4000-8000-000000000000"


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


async def _hold(api: Api, body: dict[str, Any] | None = None) -> dict[str, Any]:
    status, created = await api.call("POST", "/holds", body or hold_body())
    assert status == 201
    hold: dict[str, Any] = created["data"]
    return hold


async def _sleep_until(epoch: float) -> None:
    await asyncio.sleep(max(0.0, epoch - time.time()))


async def _extend(api: Api, hold_id: str, key: str | None = None) -> tuple[int, Any]:
    return await api.call("POST", f"/holds/{hold_id}/extend", {}, key=key)


async def test_extend_starts_the_countdown_again_from_now(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=3)
    hold = await _hold(api)
    await _sleep_until(_epoch(hold["created_at"]) + 1.05)
    status, body = await _extend(api, hold["id"])
    assert status == 200
    assert body["data"]["status"] == "active"
    assert _epoch(body["data"]["expires_at"]) > _epoch(hold["expires_at"])
    assert _epoch(body["data"]["expires_at"]) - time.time() > 2


async def test_extension_is_capped_by_the_longest_lifetime(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=3, hold_max_lifetime_seconds=4)
    hold = await _hold(api)
    await _sleep_until(_epoch(hold["created_at"]) + 1.05)
    status, body = await _extend(api, hold["id"])
    assert status == 200
    assert _epoch(body["data"]["expires_at"]) == _epoch(hold["created_at"]) + 4


async def test_extend_at_the_longest_lifetime_is_409_hold_extension_limit(
    make_api: MakeApi,
) -> None:
    api = await make_api(hold_ttl_seconds=3, hold_max_lifetime_seconds=3)
    hold = await _hold(api)
    status, body = await _extend(api, hold["id"])
    assert (status, body["error"]["code"]) == (409, "hold_extension_limit")
    _, fetched = await api.call("GET", f"/holds/{hold['id']}")
    assert fetched["data"]["expires_at"] == hold["expires_at"]


async def test_extending_an_expired_hold_is_404_hold_expired(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=1)
    hold = await _hold(api)
    await _sleep_until(_epoch(hold["expires_at"]) + 0.05)
    status, body = await _extend(api, hold["id"])
    assert (status, body["error"]["code"]) == (404, "hold_expired")


async def test_extending_a_released_hold_is_404_hold_released(api: Api) -> None:
    hold = await _hold(api)
    await api.call("DELETE", f"/holds/{hold['id']}")
    status, body = await _extend(api, hold["id"])
    assert (status, body["error"]["code"]) == (404, "hold_released")


async def test_extending_a_confirmed_hold_is_409_hold_confirmed(api: Api) -> None:
    hold = await _hold(api)
    status, _ = await api.call("POST", f"/holds/{hold['id']}/confirm", confirm_body())
    assert status == 201
    status, body = await _extend(api, hold["id"])
    assert (status, body["error"]["code"]) == (409, "hold_confirmed")


async def test_extending_an_unknown_or_malformed_or_foreign_hold_is_404(api: Api) -> None:
    hold = await _hold(api)
    for hold_id, key in ((MISSING, None), ("hold_nope", None), (hold["id"], api.other_org_key)):
        status, body = await _extend(api, hold_id, key=key)
        assert (status, body["error"]["code"]) == (404, "hold_not_found")


async def test_extend_needs_the_write_holds_scope(api: Api) -> None:
    hold = await _hold(api)
    status, body = await _extend(api, hold["id"], key=api.lacking["write_holds"])
    assert (status, body["error"]["code"]) == (403, "insufficient_scope")


async def test_slot_stays_held_past_the_old_expiry(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=2)
    hold = await _hold(api)
    await _sleep_until(_epoch(hold["created_at"]) + 1.05)
    assert (await _extend(api, hold["id"]))[0] == 200
    await _sleep_until(_epoch(hold["expires_at"]) + 0.1)
    status, body = await api.call("POST", "/holds", hold_body())
    assert (status, body["error"]["code"]) == (409, "slot_unavailable")
    _, fetched = await api.call("GET", f"/holds/{hold['id']}")
    assert fetched["data"]["status"] == "active"


async def test_expiry_cleanup_leaves_an_extended_hold_alone(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=2)
    hold = await _hold(api)
    await _sleep_until(_epoch(hold["created_at"]) + 1.05)
    assert (await _extend(api, hold["id"]))[0] == 200
    await _sleep_until(_epoch(hold["expires_at"]) + 0.1)
    # Its old expiry has passed: the sweep finds nothing due in its tag.
    assert await api.client.app[UPKEEP].expire_due(tag_of(hold["id"]), 100) == (False, [])
    _, fetched = await api.call("GET", f"/holds/{hold['id']}")
    assert fetched["data"]["status"] == "active"


async def test_extend_takes_no_new_place_and_keeps_the_old_one(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=2, max_active_holds_per_key=1)
    hold = await _hold(api)
    await _sleep_until(_epoch(hold["created_at"]) + 1.05)
    assert (await _extend(api, hold["id"]))[0] == 200
    await _sleep_until(_epoch(hold["expires_at"]) + 0.1)
    status, body = await api.call("POST", "/holds", hold_body("10:00"))
    assert (status, body["error"]["code"]) == (429, "too_many_holds")
    client = aioredis.Redis.from_url(api.settings.redis_url)
    try:
        key_ids = [k async for k in client.scan_iter(match=keys.active_holds("*"))]
        assert [await client.zcard(k) for k in key_ids] == [1]
    finally:
        await client.aclose()


async def test_extend_just_before_expiry_either_wins_whole_or_loses_whole(
    make_api: MakeApi,
) -> None:
    """Near expires_at exactly one of two things happens: the extension wins and the slot stays
    held, or the hold expired first and the slot is free. Never a gap, never a double hold."""
    api = await make_api(hold_ttl_seconds=2)
    for offset in (-0.02, 0.0, 0.02):
        hold = await _hold(api)
        await _sleep_until(_epoch(hold["expires_at"]) + offset)
        extended, _ = await _extend(api, hold["id"])
        assert extended in (200, 404)
        await _sleep_until(_epoch(hold["expires_at"]) + 0.05)
        again, second = await api.call("POST", "/holds", hold_body())
        _, fetched = await api.call("GET", f"/holds/{hold['id']}")
        if extended == 200:
            assert (again, fetched["data"]["status"]) == (409, "active")
            await api.call("DELETE", f"/holds/{hold['id']}")
        else:
            assert (again, fetched["data"]["status"]) == (201, "expired")
            await api.call("DELETE", f"/holds/{second['data']['id']}")


async def test_extended_seat_of_a_group_session_keeps_its_seat(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=2)
    seat = await _hold(api, hold_body(kind=WORKSHOP))
    await _sleep_until(_epoch(seat["created_at"]) + 1.05)
    assert (await _extend(api, seat["id"]))[0] == 200
    await _sleep_until(_epoch(seat["expires_at"]) + 0.1)
    assert (await api.call("POST", "/holds", hold_body(kind=WORKSHOP)))[0] == 201
    status, body = await api.call("POST", "/holds", hold_body(kind=WORKSHOP))
    assert (status, body["error"]["code"]) == (409, "slot_unavailable")  # both seats taken


async def test_extend_with_an_idempotency_key_replays_the_first_response(
    make_api: MakeApi,
) -> None:
    api = await make_api(hold_ttl_seconds=3)
    hold = await _hold(api)
    await _sleep_until(_epoch(hold["created_at"]) + 1.05)
    path = f"{api.settings.base_path}/holds/{hold['id']}/extend"
    headers = api.auth() | {"Idempotency-Key": "extend-1"}
    first = await api.client.post(path, json={}, headers=headers)
    await _sleep_until(_epoch(hold["created_at"]) + 2.05)
    second = await api.client.post(path, json={}, headers=headers)
    assert (first.status, second.status) == (200, 200)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await first.json() == await second.json()
    assert "X-RateLimit-Remaining" in first.headers


async def test_extend_with_no_body_is_counted_in_the_metrics(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=3)
    hold = await _hold(api)
    await _sleep_until(_epoch(hold["created_at"]) + 1.05)
    path = f"{api.settings.base_path}/holds/{hold['id']}/extend"
    assert (await api.client.post(path, headers=api.auth())).status == 200  # no body at all
    text = await (await api.client.get("/metrics")).text()
    assert "holds_extended_total" in text
