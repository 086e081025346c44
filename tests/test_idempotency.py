"""Idempotency-Key on every POST: a retried request never does its work twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from app.clock import FixedClock
from tests.conftest import Api, MakeApi
from tests.helpers import confirm_body, hold_body


async def _post(api: Api, path: str, body: Any, key: str) -> tuple[int, Any, Any]:
    headers = api.auth() | {"Idempotency-Key": key}
    response = await api.client.post(f"/v1{path}", json=body, headers=headers)
    return response.status, await response.json(), response.headers


async def test_retried_create_replays_the_first_hold(api: Api) -> None:
    first = await _post(api, "/holds", hold_body(), "booking-42")
    again = await _post(api, "/holds", hold_body(), "booking-42")
    assert first[0] == again[0] == 201
    assert again[1] == first[1]
    assert again[2]["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first[2]


async def test_retried_confirm_makes_one_appointment(api: Api) -> None:
    _, hold, _ = await _post(api, "/holds", hold_body(), "hold-1")
    path = f"/holds/{hold['data']['id']}/confirm"
    results = [await _post(api, path, confirm_body(), "confirm-1") for _ in range(3)]
    assert {status for status, _, _ in results} == {201}
    assert len({body["data"]["id"] for _, body, _ in results}) == 1


async def test_first_error_is_replayed_too(api: Api) -> None:
    bad = hold_body("09:10")
    first = await _post(api, "/holds", bad, "bad-time")
    again = await _post(api, "/holds", bad, "bad-time")
    assert first[0] == again[0] == 400
    assert again[1] == first[1]


async def test_same_key_with_another_body_is_409(api: Api) -> None:
    await _post(api, "/holds", hold_body("09:00"), "key-a")
    status, body, _ = await _post(api, "/holds", hold_body("10:00"), "key-a")
    assert (status, body["error"]["code"]) == (409, "idempotency_key_reused")


async def test_same_json_with_other_key_order_is_the_same_request(api: Api) -> None:
    body = hold_body()
    reordered = dict(reversed(list(body.items())))
    first = await _post(api, "/holds", body, "order")
    again = await _post(api, "/holds", reordered, "order")
    assert again[1] == first[1]


async def test_duplicate_while_the_first_is_in_flight_is_409(api: Api) -> None:
    results = await asyncio.gather(*(_post(api, "/holds", hold_body(), "race") for _ in range(10)))
    statuses = sorted(status for status, _, _ in results)
    codes = {body["error"]["code"] for status, body, _ in results if status == 409}
    created = {body["data"]["id"] for status, body, _ in results if status == 201}
    assert len(created) == 1  # the first, and any replays of it once it finished
    assert codes <= {"idempotency_key_in_use"}
    assert statuses[0] == 201


async def test_keys_are_scoped_to_the_api_key_and_path(api: Api) -> None:
    await _post(api, "/holds", hold_body("09:00"), "shared")
    status, _, headers = await _post(
        api,
        "/patients",
        {"first_name": "A", "last_name": "B", "date_of_birth": "1990-01-01"},
        "shared",
    )
    assert status == 201 and "Idempotent-Replayed" not in headers
    other = api.other_org_key
    response = await api.client.post(
        "/v1/holds",
        json=hold_body(),
        headers={"Authorization": f"Bearer {other}", "Idempotency-Key": "shared"},
    )
    assert "Idempotent-Replayed" not in response.headers


async def test_overlong_idempotency_key_is_400(api: Api) -> None:
    status, body, _ = await _post(api, "/holds", hold_body(), "x" * 256)
    assert (status, body["error"]["param"]) == (400, "Idempotency-Key")


async def test_a_429_is_not_stored_so_the_retry_runs(make_api: MakeApi) -> None:
    api = await make_api(max_active_holds_per_key=1)
    _, first, _ = await _post(api, "/holds", hold_body("09:00"), "first")
    status, body, _ = await _post(api, "/holds", hold_body("10:00"), "second")
    assert (status, body["error"]["code"]) == (429, "too_many_holds")
    await api.call("DELETE", f"/holds/{first['data']['id']}")
    status, _, headers = await _post(api, "/holds", hold_body("10:00"), "second")
    assert status == 201 and "Idempotent-Replayed" not in headers


async def _as_if_the_first_attempt_died(api: Api) -> None:
    """Put every stored response back to 'running': what a process killed after its change
    committed, and before it stored its answer, leaves behind."""
    client = aioredis.Redis.from_url(api.settings.redis_url)
    async for record in client.scan_iter("holds:*:idem:*"):
        await client.hset(record, "state", "running")
        await client.hdel(record, "status", "body")
    await client.aclose()


async def test_confirm_retried_after_its_process_died_replays_the_appointment(api: Api) -> None:
    _, hold, _ = await _post(api, "/holds", hold_body(), "hold-dead")
    path = f"/holds/{hold['data']['id']}/confirm"
    first = await _post(api, path, confirm_body(), "confirm-dead")
    await _as_if_the_first_attempt_died(api)
    status, body, headers = await _post(api, path, confirm_body(), "confirm-dead")
    assert (status, headers["Idempotent-Replayed"]) == (201, "true")
    assert body["data"]["id"] == first[1]["data"]["id"]


async def test_create_retried_after_its_process_died_replays_the_hold(api: Api) -> None:
    first = await _post(api, "/holds", hold_body(), "create-dead")
    await _as_if_the_first_attempt_died(api)
    status, body, headers = await _post(api, "/holds", hold_body(), "create-dead")
    assert (status, headers["Idempotent-Replayed"]) == (201, "true")
    assert body["data"]["id"] == first[1]["data"]["id"]


async def test_cancel_retried_after_its_process_died_replays_the_appointment(api: Api) -> None:
    _, hold, _ = await _post(api, "/holds", hold_body(), "h")
    _, appointment, _ = await _post(
        api, f"/holds/{hold['data']['id']}/confirm", confirm_body(), "c"
    )
    path = f"/appointments/{appointment['data']['id']}/cancel"
    await _post(api, path, {"reason": "ill"}, "cancel-dead")
    await _as_if_the_first_attempt_died(api)
    status, body, headers = await _post(api, path, {"reason": "ill"}, "cancel-dead")
    assert (status, headers["Idempotent-Replayed"]) == (200, "true")
    assert body["data"]["status"] == "cancelled"


async def test_retry_while_a_first_attempt_committed_nothing_is_in_use(api: Api) -> None:
    _, hold, _ = await _post(api, "/holds", hold_body(), "hold-x")
    path = f"/holds/{hold['data']['id']}/confirm"
    await api.call("DELETE", f"/holds/{hold['data']['id']}")
    await _post(api, path, confirm_body(), "confirm-x")  # 404 hold_released: no change
    await _as_if_the_first_attempt_died(api)
    status, body, _ = await _post(api, path, confirm_body(), "confirm-x")
    assert (status, body["error"]["code"]) == (409, "idempotency_key_in_use")


async def test_retry_of_a_committed_confirm_whose_record_is_gone_replays_it(api: Api) -> None:
    _, hold, _ = await _post(api, "/holds", hold_body(), "hold-y")
    path = f"/holds/{hold['data']['id']}/confirm"
    first = await _post(api, path, confirm_body(), "confirm-y")
    client = aioredis.Redis.from_url(api.settings.redis_url)
    await client.delete(*[key async for key in client.scan_iter("holds:*:idem:*")])
    await client.aclose()
    status, body, headers = await _post(api, path, confirm_body(), "confirm-y")
    assert (status, headers["Idempotent-Replayed"]) == (201, "true")
    assert body["data"]["id"] == first[1]["data"]["id"]
    status, body, _ = await _post(api, path, confirm_body(), "another-key")
    assert (status, body["error"]["code"]) == (409, "hold_already_confirmed")


async def test_retry_of_a_patient_create_is_in_use_while_its_marker_stands(api: Api) -> None:
    patient = {"first_name": "A", "last_name": "B", "date_of_birth": "1990-01-01"}
    await _post(api, "/patients", patient, "patient-1")
    await _as_if_the_first_attempt_died(api)
    status, body, _ = await _post(api, "/patients", patient, "patient-1")
    assert (status, body["error"]["code"]) == (409, "idempotency_key_in_use")


async def test_create_retried_once_its_slot_is_past_replays_the_hold(make_api: MakeApi) -> None:
    clock = FixedClock(datetime(2030, 6, 30, 9, 0, tzinfo=UTC))
    api = await make_api(clock=clock)
    first = await _post(api, "/holds", hold_body("09:00"), "late-retry")
    clock.moment = datetime(2030, 7, 1, 9, 30, tzinfo=UTC)  # the slot has begun
    client = aioredis.Redis.from_url(api.settings.redis_url)
    await client.delete(*[key async for key in client.scan_iter("holds:*:idem:*")])
    await client.aclose()
    status, body, headers = await _post(api, "/holds", hold_body("09:00"), "late-retry")
    assert (status, headers["Idempotent-Replayed"]) == (201, "true")
    assert body["data"]["id"] == first[1]["data"]["id"]
    status, body, _ = await _post(api, "/holds", hold_body("09:00"), "new-key")
    assert (status, body["error"]["code"]) == (400, "slot_not_offered")
