"""The booking flow on a real Redis Cluster (3 masters, 3 replicas), through HTTP."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import redis
from aiohttp.test_utils import TestClient

from app.store import keys
from app.web.app import create_app
from tests.catalog import INITIAL, SUMMER_MONDAY
from tests.cluster import LocalCluster
from tests.conftest import Api, MakeApi, StartWorker, eventually
from tests.helpers import confirm_body, hold_body


async def _hold(api: Api, start: str = "09:00") -> dict[str, Any]:
    status, body = await api.call("POST", "/holds", hold_body(start))
    assert status == 201, body
    hold: dict[str, Any] = body["data"]
    return hold


async def _book(api: Api, start: str = "09:00") -> dict[str, Any]:
    hold = await _hold(api, start)
    status, body = await api.call("POST", f"/holds/{hold['id']}/confirm", confirm_body())
    assert status == 201, body
    appointment: dict[str, Any] = body["data"]
    return appointment


async def _free_starts(api: Api) -> list[str]:
    query = {"appointment_type_id": INITIAL, "start_date": SUMMER_MONDAY, "end_date": SUMMER_MONDAY}
    response = await api.client.get("/v1/availability", params=query, headers=api.auth())
    body = await response.json()
    assert response.status == 200, body
    return [slot["start_time"] for slot in body["data"]]


async def _second_instance(api: Api, aiohttp_client: Any) -> Api:
    """Another API app on the same cluster, queue and database (as a second process would)."""
    client: TestClient[Any, Any] = await aiohttp_client(create_app(api.settings))
    return Api(client, api.key, api.other_org_key, api.lacking, api.settings)


def _node_holding(cluster: LocalCluster, key: str) -> redis.Redis:
    for node in cluster.master_nodes():
        client = node.client()
        try:
            if client.exists(key):
                return client
        except redis.ResponseError:  # MOVED: another master serves the key's slot
            pass
        client.close()
    raise AssertionError(f"no master holds {key}")


async def test_availability_lists_every_slot_on_a_cluster(make_cluster_api: MakeApi) -> None:
    api = await make_cluster_api()
    assert len(await _free_starts(api)) == 16


async def test_held_slot_leaves_availability_and_the_hold_reads_back(
    make_cluster_api: MakeApi,
) -> None:
    api = await make_cluster_api()
    hold = await _hold(api)
    assert hold["start_time"] not in await _free_starts(api)
    status, fetched = await api.call("GET", f"/holds/{hold['id']}")
    created = {field: value for field, value in hold.items() if field != "client_secret"}
    assert (status, fetched["data"]) == (200, created)


async def test_released_hold_frees_its_slot_on_a_cluster(make_cluster_api: MakeApi) -> None:
    api = await make_cluster_api()
    hold = await _hold(api)
    status, released = await api.call("DELETE", f"/holds/{hold['id']}")
    assert status == 200, released
    assert hold["start_time"] in await _free_starts(api)


async def test_confirmed_appointment_reads_back_and_cancel_frees_its_slot(
    make_cluster_api: MakeApi,
) -> None:
    api = await make_cluster_api()
    appointment = await _book(api)
    status, fetched = await api.call("GET", f"/appointments/{appointment['id']}")
    assert (status, fetched["data"]["status"]) == (200, "confirmed")
    status, _ = await api.call("POST", f"/appointments/{appointment['id']}/cancel", {})
    assert status == 200
    assert (await api.call("POST", "/holds", hold_body("09:00")))[0] == 201


async def test_idempotent_retry_replays_the_first_hold(make_cluster_api: MakeApi) -> None:
    api = await make_cluster_api()
    headers = api.auth() | {"Idempotency-Key": "cluster-retry-1"}
    replies = []
    for _ in range(2):
        response = await api.client.post("/v1/holds", json=hold_body(), headers=headers)
        replies.append((response.status, await response.json()))
    assert replies[0][0] == replies[1][0] == 201
    assert replies[0][1] == replies[1][1]


async def test_fifty_racing_holds_across_two_apps_give_one_201(
    make_cluster_api: MakeApi, aiohttp_client: Any
) -> None:
    first = await make_cluster_api()
    apps = [first, await _second_instance(first, aiohttp_client)]
    body = hold_body("11:00")
    replies = await asyncio.gather(*(apps[i % 2].call("POST", "/holds", body) for i in range(50)))
    assert Counter(status for status, _ in replies) == {201: 1, 409: 49}


async def test_racing_confirms_across_two_apps_make_one_appointment(
    make_cluster_api: MakeApi, aiohttp_client: Any
) -> None:
    first = await make_cluster_api()
    apps = [first, await _second_instance(first, aiohttp_client)]
    hold = await _hold(first)
    path = f"/holds/{hold['id']}/confirm"
    replies = await asyncio.gather(
        *(apps[i % 2].call("POST", path, confirm_body()) for i in range(10))
    )
    assert Counter(status for status, _ in replies) == {201: 1, 409: 9}


async def test_flushed_master_gets_its_appointments_back_from_sql(
    make_cluster_api: MakeApi, start_worker: StartWorker, redis_cluster: LocalCluster
) -> None:
    api = await make_cluster_api()
    start_worker(redis=api.settings.redis_url, queue_redis_url=api.settings.queue_redis_url)
    appointment = await _book(api)

    async def persisted() -> bool:
        _, body = await api.call("GET", f"/appointments/{appointment['id']}")
        return bool(body["data"]["persisted"])

    await eventually(persisted)
    node = _node_holding(redis_cluster, keys.appointment(appointment["id"]))
    node.flushall()
    node.close()
    status, body = await api.call("POST", "/holds", hold_body("09:00"))
    assert (status, body["error"]["code"]) == (409, "slot_unavailable")
    status, fetched = await api.call("GET", f"/appointments/{appointment['id']}")
    assert (status, fetched["data"]["status"]) == (200, "confirmed")


async def test_readiness_and_metrics_answer_on_a_cluster(make_cluster_api: MakeApi) -> None:
    api = await make_cluster_api()
    await _hold(api)
    ready = await api.client.get("/readyz")
    assert (ready.status, (await ready.json())["data"]["status"]) == (200, "ready")
    metrics = await api.client.get("/metrics")
    assert metrics.status == 200
