"""Redis clients for one node or a Redis Cluster: the topology is decided here, once, at start.

`HOLDS_REDIS_URL` may name a standalone Redis or any node of a cluster (`INFO cluster` says
which). The rest of the code gets the same two clients either way: redis-py's for reads and
upkeep (`RedisCluster` on a cluster, typed as `Redis`: it offers every command the stores use),
and the request path's auto-pipeline (`ClusterAutoPipeline` on a cluster).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.store.cluster import NON_LOCAL_KEY, ClusterAutoPipeline, ClusterUnavailable
from app.store.pipeline import AutoPipeline

log = logging.getLogger("holds.redis")


Pipelined = AutoPipeline | ClusterAutoPipeline


class QueueNeeded(Exception):
    """A cluster was found but no standalone Redis was given for the job queue."""


async def is_cluster(url: str) -> bool:
    """Whether the Redis at `url` is a node of a Redis Cluster."""
    probe = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        info: dict[str, Any] = await probe.info("cluster")
    finally:
        await probe.aclose()
    return bool(info.get("cluster_enabled"))


async def detect_cluster(url: str) -> bool:
    """`is_cluster`, or False (one node, as before) when Redis cannot be asked at start: the
    service then starts and answers 503 until Redis is back, as it always has."""
    try:
        return await is_cluster(url)
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        log.warning("cannot ask Redis whether it is a cluster; assuming one node",
                    extra={"error": str(exc)})  # fmt: skip
        return False


def queue_problem(redis_url: str, queue_redis_url: str) -> str | None:
    """For the CLI, before anything starts: why the queue setting cannot work, or None."""
    try:
        asyncio.run(check_queue(redis_url, queue_redis_url))
    except QueueNeeded as exc:
        return str(exc)
    except (RedisConnectionError, RedisTimeoutError, OSError):
        return None  # unreachable now: the service's own start reports it
    return None


async def check_queue(redis_url: str, queue_redis_url: str) -> None:
    """Refuse a cluster without a separate standalone queue (arq cannot use a cluster)."""
    if await is_cluster(redis_url) and (not queue_redis_url or await is_cluster(queue_redis_url)):
        raise QueueNeeded(
            "HOLDS_REDIS_URL names a Redis Cluster: set HOLDS_QUEUE_REDIS_URL to a standalone "
            "Redis for the job queue (arq does not support Redis Cluster)"
        )


def open_redis(url: str, *, cluster: bool, **options: Any) -> Redis:
    """redis-py's client; `options` are connection options (timeouts, health checks)."""
    if not cluster:
        client: Redis = Redis.from_url(url, **options)
        return client
    # A slot's owner changes on failover: let redis-py rediscover it on each connection error.
    return cast(Redis, HoldsCluster.from_url(url, reinitialize_steps=1, **options))


def open_pipeline(
    url: str,
    *,
    cluster: bool,
    reply_timeout: float = 5.0,
    connect_timeout: float = 2.0,
    replica_timeout_ms: int = 0,
) -> AutoPipeline | ClusterAutoPipeline:
    """The request path's auto-pipelining client. On a cluster, confirms wait up to
    `replica_timeout_ms` for a replica of their master (0: they do not wait)."""
    if not cluster:
        return AutoPipeline(url, reply_timeout=reply_timeout, connect_timeout=connect_timeout)
    return ClusterAutoPipeline(
        url,
        reply_timeout=reply_timeout,
        connect_timeout=connect_timeout,
        replica_timeout_ms=replica_timeout_ms,
    )


class HoldsCluster(RedisCluster):
    """redis-py's cluster client whose give-up errors are `ClusterUnavailable` (503, retry)."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except (ResponseError, ClusterError) as exc:
            raise _translated(exc) from exc
        except RedisClusterException as exc:
            raise ClusterUnavailable(f"Redis Cluster is reconfiguring: {exc}") from exc

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> ClusterPipeline:
        """Never a MULTI: a cluster cannot run one across slots, and no caller needs one."""
        return _Pipeline(self)  # type: ignore[abstract]  # redis-py's own class is alike


class _Pipeline(ClusterPipeline):
    def time(self, **kwargs: Any) -> Any:
        """Allowed here: a read of one node's clock (redis-py blocks every keyless command in
        cluster pipelines; the store reads TIME with the keys it fetches)."""
        return self.execute_command("TIME", **kwargs)

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except (ResponseError, ClusterError) as exc:
            raise _translated(exc) from exc
        except RedisClusterException as exc:
            raise ClusterUnavailable(f"Redis Cluster is reconfiguring: {exc}") from exc


def _translated(exc: ResponseError | ClusterError) -> Exception:
    """A redirection redis-py gave up on, or a script stopped by a moving slot, is the
    cluster reconfiguring; any other error reply is itself."""
    if isinstance(exc, (ClusterError, TryAgainError, AskError)) or NON_LOCAL_KEY in str(exc):
        return ClusterUnavailable(f"Redis Cluster is reconfiguring: {exc}")
    return exc
