"""A master of the cluster dies (kill -9); its replica takes over and the service carries on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from app.config import Settings
from app.ids import shard_tag
from app.web.app import create_app
from tests.catalog import AMARA, ORG
from tests.cluster import ClusterNode, LocalCluster
from tests.conftest import Api, StartWorker, eventually, seed_database
from tests.helpers import confirm_body, hold_body

ANSWERS_AGAIN_WITHIN = 20.0


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A cluster of this test's own: it is damaged on purpose."""
    cluster = LocalCluster(tmp_path / "cluster").start()
    yield cluster
    cluster.stop()


def _owner(cluster: LocalCluster, slot: int) -> ClusterNode:
    with cluster.live_nodes()[0].client() as client:
        for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return cluster.node_for_port(int(master[1]))
    raise AssertionError(f"slot {slot} has no owner")


async def _until_answered(api: Api) -> tuple[float, set[tuple[int, str | None]]]:
    """Seconds until a write on the dead master's slots succeeds again, and every other
    answer seen meanwhile (status, Retry-After)."""
    killed_at, seen = time.monotonic(), set()
    while time.monotonic() - killed_at < ANSWERS_AGAIN_WITHIN + 10:
        response = await api.client.post("/v1/holds", json=hold_body("10:00"), headers=api.auth())
        if response.status == 201:
            return time.monotonic() - killed_at, seen
        seen.add((response.status, response.headers.get("Retry-After")))
        await asyncio.sleep(0.1)
    raise AssertionError(f"no answer within {ANSWERS_AGAIN_WITHIN + 10} s; saw {seen}")


async def test_service_answers_again_after_a_master_is_killed(
    own_cluster: LocalCluster, redis_url: str, sqlite_url: str, aiohttp_client: Any
) -> None:
    keys = await seed_database(sqlite_url)
    settings = Settings(
        redis_url=own_cluster.url, queue_redis_url=redis_url, database_url=sqlite_url
    )
    client = await aiohttp_client(create_app(settings))
    api = Api(client, keys.key, keys.other_org_key, keys.lacking, settings)
    status, hold = await api.call("POST", "/holds", hold_body("09:00"))
    status, booked = await api.call("POST", f"/holds/{hold['data']['id']}/confirm", confirm_body())
    assert status == 201
    master = _owner(own_cluster, key_slot(f"{{{shard_tag(ORG, AMARA)}}}".encode()))
    with master.client() as direct:
        assert direct.execute_command("WAIT", 1, 2000) == 1  # the replica has the booking

    master.kill()
    unavailable_for, seen = await _until_answered(api)

    assert unavailable_for < ANSWERS_AGAIN_WITHIN
    assert {status for status, _ in seen} <= {503}, seen
    assert all(retry_after for _, retry_after in seen), seen
    status, body = await api.call("POST", "/holds", hold_body("09:00"))
    assert (status, body["error"]["code"]) == (409, "slot_unavailable")
    status, fetched = await api.call("GET", f"/appointments/{booked['data']['id']}")
    assert (status, fetched["data"]["status"]) == (200, "confirmed")


async def test_worker_subscribes_on_the_replica_promoted_by_a_failover(
    own_cluster: LocalCluster, redis_url: str, start_worker: StartWorker
) -> None:
    start_worker(redis=own_cluster.url, queue_redis_url=redis_url)

    async def every_master_listened_to() -> bool:
        masters = own_cluster.master_nodes()
        return len(masters) == 3 and all(_patterns(node) >= 1 for node in masters)

    await eventually(every_master_listened_to)
    own_cluster.master_nodes()[-1].kill()
    await eventually(every_master_listened_to, within=ANSWERS_AGAIN_WITHIN)


def _patterns(node: ClusterNode) -> int:
    """Pattern subscriptions (the worker's `expired` listener) open on this node."""
    with node.client() as client:
        try:
            count: int = client.execute_command("PUBSUB", "NUMPAT")
        except redis.RedisError:
            return 0
    return count
