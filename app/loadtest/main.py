"""`holds loadtest`: set up, run the steps, report, check the service's promises."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from app.loadtest import invariants, report
from app.loadtest.plan import Mix, Target, TargetError, discover
from app.loadtest.processes import GeneratorFailed, Generators
from app.loadtest.report import StepResult
from app.loadtest.runner import Step
from app.loadtest.stats import Stats
from app.loadtest.thresholds import Threshold, broken

__all__ = ["LoadTest", "Mix", "Ramp", "Threshold", "run"]

VIOLATED, UNREADABLE, THRESHOLD_BROKEN, GENERATOR_FAILED = 1, 2, 3, 4  # exit statuses
LEAD_SECONDS = 0.3  # for each generator process to start its event loop before the first flow


@dataclass(frozen=True)
class Ramp:
    """`FROM:TO:STEP_SECONDS`: rates FROM, FROM + by, ... (or FROM, FROM * factor, ... with
    `--ramp-by xF`) up to TO, each for STEP_SECONDS."""

    start: float
    stop: float
    step_seconds: float
    by: float = 0.0  # added each step
    factor: float = 1.0  # or multiplied by, when above 1

    @classmethod
    def parse(cls, text: str, by: str | None) -> Ramp:
        try:
            start, stop, seconds = (float(part) for part in text.split(":"))
        except ValueError:
            raise ValueError(f"{text!r}: use FROM:TO:STEP_SECONDS, e.g. 100:2000:5") from None
        if not 0 < start <= stop or seconds <= 0:
            raise ValueError(f"{text!r}: need 0 < FROM <= TO and STEP_SECONDS > 0")
        if by is None:
            return cls(start, stop, seconds, by=start)
        try:
            step = float(by.removeprefix("x"))
        except ValueError:
            step = 0.0
        if by.startswith("x"):
            if step <= 1:
                raise ValueError(f"--ramp-by {by}: a factor is above 1, e.g. x1.25")
            return cls(start, stop, seconds, factor=step)
        if step <= 0:
            raise ValueError(f"--ramp-by {by}: a rate to add (50) or a factor (x1.25)")
        return cls(start, stop, seconds, by=step)

    def rates(self) -> list[float]:
        rates, rate = [], self.start
        while rate <= self.stop * (1 + 1e-9):
            rates.append(round(rate, 2))
            rate = rate * self.factor if self.factor > 1 else rate + self.by
        return rates


@dataclass(frozen=True)
class LoadTest:
    url: str
    keys: list[str]
    rates: list[float]  # one step per rate; a constant run is one step
    step_seconds: float
    contention: float
    mix: Mix
    days: int
    timezone: str
    json_path: Path | None
    plot_path: Path | None
    seed: int
    processes: int = 1
    thresholds: list[Threshold] = field(default_factory=list)
    warmup_seconds: float = 0.0  # at the first rate, before the steps; not judged

    @property
    def is_ramp(self) -> bool:
        return len(self.rates) > 1


def run(test: LoadTest) -> int:
    """Exit status: 0 when every promise held and the thresholds were met (for a ramp: by its
    first step at least), 1 when a promise was broken, 2 when the service cannot be read, 3 when
    a threshold was broken, 4 when a generator process failed."""
    with Generators(test.processes) as generators:  # forked before any event loop starts
        target = Target(url=test.url.rstrip("/"), keys=test.keys, timezone=test.timezone)
        try:
            asyncio.run(_discover(target, test.days))
        except (TargetError, aiohttp.ClientError, ValueError) as exc:
            print(f"error: {test.url}: {exc}", file=sys.stderr)
            return UNREADABLE
        if not target.diaries:
            print("error: the service offers no appointment type to book", file=sys.stderr)
            return 1
        print(f"{len(target.diaries)} diaries over {test.days} days; "
              f"{test.processes} generator processes", file=sys.stderr)  # fmt: skip
        generators.aim(target)
        try:
            results, total, elapsed = _run_steps(generators, test)
        except GeneratorFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return GENERATOR_FAILED
    summary = report.summarise(results, total, elapsed)
    problems = asyncio.run(_check(target, total.confirmed))
    summary["invariant_violations"] = problems
    summary["thresholds"] = [t.text for t in test.thresholds]
    met = [result.rate for result in results if not result.broken]
    summary["knee"] = met[-1] if test.is_ramp and met else None  # flows/s
    print(report.render(summary))
    if test.json_path:
        report.write_json(summary, test.json_path)
    if test.plot_path:
        report.write_plot(total, test.plot_path)
    status = _verdict(test, results)
    for problem in problems:
        print(f"VIOLATION: {problem}", file=sys.stderr)
    print("invariants: " + ("VIOLATED" if problems else "held"))
    return VIOLATED if problems else status


async def _discover(target: Target, days: int) -> None:
    async with aiohttp.ClientSession() as http:
        await discover(http, target, days)


async def _check(target: Target, confirmed: list[str]) -> list[str]:
    """The invariants, checked once after the whole run (every step's bookings together)."""
    async with aiohttp.ClientSession() as http:
        return await invariants.violations(http, target, confirmed)


def _run_steps(generators: Generators, test: LoadTest) -> tuple[list[StepResult], Stats, float]:
    """Each step in turn, until the last or, in a ramp, the first that breaks a threshold."""
    results: list[StepResult] = []
    total = Stats()
    run_started = start_at = time.monotonic() + LEAD_SECONDS
    if test.warmup_seconds > 0:
        total.confirmed += _warm_up(generators, test, start_at)  # checked with the rest
        run_started = start_at = time.monotonic() + LEAD_SECONDS
    for number, rate in enumerate(test.rates):
        step = Step(number, rate, test.step_seconds, start_at, run_started, test.mix,
                    test.contention, test.seed)  # fmt: skip
        stats = generators.run(step)
        seconds = time.monotonic() - start_at
        result = StepResult(rate, seconds, stats, broken(test.thresholds, stats))
        results.append(result)
        total.merge(stats)
        print(report.step_line(number + 1, report.step_summary(result)), file=sys.stderr)
        if result.broken and test.is_ramp:
            break
        start_at = time.monotonic() + LEAD_SECONDS  # once this step has drained
    return results, total, time.monotonic() - run_started


def _warm_up(generators: Generators, test: LoadTest, start_at: float) -> list[str]:
    """The first rate for --warmup seconds (connections, caches), judged by no threshold;
    returns the appointments it booked."""
    step = Step(-1, test.rates[0], test.warmup_seconds, start_at, start_at, test.mix,
                test.contention, test.seed)  # fmt: skip
    stats = generators.run(step)
    print(f"warm-up: {stats.flows} flows at {test.rates[0]:g}/s, not judged", file=sys.stderr)
    return stats.confirmed


def _verdict(test: LoadTest, results: list[StepResult]) -> int:
    """Print which thresholds broke and, for a ramp, the knee; return the exit status."""
    if not test.thresholds:
        return 0
    if not test.is_ramp:
        if results[0].broken:
            print("thresholds: BROKEN " + "; ".join(results[0].broken))
            return THRESHOLD_BROKEN
        print("thresholds: met " + ", ".join(t.text for t in test.thresholds))
        return 0
    met = [r for r in results if not r.broken]
    if not met:
        print(f"knee: none; the first step ({results[0].rate:g} flows/s) broke "
              + "; ".join(results[0].broken))  # fmt: skip
        return THRESHOLD_BROKEN
    last = results[-1]
    if last.broken:
        print(f"knee: {met[-1].rate:g} flows/s, the highest rate that met every threshold; "
              f"{last.rate:g} flows/s broke " + "; ".join(last.broken))  # fmt: skip
    else:
        print(f"knee: above {last.rate:g} flows/s; every step met every threshold")
    return 0
