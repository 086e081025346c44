"""Pass/fail thresholds: `p99<50ms`, `max<=1s`, `errors<0.1%`, `conflicts<5%`.

Latency thresholds apply to every request of the booking flow together; `errors` is the share
of requests with no answer, a 5xx or a 4xx other than 409; `conflicts` the share of
`POST /holds` answered 409 (the slot was taken)."""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from app.loadtest.stats import Stats, millis

_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p99.9": 99.9, "max": 100.0}
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}  # fmt: skip
_FORM = re.compile(r"^\s*(p50|p90|p95|p99\.9|p99|max|errors|conflicts)\s*(<=|<|>=|>)\s*"
                   r"([0-9]+(?:\.[0-9]+)?)\s*(us|ms|s|%)?\s*$")  # fmt: skip


@dataclass(frozen=True)
class Threshold:
    text: str
    metric: str
    compare: str
    limit: float  # milliseconds for latencies, a fraction for shares

    @classmethod
    def parse(cls, text: str) -> Threshold:
        found = _FORM.match(text)
        if not found:
            raise ValueError(
                f"{text!r}: use METRIC<VALUE with METRIC one of "
                f"{', '.join(_PERCENTILES)}, errors, conflicts (e.g. p99<50ms, errors<0.1%)"
            )
        metric, compare, number, unit = found.groups()
        value = float(number)
        if metric in _PERCENTILES:
            if unit not in _UNITS:
                raise ValueError(f"{text!r}: a latency needs a unit: us, ms or s")
            return cls(text.strip(), metric, compare, value * _UNITS[unit])
        if unit not in ("%", None):
            raise ValueError(f"{text!r}: a share is a percentage (0.1%) or a fraction (0.001)")
        return cls(text.strip(), metric, compare, value / 100 if unit == "%" else value)

    def measure(self, stats: Stats) -> float:
        if self.metric in _PERCENTILES:
            return millis(stats.all_requests(), _PERCENTILES[self.metric])
        if self.metric == "errors":
            return stats.errors() / max(1, stats.requests())
        holds = stats.statuses.get("POST /holds", Counter())
        return holds.get("409", 0) / max(1, sum(holds.values()))

    def describe(self, value: float) -> str:
        """The measured value the way the threshold was written: `p99 83.20 ms`."""
        if self.metric in _PERCENTILES:
            return f"{self.metric} {value:.2f} ms"
        return f"{self.metric} {value * 100:.3f}%"

    def met(self, stats: Stats) -> bool:
        return _OPERATORS[self.compare](self.measure(stats), self.limit)


def broken(thresholds: list[Threshold], stats: Stats) -> list[str]:
    """One phrase per broken threshold: `p99<50ms (p99 83.20 ms)`; empty when all were met."""
    return [f"{t.text} ({t.describe(t.measure(stats))})" for t in thresholds if not t.met(stats)]
