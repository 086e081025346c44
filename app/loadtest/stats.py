"""What one generator process measured in one step, in HDR histograms that merge exactly
across processes and steps (sent between processes in HdrHistogram's compressed encoding)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

HIGHEST_US = 120_000_000  # a request's timeout is 30 s; late starts can add to it


def new_histogram(digits: int = 3) -> HdrHistogram:
    """Latencies in microseconds, 1 µs to 120 s, `digits` significant digits."""
    return HdrHistogram(1, HIGHEST_US, digits)


def is_error(status: int) -> bool:
    """No answer, a 5xx, or a refusal other than 409 (the slot was taken: the flow's risk)."""
    return status == 0 or status >= 500 or (status >= 400 and status != 409)


@dataclass
class Stats:
    """Latency (from each request's scheduled time) and statuses per endpoint."""

    latency: dict[str, HdrHistogram] = field(default_factory=dict)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    per_second: dict[tuple[str, int], HdrHistogram] = field(default_factory=dict)  # plot
    start_lag: HdrHistogram = field(default_factory=new_histogram)  # flow starts behind plan
    confirmed: list[str] = field(default_factory=list)  # appointment ids from 201s
    flows: int = 0
    no_slot_offered: int = 0
    cpu_seconds: dict[int, float] = field(default_factory=dict)  # generator process -> CPU

    def record(self, endpoint: str, second: int, micros: int, status: int) -> None:
        micros = max(1, min(micros, HIGHEST_US))
        self.latency.setdefault(endpoint, new_histogram()).record_value(micros)
        self.statuses.setdefault(endpoint, Counter())[str(status) if status else "no answer"] += 1
        self.per_second.setdefault((endpoint, second), new_histogram(2)).record_value(micros)

    def all_requests(self) -> HdrHistogram:
        """Every endpoint's latencies in one histogram."""
        merged = new_histogram()
        for histogram in self.latency.values():
            merged.add(histogram)
        return merged

    def requests(self) -> int:
        return sum(sum(counts.values()) for counts in self.statuses.values())

    def errors(self) -> int:
        return sum(
            n
            for counts in self.statuses.values()
            for status, n in counts.items()
            if is_error(0 if status == "no answer" else int(status))
        )

    def merge(self, other: Stats) -> None:
        for name, histogram in other.latency.items():
            self.latency.setdefault(name, new_histogram()).add(histogram)
        for name, counts in other.statuses.items():
            self.statuses.setdefault(name, Counter()).update(counts)
        for key, histogram in other.per_second.items():
            self.per_second.setdefault(key, new_histogram(2)).add(histogram)
        self.start_lag.add(other.start_lag)
        self.confirmed += other.confirmed
        self.flows += other.flows
        self.no_slot_offered += other.no_slot_offered
        for process, seconds in other.cpu_seconds.items():
            self.cpu_seconds[process] = self.cpu_seconds.get(process, 0.0) + seconds

    def to_wire(self) -> dict[str, Any]:
        """Plain data a pipe can carry to the coordinating process."""
        return {
            "latency": {name: h.encode() for name, h in self.latency.items()},
            "statuses": {name: dict(counts) for name, counts in self.statuses.items()},
            "per_second": [(e, s, h.encode()) for (e, s), h in self.per_second.items()],
            "start_lag": self.start_lag.encode(),
            "confirmed": self.confirmed,
            "flows": self.flows,
            "no_slot_offered": self.no_slot_offered,
            "cpu_seconds": self.cpu_seconds,
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Stats:
        return cls(
            latency={name: HdrHistogram.decode(h) for name, h in wire["latency"].items()},
            statuses={name: Counter(counts) for name, counts in wire["statuses"].items()},
            per_second={(e, s): HdrHistogram.decode(h) for e, s, h in wire["per_second"]},
            start_lag=HdrHistogram.decode(wire["start_lag"]),
            confirmed=list(wire["confirmed"]),
            flows=wire["flows"],
            no_slot_offered=wire["no_slot_offered"],
            cpu_seconds=dict(wire["cpu_seconds"]),
        )


def millis(histogram: HdrHistogram | None, percentile: float) -> float:
    """The latency at `percentile` (0-100) in milliseconds; 100 is the maximum."""
    if histogram is None or histogram.get_total_count() == 0:
        return 0.0
    if percentile >= 100:
        return float(histogram.get_max_value()) / 1000
    return float(histogram.get_value_at_percentile(percentile)) / 1000
