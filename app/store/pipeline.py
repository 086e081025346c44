"""One shared Redis connection that sends every command issued in the same event-loop tick in
one write, and hands the replies back in order (auto-pipelining).

The request path runs one or two Lua scripts per request. Through redis-py each call checks a
connection out of the pool, arms a timeout and walks a stream reader, which costs more CPU than
the rest of the request. Here a call packs its command (in C, by hiredis), queues a future and
returns; one write per tick carries every queued command, and hiredis parses the replies.
Redis answers a connection's commands in order, so the futures are resolved first in, first out.

Failures surface as redis-py's exceptions, so callers handle both clients alike: a lost
connection is `ConnectionError` for every command in flight (the next command reconnects), a
reply later than `reply_timeout` is `TimeoutError`, and an error reply is `ResponseError`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol, cast

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app import metrics

Arg = str | bytes | int | float


class Unreachable(RedisConnectionError):
    """No connection could be opened: the command was never sent, so resending it is safe."""


class CommandSender(Protocol):
    """What a pipelined script needs: this module's client, or the cluster's (store/cluster.py)."""

    async def execute(self, *args: Arg) -> Any: ...


class AutoPipeline:
    """A Redis client for scripts and simple commands on the hot path. Not for blocking
    commands or pub/sub: one slow reply would hold up every caller behind it."""

    def __init__(
        self, url: str, *, reply_timeout: float = 5.0, connect_timeout: float = 2.0
    ) -> None:
        self._params = parse_url(url)
        self._reply_timeout = reply_timeout
        self._connect_timeout = connect_timeout
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()

    async def execute(self, *args: Arg) -> Any:
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        return await connection.send(args)

    async def execute_asking(self, *args: Arg) -> Any:
        """`ASKING` then the command, back to back on one connection (a cluster's ASK reply)."""
        _, reply = await self.execute_together(("ASKING",), args)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def execute_together(self, *commands: Sequence[Arg]) -> list[Any]:
        """The commands in one write on one connection; each one's reply, or its exception."""
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        replies = [connection.send(command) for command in commands]
        return await asyncio.gather(*replies, return_exceptions=True)

    def register_script(self, source: str) -> PipelinedScript:
        return PipelinedScript(self, source)

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.close(RedisConnectionError, "The Redis client was closed.")
            self._connection = None

    async def _connect(self) -> _Connection:
        async with self._connecting:  # concurrent first callers share one connection
            if self._connection is not None and not self._connection.closed:
                return self._connection
            try:
                async with asyncio.timeout(self._connect_timeout):
                    connection = await self._open()
            except OSError as exc:  # TimeoutError is an OSError
                raise Unreachable(f"Cannot reach Redis: {exc!r}") from exc
            self._connection = connection
            return connection

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()

        def protocol() -> _Connection:
            return _Connection(self._reply_timeout)

        if "path" in self._params:
            _, connection = await loop.create_unix_connection(protocol, self._params["path"])
        else:
            host, port = self._params.get("host", "localhost"), self._params.get("port", 6379)
            _, connection = await loop.create_connection(protocol, host, port)
        try:
            await self._handshake(connection)
        except BaseException as exc:  # a refused password or a timeout: no half-open connection
            connection.close(RedisConnectionError, "The Redis handshake failed.")
            if isinstance(exc, ResponseError):
                raise RedisConnectionError(f"Redis refused the connection: {exc}") from exc
            raise
        return connection

    async def _handshake(self, connection: _Connection) -> None:
        if "password" in self._params:
            user = self._params.get("username")
            await connection.send(("AUTH", user, self._params["password"]) if user
                                  else ("AUTH", self._params["password"]))  # fmt: skip
        if self._params.get("db"):
            await connection.send(("SELECT", self._params["db"]))


class PipelinedScript:
    """A Lua script run by its SHA1, loaded again by EVAL when Redis has forgotten it."""

    def __init__(self, client: CommandSender, source: str) -> None:
        self._client = client
        self._source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()) -> Any:
        try:
            return await self._client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        # EVAL runs the script and caches it, so the next call's EVALSHA finds it again.
        return await self._client.execute("EVAL", self._source, len(keys), *keys, *args)


class _Connection(asyncio.Protocol):
    def __init__(self, reply_timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._transport: asyncio.Transport | None = None
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._outgoing: list[bytes] = []
        self._reply_timeout = reply_timeout
        self._watchdog = self._loop.call_later(reply_timeout / 4, self._check_progress)
        self.closed = False

    def send(self, args: Sequence[Arg]) -> asyncio.Future[Any]:
        if self.closed:
            raise RedisConnectionError("The connection to Redis was lost.")
        reply: asyncio.Future[Any] = self._loop.create_future()
        self._waiting.append((reply, self._loop.time()))
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        # hiredis's stub types the argument as a 1-tuple; it takes any length.
        self._outgoing.append(hiredis.pack_command(tuple(args)))  # type: ignore[arg-type]
        return reply

    def _flush(self) -> None:
        if self.closed or self._transport is None:
            return
        metrics.REDIS_PIPELINE_BATCH.observe(len(self._outgoing))
        self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's do not subclass asyncio.Transport, so no isinstance.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            future, _ = self._waiting.popleft()
            if future.done():  # its caller was cancelled; the reply has no taker
                continue
            if isinstance(reply, ResponseError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(RedisConnectionError, f"The connection to Redis was lost: {exc!r}")

    def _check_progress(self) -> None:
        """Redis answers in order, so the oldest command waiting too long means all are."""
        if self._waiting and self._loop.time() - self._waiting[0][1] > self._reply_timeout:
            self.close(RedisTimeoutError, f"Redis did not answer within {self._reply_timeout} s.")
            return
        self._watchdog = self._loop.call_later(self._reply_timeout / 4, self._check_progress)

    def close(self, error: type[Exception], message: str) -> None:
        """Fail every command in flight with its own `error(message)`, and hang up."""
        if self.closed:
            return
        self.closed = True
        self._watchdog.cancel()
        if self._transport is not None:
            self._transport.abort()
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error(message))
