"""The request path's cluster client on its own: what it does when its slot map is wrong."""

from __future__ import annotations

import asyncio

import pytest
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from app.store.cluster import REPLICA_MAP_SECONDS, ClusterAutoPipeline
from tests.cluster import ClusterNode, LocalCluster


async def test_stale_slot_map_is_corrected_by_moved(cluster_url: str) -> None:
    client = ClusterAutoPipeline(cluster_url)
    await client.execute("SET", "holds:{b760}:probe", "1")
    masters = await client.masters()
    client._slots = [masters[0]] * len(client._slots)  # every slot wrongly on one master
    values = [await client.execute("GET", f"holds:{{{tag}}}:probe") for tag in ("b760", "f45c")]
    assert values == [b"1", None]
    await asyncio.sleep(0.2)  # the refresh MOVED asked for runs in the background
    assert len(set(client._slots)) == 3  # the whole map was read again
    await client.aclose()


async def test_replicated_command_on_a_stale_slot_map_is_resent_where_moved_says(
    cluster_url: str,
) -> None:
    client = ClusterAutoPipeline(cluster_url, replica_timeout_ms=500)
    masters = await client.masters()
    client._slots = [masters[0]] * len(client._slots)  # every slot wrongly on one master
    for tag in ("b760", "f45c"):
        assert await client.execute_replicated("SET", f"holds:{{{tag}}}:probe", tag) == b"OK"
    assert [await client.execute("GET", f"holds:{{{t}}}:probe") for t in ("b760", "f45c")] == [
        b"b760",
        b"f45c",
    ]
    await client.aclose()


async def test_unreachable_cluster_is_a_redis_connection_error_so_a_503() -> None:
    client = ClusterAutoPipeline("redis://127.0.0.1:1/0", connect_timeout=0.2, retry_seconds=0.3)
    with pytest.raises(RedisConnectionError):
        await client.execute("GET", "holds:{b760}:probe")
    await client.aclose()


async def test_replicated_command_waits_only_where_the_map_lists_a_replica(
    redis_cluster: LocalCluster, cluster_url: str
) -> None:
    client = ClusterAutoPipeline(cluster_url, replica_timeout_ms=500)
    key = "holds:{b760}:probe"
    await client.refresh()
    owner = redis_cluster.node_for_port(int(client._owner(key_slot(key.encode())).split(":")[1]))
    client._replicated.clear()  # as if its replica had failed when the map was read
    client._read_at -= REPLICA_MAP_SECONDS  # and that was a while ago
    waits = _wait_calls(owner)
    await client.execute_replicated("SET", key, "1")
    assert _wait_calls(owner) == waits  # no replica listed: no WAIT
    assert client._refreshing is not None
    await client._refreshing  # the stale map is read again, replica and all
    await client.execute_replicated("SET", key, "2")
    assert _wait_calls(owner) == waits + 1
    await client.aclose()


async def test_replica_timeout_zero_means_no_wait(
    redis_cluster: LocalCluster, cluster_url: str
) -> None:
    client = ClusterAutoPipeline(cluster_url, replica_timeout_ms=0)
    key = "holds:{b760}:probe"
    await client.refresh()
    owner = redis_cluster.node_for_port(int(client._owner(key_slot(key.encode())).split(":")[1]))
    assert f"127.0.0.1:{owner.port}" in client._replicated  # it has a replica to wait for
    waits = _wait_calls(owner)
    await client.execute_replicated("SET", key, "1")
    assert _wait_calls(owner) == waits
    await client.aclose()


def _wait_calls(node: ClusterNode) -> int:
    with node.client() as direct:
        stats: dict[str, dict[str, int]] = direct.info("commandstats")
    return stats.get("cmdstat_wait", {}).get("calls", 0)
