"""`holds loadtest`: set up, run, report, check."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from app.loadtest import invariants, report, runner
from app.loadtest.plan import Mix, Target, discover

__all__ = ["LoadTest", "Mix", "run"]


@dataclass(frozen=True)
class LoadTest:
    url: str
    keys: list[str]
    rate: float
    duration: float
    contention: float
    mix: Mix
    days: int
    timezone: str
    json_path: Path | None
    plot_path: Path | None
    seed: int


def run(test: LoadTest) -> int:
    """Exit status: 0 when the service kept every promise, 1 otherwise."""
    return asyncio.run(_run(test))


async def _run(test: LoadTest) -> int:
    target = Target(url=test.url.rstrip("/"), keys=test.keys)
    async with aiohttp.ClientSession() as http:
        await discover(http, target, test.days, test.timezone)
    if not target.slots:
        print("error: the service offers no slots to book", file=sys.stderr)
        return 1
    print(f"{len(target.slots)} slots to book; running {test.rate}/s for {test.duration} s",
          file=sys.stderr)  # fmt: skip
    recorder = await runner.run(
        target, test.rate, test.duration, test.mix, test.contention, test.seed
    )
    summary = report.summarise(recorder, test.duration)
    async with aiohttp.ClientSession() as http:
        problems = await invariants.violations(http, target, recorder.confirmed)
    summary["invariant_violations"] = problems
    print(report.render(summary))
    if test.json_path:
        report.write_json(summary, test.json_path)
    if test.plot_path:
        report.write_plot(recorder, test.plot_path)
    for problem in problems:
        print(f"VIOLATION: {problem}", file=sys.stderr)
    print("invariants: " + ("VIOLATED" if problems else "held"))
    return 1 if problems else 0
