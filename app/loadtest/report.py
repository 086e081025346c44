"""What a load test measured: throughput, latency percentiles and statuses per endpoint."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from app.loadtest.runner import Recorder, Sample


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted `values`."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, math.ceil(share * len(values)) - 1))]


def summarise(recorder: Recorder, duration: float) -> dict[str, Any]:
    by_endpoint: dict[str, list[Sample]] = {}
    for sample in recorder.samples:
        by_endpoint.setdefault(sample.endpoint, []).append(sample)
    elapsed = max(duration, max((s.at + s.seconds for s in recorder.samples), default=duration))
    return {
        "duration_s": round(elapsed, 2),
        "requests": len(recorder.samples),
        "throughput_rps": round(len(recorder.samples) / elapsed, 1),
        "appointments_booked": len(recorder.confirmed),
        "endpoints": {name: _endpoint(samples, elapsed) for name, samples in by_endpoint.items()},
    }


def _endpoint(samples: list[Sample], elapsed: float) -> dict[str, Any]:
    latencies = sorted(s.seconds * 1000 for s in samples)
    statuses = Counter(str(s.status) if s.status else "no answer" for s in samples)
    return {
        "count": len(samples),
        "rps": round(len(samples) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else 0.0,
        "statuses": dict(sorted(statuses.items())),
    }


def render(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['requests']} requests in {summary['duration_s']} s: "
        f"{summary['throughput_rps']} req/s, {summary['appointments_booked']} appointments booked",
        f"{'endpoint':28} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  "
        "statuses",
    ]
    for name, stats in summary["endpoints"].items():
        statuses = " ".join(f"{code}:{n}" for code, n in stats["statuses"].items())
        lines.append(
            f"{name:28} {stats['count']:7d} {stats['p50_ms']:8.2f} {stats['p95_ms']:8.2f} "
            f"{stats['p99_ms']:8.2f} {stats['max_ms']:8.2f}  {statuses}"
        )
    return "\n".join(lines)


def write_json(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n")


def write_plot(recorder: Recorder, path: Path) -> None:
    """A self-contained HTML page: p99 latency per second for each endpoint (inline SVG)."""
    width, height, pad = 900, 320, 40
    seconds = int(max((s.at for s in recorder.samples), default=0)) + 1
    series: dict[str, list[float]] = {}
    for name in sorted({s.endpoint for s in recorder.samples}):
        per_second = [[] for _ in range(seconds)]  # type: list[list[float]]
        for sample in recorder.samples:
            if sample.endpoint == name:
                per_second[int(sample.at)].append(sample.seconds * 1000)
        series[name] = [percentile(sorted(v), 0.99) for v in per_second]
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
