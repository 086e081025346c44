"""The one source of wall-clock time for domain decisions; tests swap in a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    """Real UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock(Clock):
    """A clock that reads whatever the test set it to."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment
