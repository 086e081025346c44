"""`holds serve --processes N`: N API processes on one port, and the parent that keeps them.

Each child is an ordinary `holds serve --reuse-port` with `HOLDS_REDIS_URL` set, so it serves
HTTP only; the kernel spreads new connections over the children's SO_REUSEPORT sockets. The
parent serves nothing: it owns what must exist once per group (the embedded Redis and the
in-process worker, when there is no `HOLDS_REDIS_URL`), restarts a child that dies, and stops
the group on SIGTERM or SIGINT. Children restarted too often take the group down, loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("holds.prefork")
# More child deaths than this within the window means restarting will not help.
RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 60.0
STOP_SECONDS = 15.0
_PR_SET_PDEATHSIG = 1

Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Group:
    """The children of one `holds serve --processes N`."""

    command: list[str]
    size: int
    env: dict[str, str]
    children: dict[asyncio.Task[int], asyncio.subprocess.Process] = field(default_factory=dict)
    deaths: deque[float] = field(default_factory=deque)

    async def spawn(self) -> None:
        # Its own process group: a terminal's Ctrl-C reaches the parent alone, which then
        # stops the children itself instead of mistaking their exit for a crash.
        child = await asyncio.create_subprocess_exec(*self.command, env=self.env, process_group=0)
        self.children[asyncio.create_task(child.wait())] = child
        log.info("API process started", extra={"child_pid": child.pid})

    def died(self, task: asyncio.Task[int]) -> bool:
        """Record a child's death; False when that is one too many within the window."""
        child = self.children.pop(task)
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and now - self.deaths[0] > RESTART_WINDOW_SECONDS:
            self.deaths.popleft()
        code = task.result()
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        within = f"{len(self.deaths)} of at most {RESTART_LIMIT} in {RESTART_WINDOW_SECONDS:g} s"
        if len(self.deaths) > RESTART_LIMIT:
            log.critical(
                f"API process {child.pid} {how}; too many deaths ({within}), stopping all",
                extra={"child_pid": child.pid, "returncode": code},
            )
            return False
        log.error(
            f"API process {child.pid} {how}; starting another ({within})",
            extra={"child_pid": child.pid, "returncode": code},
        )
        return True

    async def stop(self) -> None:
        """SIGTERM every child, then SIGKILL whatever has not exited within STOP_SECONDS."""
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
        if not self.children:
            return
        _, late = await asyncio.wait(self.children, timeout=STOP_SECONDS)
        for task in late:
            with contextlib.suppress(ProcessLookupError):
                self.children[task].kill()
        await asyncio.gather(*self.children)
        self.children.clear()


def port_is_free(host: str, port: int) -> bool:
    """Whether SO_REUSEPORT listeners of ours can bind: fails when anything else holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def child_command(host: str, port: int) -> list[str]:
    """One API process of the group: `holds serve` sharing the port, tied to this parent."""
    serve = [sys.executable, "-m", "app", "serve", "--host", host, "--port", str(port)]
    return [*serve, "--reuse-port", "--child-of", str(os.getpid())]


async def run(group: Group, worker: Worker | None) -> int:
    """Keep `group.size` children running until SIGTERM or SIGINT (0), or until children die
    too often or the in-process worker fails (1); either way every child is stopped."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    stop_wait = asyncio.create_task(stopping.wait())
    worker_task = asyncio.create_task(worker(stopping)) if worker is not None else None
    result = 0
    try:
        for _ in range(group.size):
            await group.spawn()
        result = await _watch(group, stop_wait, worker_task)
    finally:
        stopping.set()
        await group.stop()
        if worker_task is not None:
            await asyncio.gather(worker_task, return_exceptions=True)
        stop_wait.cancel()
    return result


async def _watch(
    group: Group, stop_wait: asyncio.Task[bool], worker_task: asyncio.Task[None] | None
) -> int:
    while True:
        waiting: set[asyncio.Task[object]] = {stop_wait, *group.children}
        if worker_task is not None:
            waiting.add(worker_task)
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if stop_wait in done:
            return 0
        if worker_task is not None and worker_task in done:
            error = _error(worker_task)
            log.critical("the in-process worker stopped; stopping all", exc_info=error)
            return 1
        for task in done:
            if not group.died(task):  # type: ignore[arg-type]
                return 1
            await group.spawn()


def _error(task: asyncio.Task[None]) -> BaseException | None:
    return None if task.cancelled() else task.exception()


def tie_to_parent(parent_pid: int) -> None:
    """In a child: receive SIGTERM when the parent dies, even by SIGKILL (Linux), so no API
    process outlives its group; exit at once if the parent is already gone."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        raise SystemExit("holds serve: the process group's parent is gone")
