"""The request path's auto-pipelining client for a Redis Cluster.

One `AutoPipeline` (one connection) per master; each command goes to the master serving the
slot of its first key. Every script of the service declares a key of its own hash tag first, so a
script's keys, declared or completed inside it from a prefix, all live in that one slot.

Redirections are handled as the cluster specification says: `MOVED` (the slot has a new owner:
note it, refresh the whole map once, resend), `ASK` (the slot is moving: `ASKING` then resend to
the node named, once), `TRYAGAIN` (a multi-key command while its slot moves) and `CLUSTERDOWN`
(a failover is under way): resend with a short backoff. A command is resent only when the node
certainly did not run it (a redirection, or a connection that could not be opened); past
`retry_seconds` the call fails with `ClusterUnavailable`, which the API answers with 503.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from app.store.pipeline import Arg, AutoPipeline, PipelinedScript, Unreachable

log = logging.getLogger("holds.redis")
MAX_REDIRECTIONS = 16  # as redis-py's RedisCluster allows
_SCRIPT_COMMANDS = {"EVAL", "EVALSHA", "eval", "evalsha"}
# A script that reaches a key it did not declare (one built from a prefix) while its slot is
# half moved fails with this; Redis 6.2 and 7 check only that such keys are served here.
NON_LOCAL_KEY = "non local key"


class ClusterUnavailable(RedisConnectionError):
    """The cluster could not serve the command in time: a failover or a slot move is under way.
    A ConnectionError, so every caller treats it as Redis being briefly unreachable (503)."""


class ClusterAutoPipeline:
    """`AutoPipeline`'s interface (`execute`, `register_script`, `aclose`) over a cluster."""

    def __init__(
        self,
        url: str,
        *,
        reply_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        retry_seconds: float = 2.0,
    ) -> None:
        self._url = urlsplit(url)
        self._reply_timeout = reply_timeout
        self._connect_timeout = connect_timeout
        self._retry_seconds = retry_seconds
        self._nodes: dict[str, AutoPipeline] = {}
        self._slots: list[str] = []
        self._seed = f"{self._url.hostname or '127.0.0.1'}:{self._url.port or 6379}"
        self._refreshing: asyncio.Task[None] | None = None

    async def execute(self, *args: Arg) -> Any:
        slot = _slot_of(args)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry_seconds
        asking: str | None = None
        backoff, redirections = 0.01, 0
        while True:
            if redirections > MAX_REDIRECTIONS:  # nodes disagree on the owner: mid-change
                raise ClusterUnavailable(f"Redis Cluster redirected a command {redirections} times")
            if not self._slots:
                await self.refresh()
            address = asking or self._owner(slot)
            node = self._node(address)
            try:
                if asking is not None:
                    asking = None
                    return await node.execute_asking(*args)
                return await node.execute(*args)
            except ResponseError as exc:
                kind, target = _classify(exc)
                if kind == "error":
                    raise
                if kind == "unavailable":  # it may have run in part: never resent
                    raise ClusterUnavailable(str(exc)) from exc
                redirections += kind in ("moved", "ask")
                if kind == "moved" and slot is not None:
                    self._slots[slot] = target
                    self._refresh_soon()
                    continue  # the node certainly did not run it: resend at once
                if kind == "ask":
                    asking = target
                    continue
                error: Exception = exc
            except Unreachable as exc:  # never sent: the map is stale, or a master died
                self._refresh_soon()
                error = exc
            if loop.time() + backoff > deadline:
                raise ClusterUnavailable(f"Redis Cluster did not serve the command: {error}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 0.2)

    def register_script(self, source: str) -> PipelinedScript:
        return PipelinedScript(self, source)

    async def aclose(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        for node in self._nodes.values():
            await node.aclose()
        self._nodes.clear()

    async def masters(self) -> list[str]:
        """host:port of every master serving slots now."""
        await self.refresh()
        return sorted(set(self._slots))

    async def refresh(self) -> None:
        """Read the slot map (`CLUSTER SLOTS`, Redis 6.2 and later) from the first node that
        answers: the known masters, then the node the URL names."""
        candidates = list(dict.fromkeys([*self._slots_owners(), self._seed]))
        last_error: Exception | None = None
        for address in candidates:
            try:
                reply = await self._node(address).execute("CLUSTER", "SLOTS")
            except (RedisConnectionError, ResponseError) as exc:
                last_error = exc
                continue
            slots = [self._seed] * REDIS_CLUSTER_HASH_SLOTS
            for start, end, master, *_replicas in reply:
                slots[start : end + 1] = [self._address(master)] * (end - start + 1)
            self._slots = slots
            return
        raise ClusterUnavailable(f"no node of the Redis Cluster answered: {last_error}")

    def _refresh_soon(self) -> None:
        """One map refresh at a time, however many commands notice a change at once."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except RedisConnectionError as exc:
            log.warning("cannot refresh the Redis Cluster slot map", extra={"error": str(exc)})

    def _slots_owners(self) -> list[str]:
        return sorted(set(self._slots))

    def _owner(self, slot: int | None) -> str:
        return self._slots[slot] if slot is not None else self._slots[0]

    def _address(self, master: list[Any]) -> str:
        host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
        return f"{host or self._url.hostname}:{master[1]}"

    def _node(self, address: str) -> AutoPipeline:
        node = self._nodes.get(address)
        if node is None:
            node = AutoPipeline(
                self.node_url(address),
                reply_timeout=self._reply_timeout,
                connect_timeout=self._connect_timeout,
            )
            self._nodes[address] = node
        return node

    def node_url(self, address: str) -> str:
        """The URL given, pointed at another node (same credentials; a cluster has one db)."""
        credentials = self._url.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{address}" if credentials else address
        return urlunsplit((self._url.scheme, netloc, "", "", ""))


def _slot_of(args: tuple[Arg, ...]) -> int | None:
    """The slot of the command's first key; None for a command without keys."""
    if args[0] in _SCRIPT_COMMANDS:
        key = args[3] if int(args[2]) > 0 else None
    elif args[0] == "XREAD":  # XREAD [COUNT n] STREAMS key id: its key follows STREAMS
        key = args[args.index("STREAMS") + 1]
    else:
        key = args[1] if len(args) > 1 else None
    if key is None:
        return None
    return int(key_slot(key if isinstance(key, bytes) else str(key).encode()))


def _classify(exc: ResponseError) -> tuple[str, str]:
    """('moved' or 'ask', host:port); ('retry', '') for a reply that says try again shortly;
    ('unavailable', '') for a script stopped by a slot move; ('error', '') for any other."""
    message = str(exc)
    word = message.split(" ", 1)[0]
    if word in ("MOVED", "ASK"):
        host, _, port = message.split(" ")[2].rpartition(":")
        return word.lower(), f"{host or '127.0.0.1'}:{port}"
    if word in ("TRYAGAIN", "CLUSTERDOWN"):
        return "retry", ""
    if NON_LOCAL_KEY in message:
        return "unavailable", ""
    return "error", ""
