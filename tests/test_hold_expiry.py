"""At expires_at a hold is over, with no worker running: reads expired, slot free, no confirm."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tests.conftest import Api, MakeApi
from tests.helpers import confirm_body, hold_body

TTL = 2


async def _hold_then_wait_for_expiry(api: Api) -> str:
    status, created = await api.call("POST", "/holds", hold_body())
    assert status == 201
    expires = datetime.strptime(created["data"]["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    wait = expires.replace(tzinfo=UTC).timestamp() - time.time()
    await asyncio.sleep(max(wait, 0) + 0.05)
    hold_id: str = created["data"]["id"]
    return hold_id


async def test_hold_reads_active_until_expires_at(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=30)
    _, created = await api.call("POST", "/holds", hold_body())
    _, fetched = await api.call("GET", f"/holds/{created['data']['id']}")
    assert fetched["data"]["status"] == "active"


async def test_hold_reads_expired_right_after_expires_at(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=TTL)
    hold_id = await _hold_then_wait_for_expiry(api)
    status, body = await api.call("GET", f"/holds/{hold_id}")
    assert status == 200
    assert body["data"]["status"] == "expired"


async def test_expired_slot_can_be_held_again(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=TTL)
    await _hold_then_wait_for_expiry(api)
    status, _ = await api.call("POST", "/holds", hold_body())
    assert status == 201


async def test_expired_hold_cannot_be_confirmed(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=TTL)
    hold_id = await _hold_then_wait_for_expiry(api)
    status, body = await api.call("POST", f"/holds/{hold_id}/confirm", confirm_body())
    assert status == 404
    assert body["error"]["code"] == "hold_expired"


async def test_releasing_an_expired_hold_is_404_hold_expired(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=TTL)
    hold_id = await _hold_then_wait_for_expiry(api)
    status, body = await api.call("DELETE", f"/holds/{hold_id}")
    assert status == 404
    assert body["error"]["code"] == "hold_expired"


async def test_expired_hold_stays_readable_after_its_slot_is_reused(make_api: MakeApi) -> None:
    api = await make_api(hold_ttl_seconds=TTL)
    hold_id = await _hold_then_wait_for_expiry(api)
    await api.call("POST", "/holds", hold_body())
    status, body = await api.call("GET", f"/holds/{hold_id}")
    assert (status, body["data"]["status"]) == (200, "expired")
