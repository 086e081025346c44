"""On a Redis Cluster a confirm answers once a replica of its master has it (WAIT 1), and only
that confirm waits: a paused replica delays no other request."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from app.config import Settings
from app.ids import shard_tag
from app.store import keys
from app.web.app import create_app
from tests.catalog import AMARA, ORG
from tests.cluster import ClusterNode, LocalCluster
from tests.conftest import Api, MakeApi, eventually, seed_database
from tests.helpers import confirm_body, hold_body
from tests.test_cluster_failover import _until_answered

AMARA_SLOT = key_slot(f"{{{shard_tag(ORG, AMARA)}}}".encode())


def _master_and_replica(cluster: LocalCluster, slot: int) -> tuple[ClusterNode, ClusterNode]:
    """The nodes serving `slot`; a replica paused a while ago may need a moment to be listed
    again (the cluster drops one that does not answer within cluster-node-timeout)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with cluster.live_nodes()[0].client() as client:
            for start, end, master, *replicas in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end and replicas:
                    owner, replica = int(master[1]), int(replicas[0][1])
                    return cluster.node_for_port(owner), cluster.node_for_port(replica)
        time.sleep(0.1)
    raise AssertionError(f"slot {slot} has no master with a replica")


@contextmanager
def _paused(node: ClusterNode) -> Iterator[None]:
    """The node's process stopped (SIGSTOP): it holds its connections but answers nothing."""
    assert node.process is not None
    node.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        node.process.send_signal(signal.SIGCONT)


def _on_replica(replica: ClusterNode, key: str) -> bool:
    with replica.client() as client:
        client.execute_command("READONLY")
        return bool(client.exists(key))


async def _waiting_for_a_replica(master: ClusterNode) -> bool:
    """Whether a client of `master` is blocked in WAIT now."""
    with master.client() as client:
        return any(entry.get("cmd") == "wait" for entry in client.client_list())


async def _unreplicated(api: Api) -> float:
    text = await (await api.client.get("/metrics")).text()
    line = next(line for line in text.splitlines() if line.startswith("holds_confirm_unrep"))
    return float(line.split()[-1])


async def _hold(api: Api, start: str) -> str:
    status, body = await api.call("POST", "/holds", hold_body(start))
    assert status == 201, body
    return str(body["data"]["id"])


async def test_confirm_answers_once_the_replica_has_the_appointment(
    make_cluster_api: MakeApi, redis_cluster: LocalCluster
) -> None:
    api = await make_cluster_api(confirm_replica_timeout_ms=2000)
    master, replica = _master_and_replica(redis_cluster, AMARA_SLOT)
    hold_id = await _hold(api, "09:00")
    unreplicated = await _unreplicated(api)
    with _paused(replica):
        confirm = asyncio.ensure_future(
            api.call("POST", f"/holds/{hold_id}/confirm", confirm_body())
        )
        await eventually(lambda: _waiting_for_a_replica(master), within=5)
        assert not confirm.done()
    status, body = await confirm
    assert status == 201, body
    assert _on_replica(replica, keys.appointment(body["data"]["id"]))
    assert await _unreplicated(api) == unreplicated


async def test_confirm_with_a_paused_replica_answers_in_time_and_delays_nothing_else(
    make_cluster_api: MakeApi, redis_cluster: LocalCluster
) -> None:
    timeout_ms = 300
    api = await make_cluster_api(confirm_replica_timeout_ms=timeout_ms)
    master, replica = _master_and_replica(redis_cluster, AMARA_SLOT)
    hold_id = await _hold(api, "09:00")
    unreplicated = await _unreplicated(api)
    with _paused(replica):
        began = time.monotonic()
        confirm = asyncio.ensure_future(
            api.call("POST", f"/holds/{hold_id}/confirm", confirm_body())
        )
        await eventually(lambda: _waiting_for_a_replica(master), within=5)
        # Requests on the same master, answered while the confirm still waits for the replica.
        got, created = await asyncio.gather(
            api.call("GET", f"/holds/{hold_id}"), api.call("POST", "/holds", hold_body("10:00"))
        )
        assert not confirm.done()
        status, body = await confirm
        answered_after = time.monotonic() - began
    assert (got[0], created[0]) == (200, 201)
    assert status == 201, body
    assert answered_after < timeout_ms / 1000 + 1.5
    assert await _unreplicated(api) == unreplicated + 1
    _, fetched = await api.call("GET", f"/appointments/{body['data']['id']}")
    assert fetched["data"]["status"] == "confirmed"


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A cluster of this test's own: one of its masters is killed."""
    cluster = LocalCluster(tmp_path / "cluster").start()
    yield cluster
    cluster.stop()


async def test_every_confirm_answered_201_while_its_master_dies_survives_the_failover(
    own_cluster: LocalCluster, redis_url: str, sqlite_url: str, aiohttp_client: Any
) -> None:
    seeded = await seed_database(sqlite_url)
    settings = Settings(
        redis_url=own_cluster.url,
        queue_redis_url=redis_url,
        database_url=sqlite_url,
        confirm_replica_timeout_ms=1000,
    )
    client = await aiohttp_client(create_app(settings))
    api = Api(client, seeded.key, seeded.other_org_key, seeded.lacking, settings)
    starts = [f"{hour:02d}:{minute:02d}" for hour in range(11, 17) for minute in (0, 30)]
    holds = [await _hold(api, start) for start in starts]
    master, _ = _master_and_replica(own_cluster, AMARA_SLOT)
    replies: list[tuple[int, Any]] = []

    async def confirm_in_turn(lane: list[str]) -> None:
        for hold_id in lane:
            replies.append(await api.call("POST", f"/holds/{hold_id}/confirm", confirm_body()))
            if len(replies) == 2:  # the other lanes have a confirm on its way now
                master.kill()

    await asyncio.gather(*(confirm_in_turn(holds[lane::4]) for lane in range(4)))
    await _until_answered(api)

    assert {status for status, _ in replies} <= {201, 503}, replies
    for status, body in replies:
        if status == 201:
            fetched = await api.call("GET", f"/appointments/{body['data']['id']}")
            assert (fetched[0], fetched[1]["data"]["status"]) == (200, "confirmed")
