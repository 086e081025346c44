"""The request path's cluster client on its own: what it does when its slot map is wrong."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.store.cluster import ClusterAutoPipeline


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


async def test_unreachable_cluster_is_a_redis_connection_error_so_a_503() -> None:
    client = ClusterAutoPipeline("redis://127.0.0.1:1/0", connect_timeout=0.2, retry_seconds=0.3)
    with pytest.raises(RedisConnectionError):
        await client.execute("GET", "holds:{b760}:probe")
    await client.aclose()
