"""Generator processes, so one Python process's CPU is not the ceiling of the load.

Each process is forked before the coordinator starts an event loop, receives the target once,
then runs its share of each step it is sent and answers with its measurements."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from app.loadtest.plan import Target
from app.loadtest.runner import Step, run_share
from app.loadtest.stats import Stats

STEP_GRACE_SECONDS = 60  # a step's flows time out after 30 s; more than that is a hang


class GeneratorFailed(Exception):
    """A generator process failed or hung: the run's figures would be wrong, so it stops."""


class Generators:
    """N generator processes driven step by step; use as a context manager."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("fork")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for index in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve, args=(theirs, index, count), daemon=True, name=f"generator-{index}"
            )
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    def __enter__(self) -> Generators:
        return self

    def __exit__(self, *exc: object) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # a process that died has closed its end
                pipe.send(None)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()

    def aim(self, target: Target) -> None:
        for pipe in self.pipes:
            pipe.send(target)

    def run(self, step: Step) -> Stats:
        """Every process's share of `step`, merged."""
        for pipe in self.pipes:
            pipe.send(step)
        merged = Stats()
        for index, pipe in enumerate(self.pipes):
            if not pipe.poll(step.start_at - time.monotonic() + step.duration + STEP_GRACE_SECONDS):
                raise GeneratorFailed(f"generator process {index} did not finish its step")
            answer = pipe.recv()
            if "failed" in answer:
                raise GeneratorFailed(f"generator process {index}: {answer['failed']}")
            merged.merge(Stats.from_wire(answer))
        return merged


def _serve(pipe: Connection, index: int, count: int) -> None:
    _use_uvloop()
    target: Target = pipe.recv()
    while (step := pipe.recv()) is not None:
        try:
            stats = asyncio.run(run_share(target, step, index, count))
        except Exception as exc:  # reported by the coordinator, which stops the run
            pipe.send({"failed": f"{type(exc).__name__}: {exc}"})
            return
        pipe.send(stats.to_wire())


def _use_uvloop() -> None:
    """More requests per core from each generator process, as for the server."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop wheels
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
