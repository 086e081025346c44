"""Which exceptions mean "Redis cannot serve this now, retry shortly" (a 503), in one place.

Both Redis clients of the API raise them: redis-py's (which maps some error replies to their
own classes, e.g. `LOADING` to `BusyLoadingError`, `READONLY` to `ReadOnlyError`, and leaves
others, such as `BUSY` or `CLUSTERDOWN`, a plain `ResponseError` with the reply's text), and
the auto-pipelining client (`app/store/pipeline.py`), where every error reply is a plain
`ResponseError` carrying the reply's text. So a reply is recognised by its class or by its
first word.
"""

from __future__ import annotations

from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Error replies of a server that is starting, busy, failing over or refusing writes for now.
TRANSIENT_REPLIES = frozenset(
    {
        "LOADING",  # loading its data set after a restart
        "BUSY",  # a script is running past lua-time-limit
        "MASTERDOWN",  # a replica that lost its master
        "READONLY",  # a replica, e.g. a former master after a failover
        "TRYAGAIN",  # a cluster slot in migration
        "CLUSTERDOWN",  # the cluster lost coverage of a slot
        "OOM",  # out of memory under noeviction: writes refused until memory frees
        "MISCONF",  # cannot write its persistence files
        "NOREPLICAS",  # min-replicas-to-write not met
    }
)
_TRANSIENT_CLASSES = (
    RedisConnectionError,  # includes BusyLoadingError (LOADING) and refused handshakes
    RedisTimeoutError,  # a socket timeout, or the pipeline's reply-timeout watchdog
    ReadOnlyError,
    OutOfMemoryError,
    ClusterDownError,  # includes MasterDownError
    TryAgainError,
)
# What uvloop (and asyncio) raise when writing to a transport that has already closed: a
# connection Redis dropped, seen before the client noticed.
_CLOSED_TRANSPORT = "unable to perform operation on"


def redis_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means Redis is unreachable or not serving for now (a retry may succeed)."""
    if isinstance(exc, _TRANSIENT_CLASSES):
        return True
    if isinstance(exc, ResponseError):
        return str(exc).split(" ", 1)[0] in TRANSIENT_REPLIES
    if isinstance(exc, RuntimeError):
        return str(exc).startswith(_CLOSED_TRANSPORT)
    return isinstance(exc, OSError)  # refused or reset connections, builtin TimeoutError
