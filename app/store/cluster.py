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

A replicated script (the confirm) on a master that has a replica runs on a connection lent to it
alone and is followed by `WAIT 1 <replica_timeout_ms>` (store/replicated.py), with the same
routing and resending as any other command.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from app.store.pipeline import Arg, AutoPipeline, PipelinedScript, Unreachable
from app.store.replicated import LentConnections, execute_and_wait, note_unreplicated

log = logging.getLogger("holds.redis")
MAX_REDIRECTIONS = 16  # as redis-py's RedisCluster allows
_SCRIPT_COMMANDS = {"EVAL", "EVALSHA", "eval", "evalsha"}
# A script that reaches a key it did not declare (one built from a prefix) while its slot is
# half moved fails with this; Redis 6.2 and 7 check only that such keys are served here.
NON_LOCAL_KEY = "non local key"
# Replicas come and go without redirecting anything: read the map again this often when a
# replicated command needs to know whether its master has one.
REPLICA_MAP_SECONDS = 5.0
CONFIRM_CONNECTIONS_PER_MASTER = 8

Send = Callable[[str, tuple[Arg, ...], bool], Awaitable[Any]]


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
        replica_timeout_ms: int = 0,
    ) -> None:
        self._url = urlsplit(url)
        self._reply_timeout = reply_timeout
        self._connect_timeout = connect_timeout
        self._retry_seconds = retry_seconds
        self._replica_timeout_ms = replica_timeout_ms  # 0: replicated commands do not wait
        self._nodes: dict[str, AutoPipeline] = {}
        self._lent: dict[str, LentConnections] = {}
        self._slots: list[str] = []
        self._replicated: set[str] = set()  # masters the map lists with a replica
        self._read_at = 0.0
        self._seed = f"{self._url.hostname or '127.0.0.1'}:{self._url.port or 6379}"
        self._refreshing: asyncio.Task[None] | None = None

    async def execute(self, *args: Arg) -> Any:
        return await self._routed(args, self._send)

    async def execute_replicated(self, *args: Arg) -> Any:
        """`execute`, answering once a replica of the master has the command's writes too, or
        `replica_timeout_ms` has passed (then logged and counted): see store/replicated.py."""
        return await self._routed(args, self._send_replicated)

    async def _routed(self, args: tuple[Arg, ...], send: Send) -> Any:
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
            address, was_asked = asking or self._owner(slot), asking is not None
            asking = None
            try:
                return await send(address, args, was_asked)
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

    async def _send(self, address: str, args: tuple[Arg, ...], asking: bool) -> Any:
        node = self._node(address)
        return await (node.execute_asking(*args) if asking else node.execute(*args))

    async def _send_replicated(self, address: str, args: tuple[Arg, ...], asking: bool) -> Any:
        if asyncio.get_running_loop().time() - self._read_at > REPLICA_MAP_SECONDS:
            self._refresh_soon()
        timeout_ms = self._replica_timeout_ms
        if not timeout_ms or address not in self._replicated:
            return await self._send(address, args, asking)
        async with self._lent_to(address).lend() as connection:
            reply, replicated = await execute_and_wait(
                connection, args, asking=asking, timeout_ms=timeout_ms
            )
        if not replicated:
            note_unreplicated(address, timeout_ms)
            self._refresh_soon()  # a replica the cluster has given up on leaves the map
        return reply

    def register_script(self, source: str) -> PipelinedScript:
        return PipelinedScript(self, source)

    def register_replicated_script(self, source: str) -> PipelinedScript:
        """A script whose calls go through `execute_replicated`."""
        return PipelinedScript(_Replicated(self), source)

    async def aclose(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
        for node in self._nodes.values():
            await node.aclose()
        for lent in self._lent.values():
            await lent.aclose()
        self._nodes.clear()
        self._lent.clear()

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
            replicated = set()
            for start, end, master, *replicas in reply:
                slots[start : end + 1] = [self._address(master)] * (end - start + 1)
                if replicas:  # Redis leaves out the replicas it considers failed
                    replicated.add(self._address(master))
            self._slots, self._replicated = slots, replicated
            self._read_at = asyncio.get_running_loop().time()
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

    def _lent_to(self, address: str) -> LentConnections:
        lent = self._lent.get(address)
        if lent is None:
            lent = LentConnections(
                self.node_url(address),
                size=CONFIRM_CONNECTIONS_PER_MASTER,
                reply_timeout=self._reply_timeout,
                connect_timeout=self._connect_timeout,
            )
            self._lent[address] = lent
        return lent

    def node_url(self, address: str) -> str:
        """The URL given, pointed at another node (same credentials; a cluster has one db)."""
        credentials = self._url.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{address}" if credentials else address
        return urlunsplit((self._url.scheme, netloc, "", "", ""))


class _Replicated:
    """The cluster client seen by a replicated script: its commands wait for a replica."""

    def __init__(self, cluster: ClusterAutoPipeline) -> None:
        self._cluster = cluster

    async def execute(self, *args: Arg) -> Any:
        return await self._cluster.execute_replicated(*args)


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
