"""A slot holding live keys moves to another master while requests keep coming."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import redis
from redis.crc import key_slot

from app.ids import shard_tag
from tests.catalog import AMARA, INITIAL, ORG, SUMMER_MONDAY
from tests.cluster import ClusterNode, LocalCluster
from tests.conftest import Api, MakeApi
from tests.helpers import confirm_body, hold_body

STARTS = [f"{hour:02d}:{minute:02d}" for hour in range(9, 17) for minute in (0, 30)]


def _owner(cluster: LocalCluster, slot: int) -> ClusterNode:
    with cluster.nodes[0].client() as client:
        for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return cluster.node_for_port(int(master[1]))
    raise AssertionError(f"slot {slot} has no owner")


def _node_id(client: redis.Redis) -> str:
    node_id: bytes = client.execute_command("CLUSTER", "MYID")
    return node_id.decode()


async def _move_slot(cluster: LocalCluster, slot: int, target: ClusterNode) -> None:
    """The steps `redis-cli --cluster reshard` takes, with pauses so traffic meets each."""
    source = _owner(cluster, slot)
    with source.client() as src, target.client() as dst:
        src_id, dst_id = _node_id(src), _node_id(dst)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        await asyncio.sleep(0.3)
        moving = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10_000)
        assert moving, "the slot should hold live keys"
        src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *moving)
        await asyncio.sleep(0.3)
        for node in (target, source, *cluster.master_nodes()):
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)


async def _rounds(api: Api, until: float, statuses: Counter[int]) -> int:
    """Rounds of 4 racing holds on one start time (plus a read of availability); the winner
    releases its hold, so every round writes. Returns the most 201s any round saw."""
    query = {"appointment_type_id": INITIAL, "start_date": SUMMER_MONDAY, "end_date": SUMMER_MONDAY}
    most, turn = 0, 0
    while time.monotonic() < until:
        start = STARTS[1 + turn % (len(STARTS) - 1)]  # 09:00 is booked
        turn += 1
        replies = await asyncio.gather(
            *(api.call("POST", "/holds", hold_body(start)) for _ in range(4))
        )
        response = await api.client.get("/v1/availability", params=query, headers=api.auth())
        statuses.update([response.status, *(status for status, _ in replies)])
        winners = [body["data"]["id"] for status, body in replies if status == 201]
        most = max(most, len(winners))
        for hold_id in winners:
            statuses[(await api.call("DELETE", f"/holds/{hold_id}"))[0]] += 1
    return most


async def test_moving_a_live_slot_never_answers_500_nor_double_books(
    make_cluster_api: MakeApi, redis_cluster: LocalCluster
) -> None:
    # As many requests as two seconds allow: the key's rate limit is not what is tested.
    api = await make_cluster_api(rate_limit_per_minute=10**6)
    status, hold = await api.call("POST", "/holds", hold_body("09:00"))
    assert status == 201
    confirmed = await api.call("POST", f"/holds/{hold['data']['id']}/confirm", confirm_body())
    assert confirmed[0] == 201
    slot = key_slot(f"{{{shard_tag(ORG, AMARA)}}}".encode())
    source = _owner(redis_cluster, slot)
    target = next(n for n in redis_cluster.master_nodes() if n != source)

    statuses: Counter[int] = Counter()
    try:
        traffic = asyncio.create_task(_rounds(api, time.monotonic() + 2.0, statuses))
        await asyncio.sleep(0.3)
        await _move_slot(redis_cluster, slot, target)
        most_winners = await traffic

        assert set(statuses) <= {200, 201, 409, 503}, statuses
        assert most_winners == 1
        assert _owner(redis_cluster, slot) == target
        status, fetched = await api.call("GET", f"/appointments/{confirmed[1]['data']['id']}")
        assert (status, fetched["data"]["status"]) == (200, "confirmed")
        assert (await api.call("POST", "/holds", hold_body("09:00")))[0] == 409
    finally:  # the session's cluster as it was, for the tests that share it
        if _owner(redis_cluster, slot) != source:
            await _move_slot(redis_cluster, slot, source)
