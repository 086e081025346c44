"""Writes that answer only once a replica has them: `WAIT 1 <ms>` right after the command.

`WAIT` blocks the connection it runs on and counts that connection's writes, so it never runs on
the request path's shared connection (every request behind it would wait too). Each command
borrows a connection of its own from a small pool per master, sends the command and `WAIT` in
one write, and gives the connection back once both replies are in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import ResponseError

from app import metrics
from app.store.pipeline import Arg, AutoPipeline

log = logging.getLogger("holds.redis")


class LentConnections:
    """Up to `size` connections to one node, each lent to one caller at a time."""

    def __init__(
        self, url: str, *, size: int, reply_timeout: float, connect_timeout: float
    ) -> None:
        self._url = url
        self._reply_timeout = reply_timeout
        self._connect_timeout = connect_timeout
        self._idle: list[AutoPipeline] = []
        self._opened: list[AutoPipeline] = []
        self._free = asyncio.Semaphore(size)

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[AutoPipeline]:
        async with self._free:
            connection = self._idle.pop() if self._idle else self._open()
            try:
                yield connection
            except ResponseError:  # both replies were read: the connection is in step
                raise
            except BaseException:
                # A lost or cancelled exchange may leave a reply unread: never lend it again.
                await connection.aclose()
                raise
            finally:
                self._idle.append(connection)

    async def aclose(self) -> None:
        for connection in self._opened:
            await connection.aclose()
        self._idle.clear()
        self._opened.clear()

    def _open(self) -> AutoPipeline:
        connection = AutoPipeline(
            self._url, reply_timeout=self._reply_timeout, connect_timeout=self._connect_timeout
        )
        self._opened.append(connection)
        return connection


async def execute_and_wait(
    connection: AutoPipeline, args: tuple[Arg, ...], *, asking: bool, timeout_ms: int
) -> tuple[Any, bool]:
    """The command's reply, and whether a replica had its writes within `timeout_ms`.

    An error reply to the command is raised (a redirection among them: the caller resends it);
    an error reply to `WAIT` counts as not replicated, since the command itself did run."""
    commands: list[tuple[Arg, ...]] = [("ASKING",)] if asking else []
    commands += [args, ("WAIT", 1, timeout_ms)]
    *_, reply, replicas = await connection.execute_together(*commands)
    if isinstance(reply, BaseException):
        raise reply
    return reply, isinstance(replicas, int) and replicas >= 1


def note_unreplicated(master: str, timeout_ms: int) -> None:
    """The write stands on the master alone: a failover in the next moments would lose it."""
    metrics.CONFIRM_UNREPLICATED.inc()
    log.warning(
        "a confirm was answered before any replica had it",
        extra={"master": master, "timeout_ms": timeout_ms},
    )
