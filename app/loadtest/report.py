"""What a load test measured: per step and per endpoint latency and statuses, the knee of a
ramp, and what the generator itself used."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.loadtest.stats import Stats, millis


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted `values` (for the benchmarks' raw samples)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, math.ceil(share * len(values)) - 1))]


@dataclass
class StepResult:
    rate: float
    seconds: float  # from the step's first scheduled start until its last flow finished
    stats: Stats
    broken: list[str]  # the thresholds it broke, with what was measured


def step_summary(result: StepResult) -> dict[str, Any]:
    stats, everything = result.stats, result.stats.all_requests()
    holds = stats.statuses.get("POST /holds", Counter())
    return {
        "rate": result.rate,
        "flows": stats.flows,
        "requests": stats.requests(),
        "throughput_rps": round(stats.requests() / max(result.seconds, 1e-9), 1),
        "p50_ms": round(millis(everything, 50), 2),
        "p99_ms": round(millis(everything, 99), 2),
        "max_ms": round(millis(everything, 100), 2),
        "errors": stats.errors(),
        "holds_409": holds.get("409", 0),
        "booked": len(stats.confirmed),
        "broken": result.broken,
    }


def summarise(results: list[StepResult], total: Stats, elapsed: float) -> dict[str, Any]:
    return {
        "duration_s": round(elapsed, 2),
        "flows": total.flows,
        "flows_with_no_slot_offered": total.no_slot_offered,
        "requests": total.requests(),
        "throughput_rps": round(total.requests() / max(elapsed, 1e-9), 1),
        "appointments_booked": sum(len(result.stats.confirmed) for result in results),
        "appointments_checked": len(total.confirmed),  # the warm-up's too
        "endpoints": {name: _endpoint(total, name) for name in sorted(total.latency)},
        "steps": [step_summary(result) for result in results],
        "generator": {
            "processes": len(total.cpu_seconds),
            "cpu_seconds": [round(total.cpu_seconds[p], 2) for p in sorted(total.cpu_seconds)],
            "start_lag_p99_ms": round(millis(total.start_lag, 99), 2),
            "start_lag_max_ms": round(millis(total.start_lag, 100), 2),
        },
    }


def _endpoint(total: Stats, name: str) -> dict[str, Any]:
    histogram = total.latency[name]
    return {
        "count": histogram.get_total_count(),
        "p50_ms": round(millis(histogram, 50), 2),
        "p95_ms": round(millis(histogram, 95), 2),
        "p99_ms": round(millis(histogram, 99), 2),
        "max_ms": round(millis(histogram, 100), 2),
        "statuses": dict(sorted(total.statuses.get(name, {}).items())),
    }


def render(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['requests']} requests in {summary['duration_s']} s: "
        f"{summary['throughput_rps']} req/s, {summary['appointments_booked']} appointments booked, "
        f"{summary['flows_with_no_slot_offered']} of {summary['flows']} flows found no free slot",
        f"{'step':>4} {'flows/s':>8} {'flows':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>6} {'409s':>6}  thresholds",
    ]
    lines += [step_line(n, step) for n, step in enumerate(summary["steps"], 1)]
    lines.append(
        f"{'endpoint':28} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  "
        "statuses"
    )
    for name, stats in summary["endpoints"].items():
        statuses = " ".join(f"{code}:{n}" for code, n in stats["statuses"].items())
        lines.append(
            f"{name:28} {stats['count']:7d} {stats['p50_ms']:8.2f} {stats['p95_ms']:8.2f} "
            f"{stats['p99_ms']:8.2f} {stats['max_ms']:8.2f}  {statuses}"
        )
    lines.append(generator_line(summary))
    return "\n".join(lines)


def step_line(number: int, step: dict[str, Any]) -> str:
    verdict = "broke " + "; ".join(step["broken"]) if step["broken"] else "met"
    return (
        f"{number:4d} {step['rate']:8g} {step['flows']:7d} {step['throughput_rps']:8.1f} "
        f"{step['p50_ms']:8.2f} {step['p99_ms']:8.2f} {step['max_ms']:8.2f} "
        f"{step['errors']:6d} {step['holds_409']:6d}  {verdict}"
    )


def generator_line(summary: dict[str, Any]) -> str:
    """CPU per generator process against the run's length: shows the generator was no limit."""
    used = summary["generator"]
    seconds = max(summary["duration_s"], 1e-9)
    cpu = ", ".join(f"{s:.2f} s ({s / seconds:.0%} of a core)" for s in used["cpu_seconds"])
    return (
        f"generator: {used['processes']} processes, CPU {cpu} over {seconds} s; flows started "
        f"behind schedule by p99 {used['start_lag_p99_ms']:.2f} ms, "
        f"max {used['start_lag_max_ms']:.2f} ms"
    )


def write_json(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n")


def write_plot(total: Stats, path: Path) -> None:
    """A self-contained HTML page: p99 latency per second for each endpoint (inline SVG)."""
    width, height, pad = 900, 320, 40
    seconds = max((second for _, second in total.per_second), default=0) + 1
    series: dict[str, list[float]] = {}
    for name in sorted(total.latency):
        series[name] = [
            millis(total.per_second.get((name, second)), 99) for second in range(seconds)
        ]
    top = max((max(v) for v in series.values() if v), default=1.0) or 1.0
    colours = ["#1769aa", "#1b7f3b", "#b3261e", "#8a4baf", "#b26a00"]
    paths, legend = [], []
    for index, (name, values) in enumerate(series.items()):
        colour = colours[index % len(colours)]
        points = " ".join(
            f"{pad + i * (width - 2 * pad) / max(1, seconds - 1):.1f},"
            f"{height - pad - v / top * (height - 2 * pad):.1f}"
            for i, v in enumerate(values)
        )
        paths.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        legend.append(f'<li style="color:{colour}">{name}</li>')
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<text x="{pad}" y="20">p99 latency per second (ms, top = {top:.1f})</text>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" '
        f'y2="{height - pad}" stroke="#999"/>' + "".join(paths) + "</svg>"
    )
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>holds load test</title>"
        f"<h1>holds load test</h1>{svg}<ul>{''.join(legend)}</ul>"
    )
